// Prints one line per getppid() call of any process: bpfkit run / trace tests.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tracepoint/syscalls/sys_enter_getppid")
int printer(void *ctx)
{
	bpf_printk("bpfkit printer %d", (int)(bpf_get_current_pid_tgid() >> 32));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
