	.text
	.globl	f
	.type	f,@function
f:
	r0 = 0
loop:
	r0 += 1
	if r0 < 10 goto loop
	exit
	.globl	g
	.type	g,@function
g:
	r0 = 2
	exit
