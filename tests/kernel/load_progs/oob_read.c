// The verifier rejects this: it reads past the end of a map value.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} small SEC(".maps");

SEC("socket")
int too_far(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u32 *v = bpf_map_lookup_elem(&small, &key);

	if (!v)
		return 0;
	return v[skb->len & 0xff];	/* out of bounds: the value is 4 bytes */
}

char _license[] SEC("license") = "GPL";
