# An object symbol (STT_OBJECT) inside an executable section: llvm-objdump dumps its range
# as data (8 bytes a line, with ASCII) instead of disassembling it.
	.section	.text.mixed,"ax",@progbits
	r0 = 2
	.type	table,@object
table:
	r0 = 1
	exit
	.ascii	"ABCDEFG"
	.byte	0
	.size	table, 24
	.globl	after
	.type	after,@function
after:
	r0 = 3
	exit
