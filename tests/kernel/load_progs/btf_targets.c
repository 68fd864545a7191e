// Programs whose attach target is found in the kernel's BTF: a BTF-enabled raw
// tracepoint and a task iterator (fentry is refused by this test kernel, so it is
// not here).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tp_btf/sched_switch")
int on_switch(unsigned long long *ctx)
{
	return 0;
}

SEC("iter/task")
int dump_task(void *ctx)
{
	return 0;
}

char _license[] SEC("license") = "GPL";
