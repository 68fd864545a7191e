"""syslat: a histogram of system call latency (bcc's syscall latency tools, funclatency style).

    sudo python examples/python/syslat.py [--duration S]

raw tracepoints sys_enter and sys_exit: the time between them per thread, in log2 buckets
of microseconds.
"""

from __future__ import annotations

import sys
import time

from bpfkit.lang import (
    Array,
    HashMap,
    bpf_get_current_pid_tgid,
    i32,
    ktime_ns,
    raw_tracepoint,
    u32,
    u64,
)

start = HashMap[u64, u64](max_entries=10240)
hist = Array[u32, u64](max_entries=64)


@raw_tracepoint("sys_enter")
def sys_enter(ctx) -> i32:
    start[bpf_get_current_pid_tgid()] = ktime_ns()
    return 0


@raw_tracepoint("sys_exit")
def sys_exit(ctx) -> i32:
    tid = bpf_get_current_pid_tgid()
    t0 = start.get(tid)
    if t0 == 0:
        return 0
    del start[tid]
    delta = (ktime_ns() - t0) // 1000
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
        print("Tracing syscall latency... ", flush=True)
        try:
            time.sleep(duration)
        except KeyboardInterrupt:
            pass
        counts = {k: v for k, v in prog.maps["hist"].items() if v}
    print(log2_hist(counts, "usecs"), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
