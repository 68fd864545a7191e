/* CPython's USDT probes (a CPython built --with-dtrace, as Debian's is), compiled with
 * -DPY='"/usr/bin/python3.11"': gc__start's generation (an argument on the stack,
 * -4@112(%rsp)) and import__find__load__start's module name (a pointer in a register),
 * both guarded by semaphores. */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} collections SEC(".maps");

struct name {
	char text[48];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct name);
	__type(value, __u64);
} imports SEC(".maps");

SEC("usdt/" PY ":python:gc__start")
int BPF_USDT(on_gc_start, int generation)
{
	__u32 key = generation;
	__u64 *n = bpf_map_lookup_elem(&collections, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

SEC("usdt/" PY ":python:import__find__load__start")
int BPF_USDT(on_import, const char *module)
{
	struct name key = {};
	__u64 one = 1, *n;

	bpf_probe_read_user_str(key.text, sizeof(key.text), module);
	n = bpf_map_lookup_elem(&imports, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&imports, &key, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
