"""tracefs: find (or mount) it, read event ids, add and remove probe entries, read trace_pipe.

tracefs lives at ``/sys/kernel/tracing`` (kernels >= 4.1), or under debugfs at
``/sys/kernel/debug/tracing``.  If neither is mounted, :func:`root` mounts tracefs at
``/sys/kernel/tracing`` (root only).

Probe entries written to ``kprobe_events``/``uprobe_events`` outlive the process that
wrote them, so :class:`ProbeEntry` removes its entry on ``close()`` (and its context
manager, and a finalizer as a safety net), and :func:`remove_stale_probes` removes entries
left by bpfkit processes that died.

``trace_pipe`` reads are destructive and shared by every reader of the system.  A
:class:`TraceInstance` is a private tracefs instance with the ``bpf_trace_printk`` event
enabled: every ``bpf_trace_printk`` line goes to it as well as to the main buffer, so a
bpfkit run sees all of its lines even when something else reads the main ``trace_pipe``.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import itertools
import os
import re
import select
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

from bpfkit.errors import KernelError
from bpfkit.syscalls.fd import Closing
from bpfkit.syscalls.perf import NOT_AN_INSTRUCTION

_CANDIDATES = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
_root: Path | None = None
_counter = itertools.count()
# Probe group bpfkit writes its kprobe/uprobe entries in; names carry the pid.
GROUP = "bpfkit"


def _mounted(path: Path) -> bool:
    try:
        return (path / "trace_pipe").exists()
    except PermissionError as e:  # tracefs is mode 700: a user cannot even look
        raise KernelError(
            f"{path}: {e.strerror}: reading trace output needs root (tracefs is root's); "
            "run bpfkit with sudo",
            e.errno,
        ) from None


def _mount_tracefs(target: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.mount(b"tracefs", str(target).encode(), b"tracefs", 0, None)
    if rc != 0:
        err = ctypes.get_errno()
        raise KernelError(
            f"tracefs is not mounted and mounting it at {target} failed "
            f"({os.strerror(err)}): run as root, or mount it yourself with "
            f"`mount -t tracefs tracefs {target}`",
            err,
        )


def root() -> Path:
    """The tracefs directory, mounting tracefs at /sys/kernel/tracing if it is not mounted."""
    global _root
    if _root is not None and _mounted(_root):
        return _root
    for path in _CANDIDATES:
        if _mounted(path):
            _root = path
            return path
    target = _CANDIDATES[0]
    if not target.is_dir():
        raise KernelError(
            f"no tracefs: {target} does not exist (kernel built without CONFIG_TRACING?)"
        )
    _mount_tracefs(target)
    if not _mounted(target):
        raise KernelError(f"mounted tracefs at {target} but it has no trace_pipe")
    _root = target
    return target


def event_dir(category: str, name: str) -> Path:
    """``events/CATEGORY/NAME`` of a tracepoint, raising if this kernel has none."""
    path = root() / "events" / category / name
    if not (path / "id").exists():
        where = root() / "events" / category
        hint = ""
        if where.is_dir():
            near = sorted(p.name for p in where.iterdir() if name[:6] in p.name)[:5]
            if near:
                hint = f" (similar in {category}: {', '.join(near)})"
        else:
            hint = f" (no category {category!r} in {root() / 'events'})"
        raise KernelError(f"tracepoint {category}:{name} does not exist on this kernel{hint}")
    return path


def event_id(category: str, name: str) -> int:
    """The perf event id of tracepoint ``CATEGORY:NAME`` (from ``events/CAT/NAME/id``)."""
    return int((event_dir(category, name) / "id").read_text())


def _write(path: Path, text: str, *, append: bool = True) -> None:
    """Write ``text`` to a tracefs control file in one write() (tracefs parses per write)."""
    flags = os.O_WRONLY | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise KernelError(f"cannot open {path}: {e.strerror}", e.errno) from None
    try:
        os.write(fd, text.encode())
    except OSError as e:
        log = _error_log()
        extra = f"; tracefs says: {log}" if log else ""
        why = NOT_AN_INSTRUCTION if e.errno == _errno.EILSEQ else e.strerror
        raise KernelError(
            f"writing {text.strip()!r} to {path} failed: {why}{extra}", e.errno
        ) from None
    finally:
        os.close(fd)


def _error_log() -> str:
    """The last line tracefs put in its ``error_log`` (explains probe syntax errors)."""
    try:
        lines = (root() / "error_log").read_text().strip().splitlines()
    except OSError:
        return ""
    return " ".join(line.strip() for line in lines[-3:])


def _root_hint(e: OSError) -> str:
    if e.errno in (_errno.EACCES, _errno.EPERM):
        return " (reading trace output needs root: tracefs is root's; run bpfkit with sudo)"
    return ""


class ProbeEntry(Closing):
    """A ``kprobe_events`` or ``uprobe_events`` entry, removed on ``close()``.

    ``kind`` is ``"kprobe"`` or ``"uprobe"``; ``target`` is ``FUNC[+OFF]`` for kprobes or
    ``PATH:0xOFFSET`` for uprobes.  ``event_id`` is the perf event id of the new event.
    """

    def __init__(self, kind: str, target: str, *, retprobe: bool = False) -> None:
        if kind not in ("kprobe", "uprobe"):
            raise ValueError(f"probe kind must be kprobe or uprobe, not {kind!r}")
        self.kind = kind
        self.name = f"{kind[0]}_{os.getpid()}_{next(_counter)}"
        self.control = root() / f"{kind}_events"
        if not self.control.exists():
            raise KernelError(
                f"this kernel has no {kind}s ({self.control} is missing): "
                f"it was built without CONFIG_{kind.upper().replace('PROBE', '_PROBE')}_EVENTS"
            )
        clean_stale_once()
        _write(self.control, f"{'r' if retprobe else 'p'}:{GROUP}/{self.name} {target}\n")
        self._finalizer = weakref.finalize(self, _remove_entry, self.control, self.name)
        try:
            self.event_id = event_id(GROUP, self.name)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Remove the entry (idempotent)."""
        self._finalizer()


