// A hash map with struct keys and values: the socket filter returns the `n` of key
// {.port = 53, .proto = 17}, plus 1000 if its name starts with 'd'; 0 when absent.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct key {
	__u16 port;
	__u8 proto;
	__u8 pad;
};

struct value {
	__u32 n;
	char name[12];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct key);
	__type(value, struct value);
} table SEC(".maps");

SEC("socket")
int typed(struct __sk_buff *skb)
{
	struct key k = {.port = 53, .proto = 17};
	struct value *v = bpf_map_lookup_elem(&table, &k);

	if (!v)
		return 0;
	v->n += 1;
	return v->n + (v->name[0] == 'd' ? 1000 : 0);
}

char LICENSE[] SEC("license") = "GPL";
