// execsnoop: one event per execve(), sent to user space through a BPF ring buffer.
//
// Build: bpfkit build examples/execsnoop/execsnoop.c   (clang -target bpf -O2 -g)
// The event layout is `struct event` below; user space reads it from the `events` map.
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#define TASK_COMM_LEN 16
#define FILENAME_LEN 64

// The record user space reads: 4 + 4 + 16 + 64 = 88 bytes, no padding.
struct event {
	__u32 pid;
	__u32 uid;
	char comm[TASK_COMM_LEN];
	char filename[FILENAME_LEN];
};

// /sys/kernel/tracing/events/syscalls/sys_enter_execve/format
struct sys_enter_execve {
	__u64 common;          // common_type, common_flags, common_preempt_count, common_pid
	__s32 syscall_nr;
	__u32 pad;
	const char *filename;
	const char *const *argv;
	const char *const *envp;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_execve")
int trace_execve(struct sys_enter_execve *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;  // the buffer is full: this event is lost
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(e->filename, sizeof(e->filename), ctx->filename);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
