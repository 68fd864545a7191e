"""Write BPF programs in Python: a compiler from a Python subset to BPF objects (no LLVM).

A program file is an ordinary module::

    from bpfkit.lang import HashMap, tracepoint, u32, u64, pid

    counts = HashMap[u32, u64](max_entries=1024)

    @tracepoint("syscalls/sys_enter_openat")
    def count_openat(ctx) -> i32:
        counts[pid()] += 1
        return 0

    if __name__ == "__main__":
        with load(__name__) as prog:          # compiled, loaded, attached
            ...                               # prog.maps["counts"], prog.events()

``bpfkit build prog.py`` writes the object; ``bpfkit run prog.py`` / ``bpfkit vm prog.py``
build and run it.  What the subset holds is in docs/lang.md.  Every ``bpf_*`` helper of
the helper table can be imported from here by name (a stub in Python; a checked call in
BPF).
"""

from __future__ import annotations

from bpfkit.lang.decl import (
    Array,
    Const,
    HashMap,
    LruHash,
    PerCpuArray,
    PerCpuHash,
    PerfEventArray,
    ProgArray,
    RingBuf,
    cgroup_skb,
    kprobe,
    kretprobe,
    perf_event,
    raw_tracepoint,
    socket_filter,
    tc,
    tracepoint,
    uprobe,
    uretprobe,
    usdt,
    xdp,
)
from bpfkit.lang.types import cstr, i8, i16, i32, i64, struct, u8, u16, u32, u64
from bpfkit.uapi import TcAction, UpdateFlag, XdpAction

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: a program file's import stays cheap
if TYPE_CHECKING:
    from typing import Any

BPF_ANY = int(UpdateFlag.BPF_ANY)  # the uapi's flags (bpfkit.uapi), as ints
BPF_NOEXIST = int(UpdateFlag.BPF_NOEXIST)
BPF_EXIST = int(UpdateFlag.BPF_EXIST)
BPF_F_CURRENT_CPU = 0xFFFFFFFF
# Values some program types return (xdp, tc), importable by name: the uapi's, as ints
# (the compiler folds them; IntEnum text differs between Python versions).
XDP_ABORTED = int(XdpAction.XDP_ABORTED)
XDP_DROP = int(XdpAction.XDP_DROP)
XDP_PASS = int(XdpAction.XDP_PASS)
XDP_TX = int(XdpAction.XDP_TX)
XDP_REDIRECT = int(XdpAction.XDP_REDIRECT)
TC_ACT_OK, TC_ACT_SHOT = int(TcAction.TC_ACT_OK), int(TcAction.TC_ACT_SHOT)


def _outside(name: str) -> Any:
    def stub(*args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{name}() runs inside BPF programs only (compile them with bpfkit.lang)")

    stub.__name__ = name
    stub.__bpf_helper__ = name  # type: ignore[attr-defined]
    return stub


# Builtins of BPF programs (see bpfkit.lang.lower): in Python they say where they work.
comm = _outside("comm")
pid = _outside("pid")
tid = _outside("tid")
uid = _outside("uid")
ktime_ns = _outside("ktime_ns")
ntohs = _outside("ntohs")
htons = _outside("htons")
ntohl = _outside("ntohl")
htonl = _outside("htonl")
bswap64 = _outside("bswap64")
kernel = _outside("kernel")
current_task = _outside("current_task")
sizeof = _outside("sizeof")


def __getattr__(name: str) -> Any:
    # Every helper of the table, by name: from bpfkit.lang import bpf_get_current_pid_tgid
    if name.startswith("bpf_"):
        # The table's rows, not bpfkit.uapi.helpers (whose Helper objects cost an import).
        from bpfkit.uapi._generated import HELPER_ROWS

        if any(row[1] == name for row in HELPER_ROWS):
            return _outside(name)
    if name in ("load", "Program", "compile_file", "compile_module", "log2_hist"):
        from bpfkit.lang import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Array", "BPF_ANY", "BPF_EXIST", "BPF_F_CURRENT_CPU", "BPF_NOEXIST", "Const", "HashMap",
    "LruHash", "PerCpuArray", "PerCpuHash", "PerfEventArray", "ProgArray", "RingBuf",
    "TC_ACT_OK", "TC_ACT_SHOT", "XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_REDIRECT",
    "XDP_TX", "bswap64", "cgroup_skb", "comm", "cstr", "current_task", "htonl", "htons", "i16",
    "i32", "i64", "i8", "kernel", "kprobe", "kretprobe", "ktime_ns", "ntohl", "ntohs",
    "perf_event", "pid", "raw_tracepoint", "sizeof", "socket_filter", "struct", "tc", "tid",
    "tracepoint", "u16", "u32", "u64", "u8", "uid", "uprobe", "uretprobe", "usdt", "xdp",
]  # fmt: skip
