"""funclatency: a histogram of a user-space function's latency (uprobe + uretprobe), as
bcc's funclatency prints it.

    sudo python examples/python/funclatency.py [--duration S]

Times libc's ``malloc`` by default; set BPFKIT_FUNC to
``/path/to/lib.so:symbol`` for another function.
"""

from __future__ import annotations

import glob
import os
import sys
import time

from bpfkit.lang import (
    Array,
    HashMap,
    bpf_get_current_pid_tgid,
    i32,
    ktime_ns,
    u32,
    u64,
    uprobe,
    uretprobe,
)


def _libc() -> str:
    for pattern in ("/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6", "/usr/lib*/libc.so.6"):
        found = glob.glob(pattern)
        if found:
            return found[0]
    return "/lib/x86_64-linux-gnu/libc.so.6"


TARGET = os.environ.get("BPFKIT_FUNC") or f"{_libc()}:malloc"

start = HashMap[u64, u64](max_entries=10240)
hist = Array[u32, u64](max_entries=64)


@uprobe(TARGET)
def entry(ctx) -> i32:
    start[bpf_get_current_pid_tgid()] = ktime_ns()
    return 0


@uretprobe(TARGET)
def ret(ctx) -> i32:
    tid = bpf_get_current_pid_tgid()
    t0 = start.get(tid)
    if t0 == 0:
        return 0
    del start[tid]
    delta = ktime_ns() - t0
    slot: u32 = 0
    while delta > 1 and slot < 63:
        delta >>= 1
        slot += 1
    hist[slot] += 1
    return 0


def main(argv: list[str]) -> int:
    from bpfkit.lang import load, log2_hist

    duration = float(argv[argv.index("--duration") + 1]) if "--duration" in argv else 5.0
    with load(__name__) as prog:
        print(f'Tracing 1 functions for "{TARGET}"... Hit Ctrl-C to end.', flush=True)
        try:
            time.sleep(duration)
        except KeyboardInterrupt:
            pass
        counts = {k: v for k, v in prog.maps["hist"].items() if v}
    print(log2_hist(counts, "nsecs"), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
