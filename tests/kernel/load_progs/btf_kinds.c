// BTF kinds that older kernels refuse (FLOAT, DECL_TAG, TYPE_TAG, ENUM64), for the
// BTF sanitizer: the sanitized BTF must still load, with the same type ids.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum big { BIG_ONE = 1, BIG_HUGE = 0x100000000ULL };

struct tagged {
	int plain;
	int __attribute__((btf_decl_tag("user"))) marked;
	int __attribute__((btf_type_tag("percpu"))) *ptr;
	float ratio;
	enum big size;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tagged);
} tagged_map SEC(".maps");

SEC("socket")
int kinds(struct __sk_buff *skb)
{
	__u32 k = 0;
	struct tagged *t = bpf_map_lookup_elem(&tagged_map, &k);

	return t ? t->plain + (t->size == BIG_HUGE) : 0;
}

char _license[] SEC("license") = "GPL";
