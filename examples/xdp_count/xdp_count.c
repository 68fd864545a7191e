// xdp_count: count packets per IP protocol (IPv4 and IPv6) in an array map, pass them all.
//
// Build: bpfkit build examples/xdp_count/xdp_count.c   (clang -target bpf -O2 -g)
// The `counts` map holds one u64 per protocol number (6 = TCP, 17 = UDP, ...); slot 0
// counts frames that are neither IPv4 nor IPv6 or too short to tell.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 proto = 0;

	if ((void *)(eth + 1) <= data_end) {
		if (eth->h_proto == bpf_htons(ETH_P_IP)) {
			struct iphdr *ip = (void *)(eth + 1);
			if ((void *)(ip + 1) <= data_end)
				proto = ip->protocol;
		} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
			struct ipv6hdr *ip6 = (void *)(eth + 1);
			if ((void *)(ip6 + 1) <= data_end)
				proto = ip6->nexthdr;
		}
	}

	__u64 *count = bpf_map_lookup_elem(&counts, &proto);
	if (count)
		__sync_fetch_and_add(count, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
