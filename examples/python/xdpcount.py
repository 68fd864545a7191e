"""xdpcount: count packets per IP protocol with XDP, as bcc's xdp_drop_count prints them.

    sudo python examples/python/xdpcount.py [--ifname lo] [--duration S]

Counts per IP protocol number (IPv4 and IPv6), per CPU; passes every packet.
"""

from __future__ import annotations

import sys
import time

from bpfkit.lang import XDP_PASS, PerCpuArray, ntohs, u8, u16, u32, u64, xdp

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD

counts = PerCpuArray[u32, u64](max_entries=256)


@xdp
def count_protocols(ctx) -> u32:
    proto = ntohs(ctx.load(u16, 12))
    ipproto: u8 = 0
    if proto == ETH_P_IP:
        ipproto = ctx.load(u8, 14 + 9)
    elif proto == ETH_P_IPV6:
        ipproto = ctx.load(u8, 14 + 6)
    else:
        return XDP_PASS
    counts[u32(ipproto)] += 1
    return XDP_PASS


def main(argv: list[str]) -> int:
    from bpfkit.lang import load

    ifname = argv[argv.index("--ifname") + 1] if "--ifname" in argv else "lo"
    duration = float(argv[argv.index("--duration") + 1]) if "--duration" in argv else 5.0
    with load(__name__, ifname=ifname) as prog:
        print(f"Counting packets on {ifname} by IP protocol...", flush=True)
        try:
            time.sleep(duration)
        except KeyboardInterrupt:
            pass
        totals = {k: sum(v) for k, v in prog.maps["counts"].items() if sum(v)}
    for proto, n in sorted(totals.items()):
        print(f"proto {proto}: {n} pkts")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
