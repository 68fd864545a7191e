// CO-RE: offsets, sizes, existence and enum values of kernel types, rewritten by the
// loader for the running kernel (the local definitions below are deliberately wrong).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	int bpfkit_no_such_field;
} __attribute__((preserve_access_index));

struct task_struct___older {
	int bpfkit_gone;
} __attribute__((preserve_access_index));

struct bpfkit_no_such_type {
	int x;
} __attribute__((preserve_access_index));

enum pid_type___local { PIDTYPE_PID___local, PIDTYPE_TGID___local = 99 };

__u64 out[9];

SEC("socket")
int core(void *ctx)
{
	out[0] = bpf_core_field_offset(struct task_struct, pid);
	out[1] = bpf_core_field_offset(struct task_struct, tgid);
	out[2] = bpf_core_field_offset(struct task_struct, real_parent);
	out[3] = bpf_core_field_size(struct task_struct, real_parent);
	out[4] = bpf_core_field_exists(struct task_struct, bpfkit_no_such_field);
	out[5] = bpf_core_type_size(struct task_struct);
	out[6] = bpf_core_type_exists(struct task_struct___older);
	out[7] = bpf_core_enum_value(enum pid_type___local, PIDTYPE_TGID___local);
	out[8] = bpf_core_type_exists(struct bpfkit_no_such_type);
	return 0;
}

SEC("socket")
int poisoned(void *ctx)
{
	struct task_struct *t = (void *)0;

	/* The field does not exist in the kernel: the relocation poisons the load. */
	return bpf_core_field_offset(struct task_struct, bpfkit_no_such_field);
}

char _license[] SEC("license") = "GPL";
