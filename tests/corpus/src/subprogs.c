// Sub-programs (__noinline functions in .text), static and global, called from two
// programs; bounded loops; a switch (jump chains); signed arithmetic.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __noinline __u64 mix(__u64 a, __u64 b)
{
	__u64 h = a ^ 0x9e3779b97f4a7c15ULL;
	int i;

	for (i = 0; i < 8; i++) {
		h ^= b >> (i * 8);
		h *= 0x100000001b3ULL;
	}
	return h;
}

__noinline int classify(long v)
{
	switch (v & 7) {
	case 0: return 10;
	case 1: return -3;
#if __BPF_CPU_VERSION__ >= 4
	case 2: return (int)(v / 3);   /* sdiv, smod: cpu v4 */
	case 3: return (int)(v % 5);
#else
	case 2: return (int)((unsigned long)v / 3);
	case 3: return (int)((unsigned long)v % 5);
#endif
	case 5: return v > 100 ? 1 : 2;
	default: return (int)(v >> 2);
	}
}

static __noinline int sum_to(int n)
{
	int s = 0;

	for (int i = 0; i < n && i < 64; i++)
		s += i * i;
	return s;
}

SEC("tracepoint/sched/sched_switch")
int tp_switch(void *ctx)
{
	__u64 t = bpf_ktime_get_ns();
	return classify((long)mix(t, 42)) + sum_to(t & 31);
}

SEC("socket")
int sock_sub(struct __sk_buff *skb)
{
	long l = (long)skb->len - 100;
	return classify(l) > 0 ? sum_to(skb->protocol & 15) : 0;
}

char LICENSE[] SEC("license") = "GPL";
