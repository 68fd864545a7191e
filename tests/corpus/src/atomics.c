// Atomic operations on globals and map values (fetch and non-fetch, 32- and 64-bit,
// xchg, cmpxchg): lock add at -mcpu=v1, the whole family from v3 on.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 c64;
__u32 c32;

SEC("tracepoint/syscalls/sys_enter_kill")
int tp_atomics(void *ctx)
{
	__u64 r = 0;

	__sync_fetch_and_add(&c64, 1);
	__sync_fetch_and_add(&c32, 2);
#if __BPF_CPU_VERSION__ >= 3
	r += __sync_fetch_and_add(&c64, 3);
	r += __sync_fetch_and_add(&c32, 4);
	__sync_fetch_and_or(&c64, 0x10);
	__sync_fetch_and_and(&c32, 0xff);
	__sync_fetch_and_xor(&c64, 5);
	r += __sync_fetch_and_or(&c32, 0x20);
	r += __sync_fetch_and_and(&c64, 0xf0);
	r += __sync_fetch_and_xor(&c32, 6);
	r += __sync_lock_test_and_set(&c64, 7);
	r += __sync_lock_test_and_set(&c32, 8);
	r += __sync_val_compare_and_swap(&c64, 7, 9);
	r += __sync_val_compare_and_swap(&c32, 8, 10);
#endif
	return (int)r;
}

char LICENSE[] SEC("license") = "GPL";
