// dns_filter: a socket filter that keeps IPv4 UDP packets to port 53 and drops the rest.
//
// Build: bpfkit build examples/socket_filter/dns_filter.c   (clang -target bpf -O2 -g)
// A socket filter returns how many bytes of the packet to keep: all of them (skb->len)
// for DNS queries, 0 (drop) otherwise.  It reads the packet with bpf_skb_load_bytes from
// the network header on (the kernel has already taken the Ethernet header off).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

SEC("socket")
int dns_filter(struct __sk_buff *skb)
{
	__u8 ver_ihl, proto;
	__u16 dport;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, 0, &ver_ihl, 1) < 0)
		return 0;
	if (bpf_skb_load_bytes(skb, 9, &proto, 1) < 0 || proto != IPPROTO_UDP)
		return 0;
	if (bpf_skb_load_bytes(skb, (ver_ihl & 0xf) * 4 + 2, &dport, 2) < 0)
		return 0;
	return dport == bpf_htons(53) ? skb->len : 0;
}

char LICENSE[] SEC("license") = "GPL";
