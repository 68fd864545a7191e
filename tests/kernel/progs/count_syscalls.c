// Counts syscalls per process (tgid) in a BTF-defined hash map, with global data
// (.rodata, .data, .bss) and a bpf-to-bpf call: the run/attach tests read it from Python.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

const volatile __u64 step = 1;     // .rodata: what each syscall adds
__u64 total_seen = 0;              // .bss
__u32 last_tgid = 7;               // .data

static __attribute__((noinline)) __u64 bump(__u32 tgid)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &tgid);
	if (v) {
		__sync_fetch_and_add(v, step);
		return *v;
	}
	__u64 one = step;
	bpf_map_update_elem(&counts, &tgid, &one, BPF_NOEXIST);
	return one;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int count_syscalls(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	bump(tgid);
	__sync_fetch_and_add(&total_seen, 1);
	last_tgid = tgid;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
