"""BPF functions of a Python program: calls (r6-r9 kept across them) and a bpf_loop callback."""

from bpfkit.lang import Array, bpf_loop, i64, u32, u64, xdp

out = Array[u32, u64](max_entries=4)


def log2(v: u64) -> u32:
    r: u32 = 0
    while v > 1 and r < 63:
        v >>= 1
        r += 1
    return r


def square_plus(a: u32, b: u32) -> u32:
    return a * a + b


def count(i: u64, c: u64) -> i64:
    out[u32(3)] += 1
    return 0


@xdp
def prog(ctx) -> u32:
    x = u64(ctx.load(u32, 0))
    keep = x + 1
    out[u32(0)] = u64(log2(x))
    out[u32(1)] = u64(square_plus(u32(x & 15), 7))
    out[u32(2)] = keep
    bpf_loop(5, count, 0, 0)
    return 2
