// Sends the caller's tgid through a ring buffer and a perf event array on every
// getppid(): the Session/run tests read both.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 4096);
} ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf SEC(".maps");

struct record {
	__u32 tgid;
	char tag[4];
};

SEC("tracepoint/syscalls/sys_enter_getppid")
int to_ring(void *ctx)
{
	struct record *r = bpf_ringbuf_reserve(&ring, sizeof(*r), 0);
	if (!r)
		return 0;
	r->tgid = bpf_get_current_pid_tgid() >> 32;
	__builtin_memcpy(r->tag, "RING", 4);
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int to_perf(void *ctx)
{
	struct record r = { .tgid = bpf_get_current_pid_tgid() >> 32 };
	__builtin_memcpy(r.tag, "PERF", 4);
	bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, &r, sizeof(r));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
