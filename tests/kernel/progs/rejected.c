// A program the verifier rejects: it reads a hash map value without checking for NULL
// (array lookups with a constant key in bounds are known non-NULL on recent kernels).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} values SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int unchecked(void *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&values, &key);
	return *v;  /* v may be NULL */
}

char LICENSE[] SEC("license") = "GPL";
