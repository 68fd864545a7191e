/* A libbpf-tools style program: vmlinux.h, CO-RE reads, every common BTF map form. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define TASK_COMM_LEN 16

struct event { u32 pid; u32 ppid; char comm[TASK_COMM_LEN]; };

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 16); } events SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, sizeof(u32)); __uint(value_size, sizeof(u32)); } perf SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, struct event); } heap SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 10240); __type(key, pid_t); __type(value, u64); __uint(map_flags, BPF_F_NO_COMMON_LRU); } starts SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_BLOOM_FILTER); __uint(max_entries, 64); __type(value, u32); __uint(map_extra, 3); } bloom SEC(".maps");
#ifdef WITH_PIN
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8); __type(key, u32); __type(value, u32); __uint(pinning, LIBBPF_PIN_BY_NAME); } pinned_counts SEC(".maps");
#endif

int tail_a(void *ctx);
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 4); __uint(key_size, sizeof(u32)); __array(values, int (void *)); } jmp SEC(".maps") = { .values = { [2] = (void *)&tail_a } };

/* A tail-call table filled from user space: no __array(values, ...). */
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 8); __type(key, u32); __type(value, u32); } progs SEC(".maps");

const volatile pid_t target_pid = 0;
extern u32 LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_HZ __kconfig __weak;

SEC("tracepoint/syscalls/sys_enter_execve")
int tail_a(void *ctx) { return 0; }

SEC("tracepoint/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    u32 zero = 0;
    struct event *e = bpf_map_lookup_elem(&heap, &zero);
    if (!e) return 0;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    if (target_pid && e->pid != target_pid) return 0;
    e->ppid = BPF_CORE_READ(task, real_parent, tgid);
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    if (LINUX_KERNEL_VERSION > 0 && CONFIG_HZ > 0) bpf_ringbuf_output(&events, e, sizeof(*e), 0);
    bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, e, sizeof(*e));
    u64 ts = bpf_ktime_get_ns();
    pid_t pid = e->pid;
    bpf_map_update_elem(&starts, &pid, &ts, BPF_ANY);
    bpf_map_push_elem(&bloom, &zero, 0);
    bpf_tail_call(ctx, &jmp, 2);
    bpf_tail_call(ctx, &progs, 1);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
