# Directives compilers and people write, each compared with llvm-mc-19's object.
	.file	"directives.c"
	.text
	.globl	f1
	.p2align	3
	.type	f1,@function
f1:                                     # a comment after a label
	.cfi_startproc
	r1 = .L.str ll                  # a string in a mergeable section
	r2 = .L.str+3 ll                # offset into it: the relocation keeps the symbol
	r3 = counter ll
	r4 = table+16 ll
	call	f2
	call	ext_helper
	r5 = f2 ll                      # a function's address (callback)
	if r1 == 0 goto .LBB0_2
	r0 = 1 ; exit
.LBB0_2:
	r0 = 0
	exit
.Lfunc_end0:
	.size	f1, .Lfunc_end0-f1
	.cfi_endproc

	.section	.text.f2,"ax",@progbits
	.p2align	3
	.type	f2,@function
f2:
	.cfi_startproc
	r0 = 7
	.p2align	4
	exit
.Lfunc_end1:
	.size	f2, .Lfunc_end1-f2
	.cfi_endproc

	.section	.rodata.str1.1,"aMS",@progbits,1
.L.str:
	.asciz	"hello\tworld\n\101\x42\"q\"\\"
	.ascii	"no terminator"
	.string	"two", "strings"

	.data
	.globl	table
	.p2align	3
table:
	.byte	1, 2, 0xff, -1
	.short	0x1234, -2
	.2byte	3
	.long	0x89abcdef
	.int	5
	.4byte	6
	.quad	f1
	.quad	counter
	.quad	table+8
	.8byte	ext_data
	.long	.Lend-table
	.long	f1
	.long	local_obj
	.uleb128	300, 0, 127, 128
	.sleb128	-2, 63, 64, -65
	.fill	3, 2, 0x41
	.space	3, 0x42
	.skip	2
	.zero	5
	.balign	8
	.align	4, 0x11
.Lend:
	.size	table, .Lend-table

	.pushsection	.maps,"aw",@progbits
	.p2align	2
	.type	local_obj,@object
local_obj:
	.long	1, 2, 3
	.size	local_obj, 12
	.popsection
	.long	0xdeadbeef

	.bss
	.globl	counter
	.p2align	3
counter:
	.zero	8
	.size	counter, 8
	.previous
	.byte	9

	.section	license,"aw",@progbits
	.globl	_license
_license:
	.asciz	"GPL"
	.size	_license, 4

	.weak	weak_sym
	.hidden	weak_sym
	.set	weak_sym, table+4
	.set	const_sym, 42
	.set	alias_sym, local_obj
	.globl	alias_sym
	.comm	gcommon,16,8
	.local	lcommon
	.comm	lcommon,4,4
	.lcomm	lcomm2,2
	.type	gcommon,@object
	.protected	_license
	.section	.note.GNU-stack,"",@progbits
	.ident	"bpfkit test"
	.ident	"second ident"
	.addrsig
	.addrsig_sym f1
	.addrsig_sym table
	.addrsig_sym local_obj
