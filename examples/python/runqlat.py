"""runqlat: a histogram of run-queue (scheduler) latency, as bcc's runqlat prints it.

    sudo python examples/python/runqlat.py [--duration S]

sched_wakeup stamps the woken task; sched_switch to that task records how long it waited.
"""

from __future__ import annotations

import sys
import time

from bpfkit.lang import Array, HashMap, i32, ktime_ns, tracepoint, u32, u64

start = HashMap[u32, u64](max_entries=10240)
hist = Array[u32, u64](max_entries=64)


@tracepoint("sched/sched_wakeup")
def wakeup(ctx) -> i32:
    start[u32(ctx.pid)] = ktime_ns()
    return 0


@tracepoint("sched/sched_switch")
def switch(ctx) -> i32:
    nxt = u32(ctx.next_pid)
    t0 = start.get(nxt)
    if t0 == 0:
        return 0
    del start[nxt]
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
        print("Tracing run queue latency... Hit Ctrl-C to end.", flush=True)
        try:
            time.sleep(duration)
        except KeyboardInterrupt:
            pass
        counts = {k: v for k, v in prog.maps["hist"].items() if v}
    print(log2_hist(counts, "usecs"), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
