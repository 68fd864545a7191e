// Two programs in one section sharing a static sub-program in .text, a bpf_loop
// callback (a function address), bpf_printk strings (.rodata.str1.1) and a custom
// data section (.data.counters).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __attribute__((noinline)) int helper(int x)
{
	bpf_printk("helper %d", x);
	return x * 2;
}

__u32 counter SEC(".data.counters") = 7;

static long cb(__u32 i, void *ctx)
{
	*(int *)ctx += helper(i);
	return 0;
}

SEC("xdp")
int first(struct xdp_md *ctx)
{
	int s = 0;

	bpf_loop(3, cb, &s, 0);
	return helper(counter) + s > 0 ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int second(struct xdp_md *ctx)
{
	counter++;
	return helper(1) == 2 ? XDP_PASS : XDP_ABORTED;
}

char _license[] SEC("license") = "GPL";
