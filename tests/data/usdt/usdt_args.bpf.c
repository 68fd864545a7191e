/* USDT programs for tests/kernel/test_usdt.py, written as a libbpf user writes them
 * (usdt.bpf.h's BPF_USDT, bpf_usdt_arg_cnt): each counts its calls and records the last
 * arguments it read.  The probes are those of probes.c and tick.c; compiled with
 * -DBIN='"/path/to/probes"' the sections name them (usdt/PATH:PROVIDER:NAME), without it
 * they are plain "usdt" and the probe comes from the command line (--attach). */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

#ifdef BIN
#define AT(name) "usdt/" BIN ":bpfkit_test:" name
#else
#define AT(name) "usdt"
#endif

enum { ARGS, CONSTANT, MEM, TICK, N_PROBES };

struct seen {
	__u64 calls;
	long arg_cnt;
	long args[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, N_PROBES);
	__type(key, __u32);
	__type(value, struct seen);
} seen SEC(".maps");

static __always_inline struct seen *count(__u32 probe, struct pt_regs *ctx)
{
	struct seen *s = bpf_map_lookup_elem(&seen, &probe);

	if (s) {
		__sync_fetch_and_add(&s->calls, 1);
		s->arg_cnt = bpf_usdt_arg_cnt(ctx);
	}
	return s;
}

SEC(AT("args"))
int BPF_USDT(on_args, int i, long big, short neg, unsigned char small)
{
	struct seen *s = count(ARGS, ctx);

	if (s) {
		s->args[0] = i;
		s->args[1] = big;
		s->args[2] = neg;
		s->args[3] = small;
	}
	return 0;
}

SEC(AT("constant"))
int BPF_USDT(on_constant, int five)
{
	struct seen *s = count(CONSTANT, ctx);

	if (s)
		s->args[0] = five;
	return 0;
}

SEC(AT("mem"))
int BPF_USDT(on_mem, long *where, long value)
{
	struct seen *s = count(MEM, ctx);
	long read = 0;

	if (s) {
		bpf_probe_read_user(&read, sizeof(read), where);
		s->args[0] = read;
		s->args[1] = value;
	}
	return 0;
}

SEC(AT("tick"))
int BPF_USDT(on_tick, int ten_i)
{
	struct seen *s = count(TICK, ctx);

	if (s)
		s->args[0] = ten_i;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
