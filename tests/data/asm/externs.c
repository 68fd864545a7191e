/* Extern kfuncs (__ksym, weak and strong), a ksym variable, __kconfig externs, a callback. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
extern int LINUX_KERNEL_VERSION __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig __weak;
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym __weak;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern const int bpf_prog_active __ksym;
static int cb(int i, void *ctx) { return 0; }
SEC("tp_btf/sched_switch")
int handler(unsigned long long *ctx)
{
	struct task_struct *t = (void *)ctx[1];
	if (bpf_task_acquire) { t = bpf_task_acquire(t); if (t) bpf_task_release(t); }
	bpf_loop(3, cb, 0, 0);
	return LINUX_KERNEL_VERSION + CONFIG_BPF_SYSCALL + (int)(long)&bpf_prog_active;
}
char _license[] SEC("license") = "GPL";
