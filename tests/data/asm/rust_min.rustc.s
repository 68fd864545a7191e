	.file	"x.b75c747db3c90ec4-cgu.0"
	.section	"kprobe/sys_clone","ax",@progbits
	.globl	hello
	.p2align	3
	.type	hello,@function
hello:
	r1 = _RNvCsfK1GdBINzXk_1x3MSG ll
	call helper_fn
	r0 = 0
	exit
.Lfunc_end0:
	.size	hello, .Lfunc_end0-hello

	.section	.text.helper_fn,"ax",@progbits
	.globl	helper_fn
	.p2align	3
	.type	helper_fn,@function
helper_fn:
	r2 = 17
	call bpf_trace_printk
	exit
.Lfunc_end1:
	.size	helper_fn, .Lfunc_end1-helper_fn

	.type	LICENSE,@object
	.section	license,"a",@progbits
	.globl	LICENSE
LICENSE:
	.asciz	"GPL"
	.size	LICENSE, 4

	.type	_RNvCsfK1GdBINzXk_1x3MSG,@object
	.section	.rodata._RNvCsfK1GdBINzXk_1x3MSG,"a",@progbits
_RNvCsfK1GdBINzXk_1x3MSG:
	.asciz	"hello from rust\n"
	.size	_RNvCsfK1GdBINzXk_1x3MSG, 17

