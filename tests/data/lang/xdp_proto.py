"""Counts packets per EtherType; prints IPv4 ones (a test program of bpfkit.lang)."""

from bpfkit.lang import XDP_DROP, XDP_PASS, HashMap, ntohs, u8, u16, u32, u64, xdp

counts = HashMap[u32, u64](max_entries=64)


@xdp
def by_proto(ctx) -> u32:
    proto = ntohs(ctx.load(u16, 12))
    counts[u32(proto)] += 1
    x: u8 = 250
    for _ in range(10):
        x += 1
    if proto == 0x800:
        print(f"ipv4 {x}")
    elif proto == 0x86DD:
        return XDP_DROP
    return XDP_PASS
