#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct legacy_def { unsigned int type, key_size, value_size, max_entries, map_flags; };
struct legacy_def counts __attribute__((section("maps"), used)) = { BPF_MAP_TYPE_HASH, 4, 8, 1024, 0 };
struct legacy_def arr __attribute__((section("maps"), used)) = { BPF_MAP_TYPE_ARRAY, 4, 4, 16, 1 };

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 128);
    __uint(map_flags, BPF_F_NO_PREALLOC);
} btf_hash SEC(".maps");

struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u32); __uint(max_entries, 1); } inner1 SEC(".maps");
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 2);
    __type(key, __u32);
    __array(values, struct inner);
} outer SEC(".maps") = { .values = { &inner1 } };

int gcount = 1;
const volatile int limit = 5;
long zero_init;
char msg[] = "hi";

extern int LINUX_KERNEL_VERSION __kconfig;

static __noinline int helper_static(int x) { return x * 2 + limit; }
__noinline int helper_global(int x) { return x + gcount; }

static long cb(__u32 i, void *ctx) { zero_init += i; return 0; }

SEC("tracepoint/syscalls/sys_enter_write")
int count(void *ctx)
{
    __u32 k = 0;
    __u64 *v = bpf_map_lookup_elem(&counts, &k);
    if (v) (*v)++;
    __u64 *w = bpf_map_lookup_elem(&btf_hash, &k);
    if (w) (*w)++;
    bpf_loop(4, cb, 0, 0);
    bpf_printk("x %d %s", LINUX_KERNEL_VERSION, msg);
    return helper_static(k) + helper_global(gcount);
}

SEC("xdp")
int xdp_a(struct xdp_md *ctx) { return XDP_PASS; }
SEC("xdp")
int xdp_b(struct xdp_md *ctx) { return helper_global(1) ? XDP_DROP : XDP_PASS; }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
