	.text
	.file	"hello.2012078a-cgu.0"
	.section	"kprobe/SyS_clone","ax",@progbits
	.globl	kprobe__sys_clone               # -- Begin function kprobe__sys_clone
	.p2align	3
	.type	kprobe__sys_clone,@function
kprobe__sys_clone:                      # @kprobe__sys_clone
	.cfi_startproc
# %bb.0:                                # %start
	r1 = 753353985940811119 ll
	*(u64 *)(r10 - 24) = r1
	r1 = 8243311830880773480 ll
	*(u64 *)(r10 - 32) = r1
	r1 = 0
	*(u8 *)(r10 - 16) = r1
	r1 = r10
	r1 += -32
	r2 = 17
	call 6
	r0 = 0
	exit
.Lfunc_end0:
	.size	kprobe__sys_clone, .Lfunc_end0-kprobe__sys_clone
	.cfi_endproc
                                        # -- End function
	.type	_license,@object                # @_license
	.section	license,"a",@progbits
	.globl	_license
_license:
	.asciz	"GPL"
	.size	_license, 4

	.type	_version,@object                # @_version
	.section	version,"a",@progbits
	.globl	_version
	.p2align	2, 0x0
_version:
	.ascii	"\376\377\377\377"
	.size	_version, 4

