// Sends the first 4 packet bytes and the packet length as one ring-buffer record.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("xdp")
int ring(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct { __u32 head; __u32 len; } rec;

	if (data + 4 > end)
		return XDP_DROP;
	rec.head = *(__u32 *)data;
	rec.len = end - data;
	bpf_ringbuf_output(&events, &rec, sizeof(rec), 0);
	bpf_printk("len %d", rec.len);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
