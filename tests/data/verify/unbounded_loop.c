/* A loop waiting for a value that never changes inside it: the verifier sees the same
 * state at the loop head again and again and calls it an infinite loop. */
#include <linux/bpf.h>
#define SEC(x) __attribute__((section(x), used))

SEC("xdp") int wait_for_queue(struct xdp_md *ctx)
{
    volatile __u32 queue = ctx->rx_queue_index;
    while (queue != 0) /* FAIL */
        ;
    return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
