	.text
	.file	"maps_globals.c"
	.section	"tracepoint/syscalls/sys_enter_execve","ax",@progbits
	.globl	count_exec                      # -- Begin function count_exec
	.p2align	3
	.type	count_exec,@function
count_exec:                             # @count_exec
# %bb.0:
	call 14
	r0 >>= 32
	*(u32 *)(r10 - 4) = r0
	r1 = 1
	*(u64 *)(r10 - 16) = r1
	r2 = r10
	r2 += -4
	r1 = counts ll
	call 1
	r6 = r0
	if r6 != 0 goto LBB0_2
# %bb.1:
	r2 = r10
	r2 += -4
	r3 = r10
	r3 += -16
	r1 = counts ll
	r4 = 0
	call 2
	goto LBB0_5
LBB0_2:
	r1 = threshold ll
	r2 = *(u32 *)(r1 + 0)
	r2 <<= 32
	r2 s>>= 32
	r1 = r6
	call bump
	if r0 == 0 goto LBB0_4
# %bb.3:
	r4 = *(u64 *)(r6 + 0)
	r3 = *(u32 *)(r10 - 4)
	r1 = fmt ll
	r2 = 19
	call 6
LBB0_4:
	r1 = *(u32 *)(r10 - 4)
	r1 &= 31
	r2 = buf ll
	r2 += r1
	r1 = 1
	*(u8 *)(r2 + 0) = r1
	r1 = 0
	*(u32 *)(r10 - 20) = r1
	r2 = r10
	r2 += -20
	r1 = legacy ll
	call 1
LBB0_5:
	r0 = 0
	exit
.Lfunc_end0:
	.size	count_exec, .Lfunc_end0-count_exec
                                        # -- End function
	.text
	.p2align	3                               # -- Begin function bump
	.type	bump,@function
bump:                                   # @bump
# %bb.0:
	r3 = *(u64 *)(r1 + 0)
	r3 += r2
	*(u64 *)(r1 + 0) = r3
	r1 = limit ll
	r1 = *(u64 *)(r1 + 0)
	r0 = 1
	if r3 > r1 goto LBB1_2
# %bb.1:
	r0 = 0
LBB1_2:
	r1 = hits ll
	r2 = *(u64 *)(r1 + 0)
	r2 += 1
	*(u64 *)(r1 + 0) = r2
	exit
.Lfunc_end1:
	.size	bump, .Lfunc_end1-bump
                                        # -- End function
	.section	xdp,"ax",@progbits
	.globl	drop_odd                        # -- Begin function drop_odd
	.p2align	3
	.type	drop_odd,@function
drop_odd:                               # @drop_odd
# %bb.0:
	r0 = 2
	r2 = *(u32 *)(r1 + 4)
	r1 = *(u32 *)(r1 + 0)
	r3 = r1
	r3 += 14
	if r3 > r2 goto LBB2_3
# %bb.1:
	r2 = *(u8 *)(r1 + 7)
	r3 = *(u8 *)(r1 + 3)
	r3 += r2
	r2 = *(u8 *)(r1 + 5)
	r4 = *(u8 *)(r1 + 1)
	r4 += r2
	r4 += r3
	r2 = *(u8 *)(r1 + 6)
	r3 = *(u8 *)(r1 + 2)
	r3 += r2
	r5 = *(u8 *)(r1 + 4)
	r2 = *(u8 *)(r1 + 0)
	r2 += r5
	r2 += r3
	r2 += r4
	r3 = *(u8 *)(r1 + 8)
	r2 += r3
	r3 = *(u8 *)(r1 + 10)
	r4 = *(u8 *)(r1 + 9)
	r4 += r3
	r2 += r4
	r3 = *(u8 *)(r1 + 12)
	r4 = *(u8 *)(r1 + 11)
	r4 += r3
	r1 = *(u8 *)(r1 + 13)
	r4 += r1
	r2 += r4
	r2 &= 1
	if r2 == 0 goto LBB2_3
# %bb.2:
	r0 = 1
LBB2_3:
	exit
.Lfunc_end2:
	.size	drop_odd, .Lfunc_end2-drop_odd
                                        # -- End function
	.type	legacy,@object                  # @legacy
	.section	maps,"aw",@progbits
	.globl	legacy
	.p2align	2, 0x0
legacy:
	.long	2                               # 0x2
	.long	4                               # 0x4
	.long	8                               # 0x8
	.long	16                              # 0x10
	.long	0                               # 0x0
	.size	legacy, 20

	.type	threshold,@object               # @threshold
	.data
	.globl	threshold
	.p2align	2, 0x0
threshold:
	.long	7                               # 0x7
	.size	threshold, 4

	.type	limit,@object                   # @limit
	.section	.rodata,"a",@progbits
	.globl	limit
	.p2align	3, 0x0
limit:
	.quad	100                             # 0x64
	.size	limit, 8

	.type	fmt,@object                     # @fmt
	.globl	fmt
fmt:
	.asciz	"pid %d count %llu\n"
	.size	fmt, 19

	.type	counts,@object                  # @counts
	.section	.maps,"aw",@progbits
	.globl	counts
	.p2align	3, 0x0
counts:
	.zero	32
	.size	counts, 32

	.type	buf,@object                     # @buf
	.section	.bss,"aw",@nobits
	.globl	buf
buf:
	.zero	32
	.size	buf, 32

	.type	LICENSE,@object                 # @LICENSE
	.section	license,"aw",@progbits
	.globl	LICENSE
LICENSE:
	.asciz	"GPL"
	.size	LICENSE, 4

	.type	hits,@object                    # @hits
	.local	hits
	.comm	hits,8,8
	.addrsig
	.addrsig_sym count_exec
	.addrsig_sym drop_odd
	.addrsig_sym legacy
	.addrsig_sym threshold
	.addrsig_sym limit
	.addrsig_sym fmt
	.addrsig_sym counts
	.addrsig_sym LICENSE
