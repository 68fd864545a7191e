/* A packet read without comparing against data_end first. */
#include <linux/bpf.h>
#define SEC(x) __attribute__((section(x), used))

SEC("xdp") int read_proto(struct xdp_md *ctx)
{
    unsigned char *data = (unsigned char *)(long)ctx->data;
    unsigned char *end = (unsigned char *)(long)ctx->data_end;
    if (data + 12 > end)
        return XDP_PASS;
    unsigned char hi = data[12]; /* FAIL */
    return hi == 8 ? XDP_DROP : XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