def _remove_entry(control: Path, name: str) -> None:
    # EBUSY would mean a perf event still uses it: callers close events first.
    try:
        _write(control, f"-:{GROUP}/{name}\n")
    except KernelError:
        pass


# "p:bpfkit/k_PID_N FUNC", "r:...", and "r10:..." (a kretprobe's maxactive after the r,
# as Linux 6.1 lists it).
_ENTRY = re.compile(rf"^[pr]\d*:{GROUP}/([ku])_(\d+)_\d+\s")


def probe_entries() -> list[str]:
    """bpfkit's entries in kprobe_events and uprobe_events (``GROUP/NAME``)."""
    found = []
    for kind in ("kprobe", "uprobe"):
        control = root() / f"{kind}_events"
        if control.exists():
            for line in control.read_text().splitlines():
                if _ENTRY.match(line):
                    found.append(line.split()[0].split(":", 1)[-1])
    return found


def remove_stale_probes() -> int:
    """Remove bpfkit probe entries whose process is gone; return how many were removed."""
    removed = 0
    for kind in ("kprobe", "uprobe"):
        control = root() / f"{kind}_events"
        if not control.exists():
            continue
        for line in control.read_text().splitlines():
            m = _ENTRY.match(line)
            if m and not Path(f"/proc/{m.group(2)}").exists():
                name = line.split()[0].split("/", 1)[1]
                _remove_entry(control, name)
                removed += 1
    return removed


_INSTANCE = re.compile(rf"^{GROUP}-(\d+)-\d+$")


def remove_stale_instances() -> int:
    """Remove bpfkit tracefs instances whose process is gone; return how many."""
    removed = 0
    base = root() / "instances"
    for p in base.iterdir():
        m = _INSTANCE.match(p.name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            _remove_instance(p)
            removed += not p.exists()
    return removed


_stale_checked = False


def clean_stale_once() -> None:
    """Once per process, remove what killed bpfkit processes left in tracefs (a process
    killed with SIGKILL cannot remove its probe entries and instances itself)."""
    global _stale_checked
    if not _stale_checked:
        _stale_checked = True
        remove_stale_probes()
        remove_stale_instances()


class TracePipe(Closing):
    """A non-blocking reader of a ``trace_pipe`` that yields whole lines.

    ``lines(timeout)`` waits at most ``timeout`` seconds for data (None: forever) and
    yields the complete lines read; a partial line is kept for the next call.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise KernelError(f"cannot open {path}: {e.strerror}{_root_hint(e)}", e.errno) from None
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)
        self._partial = b""
        self._finalizer = weakref.finalize(self, os.close, self._fd)

    def lines(self, timeout: float | None) -> Iterator[str]:
        """Lines available within ``timeout`` seconds (may be none)."""
        ms = None if timeout is None else max(0, int(timeout * 1000))
        if not self._poll.poll(ms):
            return
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == _errno.EINTR:
                    continue
                raise KernelError(f"reading {self.path} failed: {e.strerror}", e.errno) from None
            if not chunk:
                break
            self._partial += chunk
            if len(chunk) < 65536:
                break
        *complete, self._partial = self._partial.split(b"\n")
        for raw in complete:
            yield raw.decode("utf-8", "replace")

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._finalizer()


class TraceInstance(Closing):
    """A private tracefs instance receiving ``bpf_trace_printk`` lines; removed on ``close()``."""

    def __init__(self) -> None:
        clean_stale_once()
        base = root() / "instances"
        self.path = base / f"{GROUP}-{os.getpid()}-{next(_counter)}"
        try:
            self.path.mkdir()
        except OSError as e:
            raise KernelError(
                f"cannot create tracefs instance {self.path}: {e.strerror}{_root_hint(e)}",
                e.errno,
            ) from None
        self._finalizer = weakref.finalize(self, _remove_instance, self.path)
        try:
            enable = self.path / "events" / "bpf_trace" / "bpf_trace_printk" / "enable"
            if enable.exists():
                _write(enable, "1\n", append=False)
            self.pipe = TracePipe(self.path / "trace_pipe")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the pipe and remove the instance (idempotent)."""
        pipe = getattr(self, "pipe", None)
        if pipe is not None:
            pipe.close()
        self._finalizer()


def _remove_instance(path: Path) -> None:
    # rmdir fails with EBUSY while a file of the instance is open; the pipe is closed
    # first, but a reader thread may lag: retry briefly.
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != _errno.EBUSY:
                return
            time.sleep(0.01)


def main_pipe() -> TracePipe:
    """A reader of the main ``trace_pipe`` (shared with every other reader)."""
    return TracePipe(root() / "trace_pipe")


def instances() -> list[str]:
    """Names of bpfkit's tracefs instances that exist now."""
    base = root() / "instances"
    return sorted(p.name for p in base.iterdir() if p.name.startswith(f"{GROUP}-"))
