# llvm-objdump's label rules: a section with no symbol at 0 (named after the section),
# several symbols at one address (one printed), jumps to and past labels, a jump out of
# the section, a run of zero bytes (printed as ...), a local call, and a second section.
	.section	.text.first,"ax",@progbits
	r0 = 1
	.globl	zeta
	.type	zeta,@function
	.globl	alpha
	.type	alpha,@function
zeta:
alpha:
inner:
	r0 += 2
	if r0 > 9 goto inner
	if w0 s< -3 goto out
	goto +100
	goto -100
	call helper
out:
	r0 = 0 ll
	exit
	.section	.text.second,"ax",@progbits
	.type	helper,@function
helper:
	r0 = 42
	exit
	.quad	0
	.quad	0
	w0 = 1
	exit
