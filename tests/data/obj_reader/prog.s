	.text
	.globl	first
first:
	r0 = 1
	exit
	.globl	second
second:
	r1 = 2 ll
	r0 = r1
	exit

	.section	socket,"ax",@progbits
	r0 = 0
	exit
