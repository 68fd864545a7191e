// Extern symbols resolved against the running kernel: __kconfig values (a frozen
// .kconfig map) and kfuncs (open-coded number iterator, called by kernel BTF id).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_HZ __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig;
extern int CONFIG_BPFKIT_NOT_A_THING __kconfig __weak;

struct bpf_iter_num {
	__u64 __opaque[1];
} __attribute__((aligned(8)));

extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;

__u64 out_version, out_hz, out_bpf, out_missing;

SEC("socket")
int externs(void *ctx)
{
	struct bpf_iter_num it;
	int *v, sum = 0;

	out_version = LINUX_KERNEL_VERSION;
	out_hz = CONFIG_HZ;
	out_bpf = CONFIG_BPF_SYSCALL;
	out_missing = CONFIG_BPFKIT_NOT_A_THING;
	bpf_iter_num_new(&it, 0, 10);
	while ((v = bpf_iter_num_next(&it)))
		sum += *v;
	bpf_iter_num_destroy(&it);
	return sum;
}

char _license[] SEC("license") = "GPL";
