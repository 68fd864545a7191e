"""execsnoop: trace new processes (exec), as bcc's execsnoop prints them.

    sudo python examples/python/execsnoop.py [--duration S]

The BPF side runs on the syscalls/sys_enter_execve tracepoint (this kernel has no kprobes);
the parent's pid comes from the kernel's task_struct through CO-RE (task.real_parent.tgid).
"""

from __future__ import annotations

import sys

from bpfkit.lang import (
    RingBuf,
    bpf_probe_read_user_str,
    comm,
    current_task,
    i32,
    pid,
    struct,
    tracepoint,
    u8,
    u32,
)


@struct
class Event:
    pid: u32
    ppid: u32
    comm: u8[16]
    filename: u8[128]


events = RingBuf(max_entries=1 << 18)


@tracepoint("syscalls/sys_enter_execve")
def on_execve(ctx) -> i32:
    e = Event(pid=pid(), comm=comm())
    e.ppid = u32(current_task().real_parent.tgid)
    bpf_probe_read_user_str(e.filename, ctx.filename)
    events.output(e)
    return 0


def main(argv: list[str]) -> int:
    from bpfkit.lang import cstr, load

    duration = float(argv[argv.index("--duration") + 1]) if "--duration" in argv else None
    with load(__name__) as prog:
        print(f"{'PCOMM':<16} {'PID':>7} {'PPID':>7} PATH", flush=True)
        try:
            for e in prog.events(Event, duration=duration):
                name = cstr(e.comm)
                path = cstr(e.filename)
                print(f"{name:<16} {e.pid:>7} {e.ppid:>7} {path}", flush=True)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
