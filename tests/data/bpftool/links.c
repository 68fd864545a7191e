// Programs to attach as BPF links (a raw tracepoint link, a perf_event link on a
// tracepoint, a cgroup link, an XDP link) for the `bpfkit link` tests in
// tests/cli/test_bpftool_cli.py.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("raw_tp/sys_enter")
int bk_link_raw(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_enter_getpid")
int bk_link_tp(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
SEC("cgroup_skb/ingress")
int bk_link_cg(void *ctx) { return 1; }
SEC("xdp")
int bk_link_xdp(struct xdp_md *ctx) { return XDP_PASS; }
