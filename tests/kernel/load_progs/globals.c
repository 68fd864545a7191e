// Global data (.data, .rodata, .bss), a BTF-defined map, a static and a global
// sub-program in .text: loaded by bpfkit and run with BPF_PROG_TEST_RUN.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

const volatile __u32 factor = 3;	/* .rodata */
__u32 bias = 5;				/* .data */
__u64 calls;				/* .bss */

static __attribute__((noinline)) __u64 scale(__u64 x)
{
	return x * factor + bias;
}

__attribute__((noinline)) int plus_one(int x)
{
	return x + 1;
}

SEC("socket")
int globals(struct __sk_buff *skb)
{
	__u32 key = 1;
	__u64 one = 1, *c;

	calls++;
	c = bpf_map_lookup_elem(&counts, &key);
	if (c)
		__sync_fetch_and_add(c, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_ANY);
	return plus_one((int)scale(skb->len));
}

SEC("xdp")
int xdp_len(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;

	return len > 100 ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
