// What the VM's fake task and clock look like to a program: one record in an array map.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct seen {
	__u64 now;
	__u64 pid_tgid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct seen);
} seen SEC(".maps");

SEC("xdp")
int task(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct seen *s = bpf_map_lookup_elem(&seen, &zero);

	if (!s)
		return XDP_ABORTED;
	s->now = bpf_ktime_get_ns();
	s->pid_tgid = bpf_get_current_pid_tgid();
	bpf_get_current_comm(s->comm, sizeof(s->comm));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
