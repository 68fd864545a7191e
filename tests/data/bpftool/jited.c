// A program of two functions for `prog dump jited` (tests/cli/test_prog_jited.py): the
// socket filter calls a sub-program with a loop, so the JIT image has two functions,
// calls, conditional and backward jumps, and line info for each.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bk_jit_hits SEC(".maps");

static __attribute__((noinline)) int bk_mix(struct __sk_buff *skb, int rounds)
{
	int acc = skb->len;

	for (int i = 0; i < rounds && i < 16; i++)
		acc = acc * 31 + (i ^ skb->protocol);
	return acc & 0xffff;
}

SEC("socket")
int bk_jit_prog(struct __sk_buff *skb)
{
	__u32 k = 0;
	__u64 *hits = bpf_map_lookup_elem(&bk_jit_hits, &k);

	if (hits)
		__sync_fetch_and_add(hits, 1);
	return bk_mix(skb, skb->len & 7);
}

char LICENSE[] SEC("license") = "GPL";
