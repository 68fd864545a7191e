"""killsnoop: trace signals sent with kill(), as bcc's killsnoop prints them.

sudo python examples/python/killsnoop.py [--duration S]
"""

from __future__ import annotations

import sys

from bpfkit.lang import (
    HashMap,
    RingBuf,
    bpf_get_current_pid_tgid,
    comm,
    i32,
    struct,
    tracepoint,
    u8,
    u32,
    u64,
)


@struct
class Args:
    tpid: i32
    sig: i32


@struct
class Event:
    pid: u32
    tpid: i32
    sig: i32
    ret: i32
    comm: u8[16]


pending = HashMap[u64, Args](max_entries=1024)
events = RingBuf(max_entries=1 << 16)


@tracepoint("syscalls/sys_enter_kill")
def enter_kill(ctx) -> i32:
    pending[bpf_get_current_pid_tgid()] = Args(tpid=i32(ctx.pid), sig=i32(ctx.sig))
    return 0


@tracepoint("syscalls/sys_exit_kill")
def exit_kill(ctx) -> i32:
    tid = bpf_get_current_pid_tgid()
    a = pending.get(tid)
    if a is None:
        return 0
    e = Event(pid=u32(tid >> 32), tpid=a.tpid, sig=a.sig, ret=i32(ctx.ret), comm=comm())
    events.output(e)
    del pending[tid]
    return 0


def main(argv: list[str]) -> int:
    from bpfkit.lang import cstr, load

    duration = float(argv[argv.index("--duration") + 1]) if "--duration" in argv else None
    with load(__name__) as prog:
        print(f"{'TIME':<9} {'PID':<7} {'COMM':<16} {'SIG':>4} {'TPID':>7} RESULT", flush=True)
        try:
            import time

            for e in prog.events(Event, duration=duration):
                now = time.strftime("%H:%M:%S")
                name = cstr(e.comm)
                print(f"{now:<9} {e.pid:<7} {name:<16} {e.sig:>4} {e.tpid:>7} {e.ret}")
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
