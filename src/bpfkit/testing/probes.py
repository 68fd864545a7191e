"""What this machine can do, for skipping tests that need more.

Each probe returns None when the capability is there, else the reason it is not.  A test
asks with ``@pytest.mark.requires("bpf", "kprobes", kernel="5.8")``; the plugin skips it with
the reason, or fails it when ``BPFKIT_REQUIRE`` lists the capability (CI sets that for what
its machine has; ``BPFKIT_REQUIRE=all`` requires every capability a test asks for).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable


def _root() -> str | None:
    return None if os.geteuid() == 0 else "not root"


def _bpf_syscall() -> str | None:
    """None if bpf() works (a BPF_PROG_LOAD of 'r0 = 0; exit' succeeds), else the reason."""
    if os.geteuid() != 0:
        return "not root (bpf() needs CAP_BPF)"
    import ctypes
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    nr = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine)
    if nr is None:
        return f"unknown bpf() syscall number for {os.uname().machine}"
    insns = bytes.fromhex("b7000000000000009500000000000000")
    ibuf = ctypes.create_string_buffer(insns)
    lic = ctypes.create_string_buffer(b"GPL")
    # union bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, ...
    attr = struct.pack("=IIQQ", 1, 2, ctypes.addressof(ibuf), ctypes.addressof(lic))
    abuf = ctypes.create_string_buffer(attr + bytes(128))
    fd = libc.syscall(nr, 5, abuf, len(attr) + 128)
    if fd < 0:
        return f"bpf(BPF_PROG_LOAD) failed: {os.strerror(ctypes.get_errno())}"
    os.close(fd)
    return None


def _tracefs() -> str | None:
    for p in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        if os.path.isdir(p):
            return None
    return "no tracefs directory"


def _kprobes() -> str | None:
    if os.path.isdir("/sys/bus/event_source/devices/kprobe"):
        return None
    for p in ("/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events"):
        if os.path.exists(p):
            return None
    return "kernel built without kprobes (no kprobe PMU, no kprobe_events)"


def _uprobes() -> str | None:
    if os.path.isdir("/sys/bus/event_source/devices/uprobe"):
        return None
    return "kernel built without uprobes (no uprobe PMU)"


def tool(*names: str) -> str | None:
    """None if one of the programs ``names`` is on PATH."""
    for n in names:
        if shutil.which(n):
            return None
    return f"{' / '.join(names)} not installed"


def _clang() -> str | None:
    if any(shutil.which(n) for n in ("clang", *(f"clang-{v}" for v in range(14, 30)))):
        return None
    return "clang not installed (apt-get install clang)"


def _rustc() -> str | None:
    if not shutil.which("rustc"):
        return "rustc not installed"
    import subprocess

    out = subprocess.run(["rustc", "--print", "target-list"], capture_output=True, text=True)
    return None if "bpfel-unknown-none" in out.stdout else "rustc lacks the bpfel target"


def _scapy() -> str | None:
    import importlib.util

    return None if importlib.util.find_spec("scapy") else "scapy not installed (pip install scapy)"


PROBES: dict[str, Callable[[], str | None]] = {
    "scapy": _scapy,
    "clang": _clang,
    "rustc": _rustc,
    "root": _root,
    "bpf": _bpf_syscall,
    "tracefs": _tracefs,
    "tracepoint": _tracefs,
    "kprobes": _kprobes,
    "uprobes": _uprobes,
}

_cached: dict[str, str | None] = {}


def missing(feature: str) -> str | None:
    """Why ``feature`` is unavailable here, or None (asked once per process)."""
    if feature not in _cached:
        _cached[feature] = PROBES[feature]()
    return _cached[feature]


def kernel_version(release: str | None = None) -> tuple[int, ...]:
    """The running kernel's version (``uname -r``) as numbers: ``(6, 1, 0)``."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release or os.uname().release)
    return tuple(int(g) for g in m.groups() if g is not None) if m else ()


def parse_version(text: str | tuple[int, ...]) -> tuple[int, ...]:
    """``"5.8"`` or ``(5, 8)`` as a tuple of numbers (ValueError when it is neither)."""
    if isinstance(text, tuple):
        return text
    if not re.fullmatch(r"\d+(\.\d+){0,2}", text):
        raise ValueError(f"kernel version {text!r}: write it like '5.8'")
    return tuple(int(p) for p in text.split("."))


def kernel_too_old(want: str | tuple[int, ...], release: str | None = None) -> str | None:
    """None if the kernel is at least ``want``, else the reason."""
    need = parse_version(want)
    have = kernel_version(release)
    if have >= need:
        return None
    return f"kernel {'.'.join(map(str, have))} is older than {'.'.join(map(str, need))}"


def required() -> set[str]:
    """The capabilities CI says must be present (``BPFKIT_REQUIRE``, comma-separated)."""
    return {f for f in os.environ.get("BPFKIT_REQUIRE", "").split(",") if f}


def is_required(feature: str) -> bool:
    want = required()
    return "all" in want or feature in want
