/* USDT probes for bpfkit's tests (tests/kernel/test_usdt.py, tests/obj/test_usdt_notes.py):
 * `probes N` calls fire() N times; each call hits the probes args, constant and mem, and
 * tick (in tick.c, guarded by its semaphore) only while a tracer holds the semaphore. */
#include <sys/sdt.h>
#include <stdio.h>
#include <stdlib.h>

void tick(int i);

static volatile long sink;

__attribute__((noinline)) static void fire(int i, long big, short neg, unsigned char small)
{
	long local = big * 3;

	DTRACE_PROBE4(bpfkit_test, args, i, big, neg, small);
	DTRACE_PROBE1(bpfkit_test, constant, 5);
	sink = local;
	DTRACE_PROBE2(bpfkit_test, mem, &local, local);
	tick(i);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 3;

	for (int i = 0; i < n; i++)
		fire(i, 0x100000000L * (i + 1), (short)(-1 - i), (unsigned char)(200 + i));
	printf("%d\n", n);
	return 0;
}
