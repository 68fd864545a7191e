"""Where bpfkit keeps what it worked out once, to skip it in the next process.

``$BPFKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/bpfkit``, else ``~/.cache/bpfkit``, with one
subdirectory per kind of entry (``lang/``: compiled Python programs, bpfkit.lang.cache;
``btf/``: the index of the kernel's BTF, bpfkit.btf.lazy; ``load/``: recorded loads,
bpfkit.kernel.replay; ``uprobe/``: where a uprobe's symbol is in its binary,
bpfkit.kernel.symbols).  ``BPFKIT_NO_CACHE=1`` turns every cache off.  What entries
depend on is stamped here too: bpfkit's sources (:func:`code_stamp`), the kernel's BTF
(:func:`vmlinux_stamp`) and this boot of the kernel (:func:`boot_id`).

Only a directory and files owned by the user running bpfkit and writable by nobody else
are used: bpfkit often runs as root and must not load what somebody else could have
written.  An entry carries a checksum; one that is unreadable, foreign or damaged reads as
absent, never as an error, and writing is atomic (a reader sees the old entry or the new
one) and silently skipped where it cannot be done (a read-only home, a full disk).
"""

from __future__ import annotations

import os
import zlib

MAGIC = b"bpfkit-cache 1\n"


def cache_dir(kind: str) -> str | None:
    """The directory of entries of ``kind``, or None when caching is off."""
    if os.environ.get("BPFKIT_NO_CACHE"):
        return None
    base = os.environ.get("BPFKIT_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "bpfkit")
    return os.path.join(base, kind)


def code_stamp() -> list[tuple[str, int, int]]:
    """(path, mtime, size) of every source file of the bpfkit package: an entry worked out
    by other code (an edited checkout, a new version) must not be used."""
    root = os.path.dirname(os.path.abspath(__file__))
    out: list[tuple[str, int, int]] = []
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.name.endswith(".py"):
                    st = e.stat()
                    out.append((e.path[len(root) :], st.st_mtime_ns, st.st_size))
                elif e.name != "__pycache__" and e.is_dir():
                    stack.append(e.path)
    out.sort()
    return out


VMLINUX = "/sys/kernel/btf/vmlinux"


def vmlinux_stamp() -> str:
    """The size and time of the running kernel's BTF (``-`` without one)."""
    try:
        st = os.stat(VMLINUX)
    except OSError:
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}"


BOOT_ID = "/proc/sys/kernel/random/boot_id"


def boot_id() -> str | None:
    """This boot of the running kernel, or None if unknown: an entry that holds for one
    boot only (kernel addresses, what was prepared for the kernel as it runs) keys on it."""
    try:
        with open(BOOT_ID) as f:
            return f.read().strip() or None
    except OSError:
        return None


def _trusted(path: str) -> bool:
    """A file or directory of ours that nobody else can write."""
    st = os.stat(path)
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def read(kind: str, name: str) -> bytes | None:
    """The body of entry ``name`` of ``kind``, or None (off, absent, foreign, damaged)."""
    directory = cache_dir(kind)
    if directory is None:
        return None
    path = os.path.join(directory, name)
    try:
        if not (_trusted(directory) and _trusted(path)):
            return None
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    head = len(MAGIC) + 8
    if not data.startswith(MAGIC) or data[len(MAGIC) : head] != _crc(data[head:]):
        return None
    return data[head:]


def write(kind: str, name: str, body: bytes, *, replaces: str = "") -> None:
    """Store ``body`` as entry ``name`` of ``kind``; then remove the other entries whose
    names start with ``replaces`` (the older entries of the same thing), if given."""
    directory = cache_dir(kind)
    if directory is None:
        return
    path = os.path.join(directory, name)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not _trusted(directory):
            return
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + _crc(body) + body)
        os.replace(tmp, path)
        if replaces:
            with os.scandir(directory) as it:
                old = [e.path for e in it if e.name.startswith(replaces) and e.name != name]
            for stale in old:
                os.unlink(stale)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _crc(body: bytes) -> bytes:
    return f"{zlib.crc32(body):08x}".encode()
