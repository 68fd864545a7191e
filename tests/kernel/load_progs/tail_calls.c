// Maps with initial `values`: a prog array filled with a program of the object (tail
// call) and an array of maps filled with two inner maps; plus a ring buffer whose size
// is not a power-of-two number of pages (the loader rounds it up, as libbpf does).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { &inner_a, &inner_b },
};

int tail(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jumps SEC(".maps") = {
	.values = { [1] = (void *)&tail },
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 3 * 4096);
} events SEC(".maps");

SEC("socket")
int tail(struct __sk_buff *skb)
{
	return 42;
}

SEC("socket")
int entry(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &jumps, 1);
	return 1;
}

SEC("socket")
int through_outer(struct __sk_buff *skb)
{
	__u32 k = 1, z = 0, *v;
	void *in = bpf_map_lookup_elem(&outer, &k);

	if (!in)
		return 0;
	v = bpf_map_lookup_elem(in, &z);
	return v ? *v : 0;
}

char _license[] SEC("license") = "GPL";
