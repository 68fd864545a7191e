/* Maps (BTF-style and legacy), global data in .data/.rodata/.bss, strings, helper calls. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct bpf_map_def_legacy {
	unsigned int type, key_size, value_size, max_entries, map_flags;
};
struct bpf_map_def_legacy legacy SEC("maps") = { BPF_MAP_TYPE_ARRAY, 4, 8, 16, 0 };

volatile int threshold = 7;
const volatile long limit = 100;
static long hits;
const char fmt[] = "pid %d count %llu\n";
char buf[32];

static __attribute__((noinline)) long bump(__u64 *v, long by)
{
	*v += by;
	hits++;
	return *v > limit ? 1 : 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int count_exec(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&counts, &pid);
	if (!v) {
		bpf_map_update_elem(&counts, &pid, &one, BPF_ANY);
		return 0;
	}
	if (bump(v, threshold))
		bpf_trace_printk(fmt, sizeof(fmt), pid, *v);
	buf[pid & 31] = 1;
	__u32 k = 0;
	bpf_map_lookup_elem(&legacy, &k);
	return 0;
}

SEC("xdp")
int drop_odd(struct xdp_md *x)
{
	void *data = (void *)(long)x->data, *end = (void *)(long)x->data_end;
	if (data + 14 > end)
		return XDP_PASS;
	unsigned char *p = data;
	int sum = 0;
	for (int i = 0; i < 14; i++)
		sum += p[i];
	return sum & 1 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
