"""tcpconnect: trace active TCP connects (IPv4), as bcc's tcpconnect prints them.

    sudo python examples/python/tcpconnect.py [--duration S]

sock/inet_sock_set_state with newstate TCP_SYN_SENT is a connect() starting (no kprobes
on this kernel, so not tcp_v4_connect).
"""

from __future__ import annotations

import socket
import sys

from bpfkit.lang import RingBuf, comm, i32, pid, struct, tracepoint, u8, u16, u32

AF_INET = 2
IPPROTO_TCP = 6
TCP_SYN_SENT = 2


@struct
class Event:
    pid: u32
    dport: u16
    sport: u16
    saddr: u8[4]
    daddr: u8[4]
    comm: u8[16]


events = RingBuf(max_entries=1 << 16)


@tracepoint("sock/inet_sock_set_state")
def state(ctx) -> i32:
    if ctx.protocol != IPPROTO_TCP or ctx.family != AF_INET:
        return 0
    if ctx.newstate != TCP_SYN_SENT:
        return 0
    e = Event(pid=pid(), dport=ctx.dport, sport=ctx.sport, comm=comm())
    e.saddr = ctx.saddr
    e.daddr = ctx.daddr
    events.output(e)
    return 0


def main(argv: list[str]) -> int:
    from bpfkit.lang import cstr, load

    duration = float(argv[argv.index("--duration") + 1]) if "--duration" in argv else None
    with load(__name__) as prog:
        print(f"{'PID':<7} {'COMM':<16} {'IP':<2} {'SADDR':<16} {'DADDR':<16} DPORT", flush=True)
        try:
            for e in prog.events(Event, duration=duration):
                src = socket.inet_ntoa(e.saddr)
                dst = socket.inet_ntoa(e.daddr)
                name = cstr(e.comm)
                print(f"{e.pid:<7} {name:<16} 4  {src:<16} {dst:<16} {e.dport}", flush=True)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
