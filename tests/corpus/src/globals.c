// Global data: .data, .rodata (a const table and a format string), .bss; a tracepoint
// program that prints with bpf_printk and updates counters in .bss and .data.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

volatile int hits = 7;                 /* .data */
volatile unsigned long long total;     /* .bss */
const volatile int threshold = 3;      /* .rodata */
static const char names[4][8] = {"zero", "one", "two", "three"};

SEC("tracepoint/syscalls/sys_enter_getpid")
int tp_getpid(void *ctx)
{
	int n = hits;

	hits = n + 1;
	total += n;
	if (n > threshold)
		bpf_printk("getpid %d %s", n, names[n & 3]);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
