# A loop, a 16-byte lddw, a bpf-to-bpf call and an if/else: 6 blocks, 7 edges, 1 loop.
	.text
	.globl	prog
	.type	prog,@function
prog:
	r0 = 0
	r1 = 10
loop:
	r0 += r1
	r1 += -1
	if r1 != 0 goto loop
	r2 = 0 ll
	call sub
	if r0 > 5 goto big
	r0 = 1
	goto out
big:
	r0 = 2
out:
	exit
	.globl	sub
	.type	sub,@function
sub:
	r0 = 3
	exit
