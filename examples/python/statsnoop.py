"""statsnoop: trace stat() family calls (newfstatat, statx), as bcc's statsnoop prints them.

sudo python examples/python/statsnoop.py [--duration S]
"""

from __future__ import annotations

import sys

from bpfkit.lang import (
    HashMap,
    RingBuf,
    bpf_get_current_pid_tgid,
    bpf_probe_read_user_str,
    comm,
    i32,
    struct,
    tracepoint,
    u8,
    u32,
    u64,
)


@struct
class Path:
    name: u8[96]


@struct
class Event:
    pid: u32
    ret: i32
    comm: u8[16]
    path: u8[96]


paths = HashMap[u64, Path](max_entries=4096)
events = RingBuf(max_entries=1 << 18)


@tracepoint("syscalls/sys_enter_newfstatat")
def enter_fstatat(ctx) -> i32:
    p = Path()
    bpf_probe_read_user_str(p.name, ctx.filename)
    paths[bpf_get_current_pid_tgid()] = p
    return 0


@tracepoint("syscalls/sys_enter_statx")
def enter_statx(ctx) -> i32:
    p = Path()
    bpf_probe_read_user_str(p.name, ctx.filename)
    paths[bpf_get_current_pid_tgid()] = p
    return 0


@tracepoint("syscalls/sys_exit_newfstatat")
def exit_fstatat(ctx) -> i32:
    tid = bpf_get_current_pid_tgid()
    p = paths.get(tid)
    if p is not None:
        e = Event(pid=u32(tid >> 32), ret=i32(ctx.ret), comm=comm())
        e.path = p.name
        events.output(e)
        del paths[tid]
    return 0


@tracepoint("syscalls/sys_exit_statx")
def exit_statx(ctx) -> i32:
    tid = bpf_get_current_pid_tgid()
    p = paths.get(tid)
    if p is not None:
        e = Event(pid=u32(tid >> 32), ret=i32(ctx.ret), comm=comm())
        e.path = p.name
        events.output(e)
        del paths[tid]
    return 0


def main(argv: list[str]) -> int:
    from bpfkit.lang import cstr, load

    duration = float(argv[argv.index("--duration") + 1]) if "--duration" in argv else None
    with load(__name__) as prog:
        print(f"{'PID':<7} {'COMM':<16} {'FD':>3} {'ERR':>3} PATH", flush=True)
        try:
            for e in prog.events(Event, duration=duration):
                fd, err = (e.ret, 0) if e.ret >= 0 else (-1, -e.ret)
                print(f"{e.pid:<7} {cstr(e.comm):<16} {fd:>3} {err:>3} {cstr(e.path)}")
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
