/* The probe with a semaphore: its arguments are computed only while it is traced. */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

unsigned short bpfkit_test_tick_semaphore __attribute__((unused))
	__attribute__((section(".probes")));

__attribute__((noinline)) void tick(int i)
{
	if (bpfkit_test_tick_semaphore)
		DTRACE_PROBE1(bpfkit_test, tick, i * 10);
}
