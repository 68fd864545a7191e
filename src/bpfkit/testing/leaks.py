"""What a test leaves behind: file descriptors (BPF programs, maps and links among them),
bpffs pins, tracefs instances and kprobe/uprobe events.

:func:`snapshot` records them; :func:`leaked` says what is new in a later snapshot.  Pins,
trace instances and probe events are machine-wide: another process creating them at the
same time shows up too (the report names what it found, so such a case is easy to tell).
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

BPFFS = "/sys/fs/bpf"
TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


@dataclass(frozen=True)
class Snapshot:
    fds: dict[str, str]  # fd number -> what it is (readlink of /proc/self/fd/N)
    pins: frozenset[str]
    instances: frozenset[str]
    probe_events: frozenset[str]


def _fds() -> dict[str, str]:
    out = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return {}
    for n in names:
        try:
            out[n] = os.readlink(f"/proc/self/fd/{n}")
        except OSError:
            continue  # the fd listdir itself used, closed by now
    return out


def _pins(root: str = BPFFS) -> frozenset[str]:
    found: set[str] = set()
    if not os.path.isdir(root):
        return frozenset()
    for d, _dirs, files in os.walk(root):
        found.update(os.path.join(d, f) for f in files)
    return frozenset(found)


def _tracefs() -> str | None:
    return next((p for p in TRACEFS if os.path.isdir(os.path.join(p, "instances"))), None)


def _instances() -> frozenset[str]:
    t = _tracefs()
    if t is None:
        return frozenset()
    try:
        return frozenset(os.listdir(os.path.join(t, "instances")))
    except OSError:
        return frozenset()


def _probe_events() -> frozenset[str]:
    t = _tracefs()
    out: set[str] = set()
    for name in ("kprobe_events", "uprobe_events"):
        try:
            with open(os.path.join(t or "/nonexistent", name)) as f:
                out.update(line.strip() for line in f if line.strip())
        except OSError:
            continue
    return frozenset(out)


def snapshot(*, machine: bool = True) -> Snapshot:
    """What is open and registered now (``machine=False``: this process's fds only)."""
    if not machine:
        return Snapshot(_fds(), frozenset(), frozenset(), frozenset())
    return Snapshot(_fds(), _pins(), _instances(), _probe_events())


def _kind(target: str) -> str:
    for key, name in (
        ("anon_inode:btf", "BTF object"),
        ("bpf-prog", "BPF program"),
        ("bpf_link", "BPF link"),
        ("bpf-map", "BPF map"),
        ("perf_event", "perf event"),
        ("bpf_iter", "BPF iterator"),
    ):
        if key in target:
            return name
    return "file descriptor"


def leaked(before: Snapshot, *, machine: bool = True) -> list[str]:
    """What is open or registered now that was not in ``before`` (after a collection,
    so that objects only waiting for the garbage collector do not count)."""
    gc.collect()
    now = snapshot(machine=machine)
    out = []
    for n, target in sorted(now.fds.items(), key=lambda kv: int(kv[0])):
        if n not in before.fds or before.fds[n] != target:
            out.append(f"{_kind(target)}: fd {n} -> {target}")
    out += [f"bpffs pin: {p}" for p in sorted(now.pins - before.pins)]
    out += [f"tracefs instance: {i}" for i in sorted(now.instances - before.instances)]
    out += [f"probe event: {e}" for e in sorted(now.probe_events - before.probe_events)]
    return out
