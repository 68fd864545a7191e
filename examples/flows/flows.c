// flows: typed maps and records, for bpfkit's Python API (docs/loading.md, "Typed maps").
//
// Build: bpfkit build examples/flows/flows.c   (clang -target bpf -O2 -g)
// A hash of struct keys and struct values (an enum, a char array, an array of signed
// ints), a per-CPU array, an array of enums, a ring buffer and a perf buffer of
// `struct event`.  The program returns XDP_DROP when modes[0] is STOPPED.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum state { IDLE = 0, RUNNING = 1, STOPPED = 5 };
struct flow { __u32 addr; __u16 port; __u8 proto; __u8 pad; };
struct stats { __u64 packets; enum state st; char name[12]; __s16 delta[3]; };
struct event { __u32 pid; enum state st; char comm[8]; __u64 len; __u64 seq; };

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct flow);
	__type(value, struct stats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} bytes_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, enum state);
} modes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 4);
} perf_events SEC(".maps");

__u64 seq = 0;
// Clang writes BTF only for types that maps, functions and globals use: this pointer puts
// struct event in the object, so readers decode the records (cilium/ebpf's convention).
const struct event *unused_event __attribute__((unused));

SEC("xdp")
int count_flows(struct xdp_md *ctx)
{
	struct flow key = {.addr = 0x0100007f, .port = 80, .proto = 6};
	__u32 len = ctx->data_end - ctx->data;
	struct stats *s = bpf_map_lookup_elem(&flows, &key);
	if (s) {
		s->packets++;
		s->st = RUNNING;
	} else {
		struct stats first = {.packets = 1, .st = IDLE, .name = "first", .delta = {-1, 2, -3}};
		bpf_map_update_elem(&flows, &key, &first, BPF_NOEXIST);
	}
	__u32 i = 2;
	__u64 *bytes = bpf_map_lookup_elem(&bytes_seen, &i);
	if (bytes)
		*bytes += len;
	i = 0;
	enum state *mode = bpf_map_lookup_elem(&modes, &i);
	enum state now = mode ? *mode : IDLE;
	seq++;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->pid = 42;
		e->st = STOPPED;
		__builtin_memcpy(e->comm, "xdp", 4);
		e->len = len;
		e->seq = seq;
		bpf_ringbuf_submit(e, 0);
	}
	struct event sample = {.pid = 7, .st = RUNNING, .comm = "perf", .len = len, .seq = seq};
	bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &sample, sizeof(sample));
	return now == STOPPED ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
