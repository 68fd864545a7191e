"""syscount: count system calls by syscall number, as bcc's syscount (top 10;
numbers, as bcc prints them without its syscall-name table).

    sudo python examples/python/syscount.py [--duration S]
"""

from __future__ import annotations

import sys
import time

from bpfkit.lang import HashMap, i32, tracepoint, u32, u64

counts = HashMap[u32, u64](max_entries=1024)


@tracepoint("raw_syscalls/sys_enter")
def count_syscall(ctx) -> i32:
    counts[u32(ctx.id)] += 1
    return 0


def main(argv: list[str]) -> int:
    from bpfkit.lang import load

    duration = float(argv[argv.index("--duration") + 1]) if "--duration" in argv else 5.0
    with load(__name__) as prog:
        print("Tracing syscalls, printing top 10... ", flush=True)
        try:
            time.sleep(duration)
        except KeyboardInterrupt:
            pass
        top = sorted(prog.maps["counts"].items(), key=lambda kv: -kv[1])[:10]
    print(f"{'SYSCALL NR':<22} {'COUNT':>8}")
    for nr, n in top:
        print(f"{nr:<22} {n:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
