// Legacy `maps` section (struct bpf_map_def records), a socket filter and a kprobe-style
// program in one object; each program looks up and updates a legacy hash map.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") counts = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 1024,
};

struct bpf_map_def SEC("maps") lengths = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 16,
};

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

SEC("socket")
int socket_filter(struct __sk_buff *skb)
{
	__u32 proto = load_byte(skb, 23);
	__u32 len_bucket = skb->len >> 7;
	__u64 one = 1, *v;

	if (load_half(skb, 12) != 0x0800)
		return 0;
	v = bpf_map_lookup_elem(&counts, &proto);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&counts, &proto, &one, BPF_ANY);
	if (len_bucket > 15)
		len_bucket = 15;
	v = bpf_map_lookup_elem(&lengths, &len_bucket);
	if (v)
		*v += load_word(skb, 26) & 0xff;
	return -1;
}

SEC("kprobe/do_sys_open")
int kprobe_open(void *ctx)
{
	__u32 key = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *v = bpf_map_lookup_elem(&counts, &key);

	if (v)
		(*v)++;
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	return 0;
}

char _license[] SEC("license") = "GPL";
__u32 _version SEC("version") = 0xFFFFFFFE;
