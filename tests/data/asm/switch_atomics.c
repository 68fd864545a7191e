/* Switches, 32-bit arithmetic, atomics, signed division, byte swaps, function pointers. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

long counter;
int small;
struct pair { long a; int b; short c; char d; } pairs[4] = { {1, 2, 3, 4}, {5, 6, 7, 8} };
long *ptrs[2] = { &counter, (long *)&small };
static int (*const fp)(void) = 0;

static __attribute__((noinline)) int pick(int x)
{
	switch (x) {
	case 0: return 11;
	case 1: return 22;
	case 2: return 35;
	case 3: return 47;
	case 7: return 91;
	default: return -1;
	}
}

static __attribute__((noinline)) long cb(void *map, void *k, void *v, void *ctx)
{
	return 0;
}

SEC("socket")
int filter(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&counter, 1);
	long old = __sync_fetch_and_or(&counter, 2);
	__sync_lock_test_and_set(&counter, 3);
	__sync_val_compare_and_swap(&counter, old, 5);
	int v = pick(skb->len & 7);
	long q = (long)skb->len / -3 + (long)skb->mark % 5;
	unsigned int be = bpf_htonl(skb->protocol);
	unsigned short b16 = bpf_htons((unsigned short)skb->len);
	signed char sc = (signed char)skb->priority;
	short ss = (short)skb->hash;
	pairs[skb->len & 3].c = b16;
	bpf_loop(4, cb, 0, 0);
	return v + q + be + sc + ss + *ptrs[skb->len & 1];
}

char _license[] SEC("license") = "Dual MIT/GPL";
