/* A map lookup used without a NULL check: the verifier rejects the dereference. */
#include <linux/bpf.h>
#define SEC(x) __attribute__((section(x), used))
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
struct {
    int (*type)[BPF_MAP_TYPE_HASH];
    int (*max_entries)[64];
    __u32 *key;
    __u64 *value;
} counts SEC(".maps");

SEC("xdp") int count_packets(struct xdp_md *ctx)
{
    __u32 key = ctx->ingress_ifindex;
    __u64 *value = bpf_map_lookup_elem(&counts, &key);
    *value += 1; /* FAIL */
    return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
