// One program per attach type `bpfkit run` attaches; each adds 1 to its own slot of
// `hits`, so a test can tell which ran.  The slots are the HIT_* numbers in
// tests/kernel/test_attach_types.py.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline void hit(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&hits, &slot);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int on_xdp(struct xdp_md *ctx) { hit(0); return XDP_PASS; }

SEC("tcx/ingress")
int on_tcx_in(struct __sk_buff *skb) { hit(1); return -1; /* TCX_NEXT */ }

SEC("tcx/egress")
int on_tcx_out(struct __sk_buff *skb) { hit(2); return -1; }

SEC("cgroup_skb/ingress")
int on_cg_in(struct __sk_buff *skb) { hit(3); return 1; }

SEC("cgroup_skb/egress")
int on_cg_out(struct __sk_buff *skb) { hit(4); return 1; }

SEC("cgroup/sock_create")
int on_sock_create(struct bpf_sock *sk) { hit(5); return 1; }

SEC("cgroup/connect4")
int on_connect4(struct bpf_sock_addr *ctx) { hit(6); return 1; }

SEC("cgroup/sysctl")
int on_sysctl(struct bpf_sysctl *ctx) { hit(7); return 1; }

SEC("cgroup/getsockopt")
int on_getsockopt(struct bpf_sockopt *ctx) { hit(8); return 1; }

SEC("perf_event")
int on_cpu_clock(void *ctx) { hit(9); return 0; }

SEC("tp_btf/sched_process_fork")
int on_fork(void *ctx) { hit(10); return 0; }

SEC("raw_tp/sys_enter")
int on_raw_sys_enter(void *ctx) { hit(11); return 0; }

SEC("fentry/do_nanosleep")
int on_fentry(void *ctx) { hit(12); return 0; }

SEC("fexit/do_nanosleep")
int on_fexit(void *ctx) { hit(13); return 0; }

SEC("lsm/file_open")
int on_lsm(void *ctx) { hit(14); return 0; }

SEC("cgroup/dev")
int on_dev(struct bpf_cgroup_dev_ctx *ctx) { hit(15); return 1; }

char LICENSE[] SEC("license") = "GPL";
