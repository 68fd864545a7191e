// Programs that would make the VM allocate gigabytes (tests/vm/test_vm_limits.py).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define BIG(n) struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 256); \
	__type(key, __u32); __type(value, char[1 << 20]); } n SEC(".maps")
BIG(a0); BIG(a1); BIG(a2); BIG(a3); BIG(a4); BIG(a5);
BIG(a6); BIG(a7); BIG(a8); BIG(a9); BIG(a10); BIG(a11);

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4096);
	__type(key, __u32); __type(value, char[1 << 20]); } big_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4);
	__uint(value_size, 4); __uint(max_entries, 4); } samples SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1u << 31); } ring SEC(".maps");

SEC("socket") int touch_one(void *ctx)
{
	__u32 k = 7;
	char *v = bpf_map_lookup_elem(&a11, &k);
	if (!v) return 0;
	v[5] = 1;
	return v[5];
}

SEC("socket") int fill_hash(void *ctx)
{
	__u32 k = 0;
	char *v = bpf_map_lookup_elem(&a0, &k);
	if (!v) return 0;
	for (__u32 i = 0; i < 2000; i++)
		bpf_map_update_elem(&big_hash, &i, v, 0);
	return 1;
}

SEC("socket") int many_samples(void *ctx)
{
	__u32 k = 0;
	char *v = bpf_map_lookup_elem(&a0, &k);
	if (!v) return 0;
	for (int i = 0; i < 2000; i++)
		bpf_perf_event_output(ctx, &samples, BPF_F_CURRENT_CPU, v, 1 << 20);
	return 1;
}

SEC("socket") int big_records(void *ctx)
{
	for (int i = 0; i < 60; i++) {
		void *r = bpf_ringbuf_reserve(&ring, 64 << 20, 0);
		if (!r) return 2;
		bpf_ringbuf_submit(r, 0);
	}
	return 1;
}

SEC("socket") int printk_loop(void *ctx)
{
	for (int i = 0; i < 1000000; i++)
		bpf_printk("tick %d", i);
	return 1;
}
char LICENSE[] SEC("license") = "GPL";
