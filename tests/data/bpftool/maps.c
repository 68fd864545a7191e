// Maps of several shapes for the bpftool-compatible CLI tests (tests/cli/test_bpftool_cli.py):
// a hash of structs (ints, a signed field, a char array), an array of counters and a
// per-CPU array, used by one socket filter so bpftool lists the program's map ids; a
// read-only global (a frozen .rodata map) and a program array the filter tail-calls
// through (the kernel then reports the array's owner program type).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct pair {
	__u32 a;
	__s32 b;
	char tag[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct pair);
} bk_pairs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} bk_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} bk_percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} bk_jumps SEC(".maps");

const volatile __u32 bk_first = 0;

SEC("socket")
int bk_cli_prog(void *ctx)
{
	__u32 k = bk_first;
	__u64 *v = bpf_map_lookup_elem(&bk_slots, &k);
	__u32 *c = bpf_map_lookup_elem(&bk_percpu, &k);
	struct pair *p = bpf_map_lookup_elem(&bk_pairs, &k);

	if (v)
		*v += 1;
	if (c)
		*c += 1;
	bpf_tail_call(ctx, &bk_jumps, 1);  /* an empty slot: falls through */
	return p ? p->a : 0;
}

char LICENSE[] SEC("license") = "GPL";

// A name longer than the kernel keeps (15 characters): bpftool shows and matches the
// function's name from BTF.
SEC("socket")
int bk_cli_program_with_a_long_name(void *ctx)
{
	return 0;
}
