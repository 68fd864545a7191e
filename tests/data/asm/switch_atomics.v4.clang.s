	.text
	.file	"switch_atomics.c"
	.section	socket,"ax",@progbits
	.globl	filter                          # -- Begin function filter
	.p2align	3
	.type	filter,@function
filter:                                 # @filter
# %bb.0:
	r6 = r1
	r1 = 1
	r2 = counter ll
	lock *(u64 *)(r2 + 0) += r1
	r0 = 2
	r0 = atomic_fetch_or((u64 *)(r2 + 0), r0)
	r1 = 3
	r1 = xchg_64(r2 + 0, r1)
	r1 = 5
	r0 = cmpxchg_64(r2 + 0, r0, r1)
	w8 = *(u32 *)(r6 + 0)
	w1 = w8
	w1 &= 3
	r1 <<= 4
	r9 = pairs ll
	r9 += r1
	w1 = w8
	w1 &= 7
	call pick
	w7 = w0
	*(u64 *)(r10 - 8) = r6
	w1 = *(u32 *)(r6 + 16)
	*(u64 *)(r10 - 24) = r1
	r1 = r8
	r1 = bswap16 r1
	w2 = *(u32 *)(r6 + 68)
	*(u32 *)(r10 - 16) = w2
	w2 = *(u32 *)(r6 + 32)
	*(u32 *)(r10 - 32) = w2
	w6 = *(u32 *)(r6 + 8)
	*(u16 *)(r9 + 12) = w1
	w1 = 4
	r2 = cb ll
	r3 = 0
	r4 = 0
	call 181
	w8 /= 3
	w7 -= w8
	w6 %= 5
	w7 += w6
	r1 = *(u64 *)(r10 - 24)
	r1 = bswap32 r1
	w7 += w1
	w1 = *(u32 *)(r10 - 32)
	w1 = (s8)w1
	w7 += w1
	w1 = *(u32 *)(r10 - 16)
	w1 = (s16)w1
	w7 += w1
	r1 = *(u64 *)(r10 - 8)
	w1 = *(u32 *)(r1 + 0)
	w1 &= 1
	r1 <<= 3
	r2 = ptrs ll
	r2 += r1
	r1 = *(u64 *)(r2 + 0)
	r1 = *(u64 *)(r1 + 0)
	w7 += w1
	w0 = w7
	exit
.Lfunc_end0:
	.size	filter, .Lfunc_end0-filter
                                        # -- End function
	.text
	.p2align	3                               # -- Begin function pick
	.type	pick,@function
pick:                                   # @pick
# %bb.0:
	if w1 s> 1 goto LBB1_3
# %bb.1:
	w0 = 11
	if w1 == 0 goto LBB1_11
# %bb.2:
	if w1 == 1 goto LBB1_6
	goto LBB1_10
LBB1_6:
	w0 = 22
	goto LBB1_11
LBB1_3:
	if w1 == 2 goto LBB1_7
# %bb.4:
	if w1 == 3 goto LBB1_8
# %bb.5:
	if w1 == 7 goto LBB1_9
	goto LBB1_10
LBB1_9:
	w0 = 91
	goto LBB1_11
LBB1_7:
	w0 = 35
	goto LBB1_11
LBB1_8:
	w0 = 47
	goto LBB1_11
LBB1_10:
	w0 = -1
LBB1_11:
	exit
.Lfunc_end1:
	.size	pick, .Lfunc_end1-pick
                                        # -- End function
	.p2align	3                               # -- Begin function cb
	.type	cb,@function
cb:                                     # @cb
# %bb.0:
	r0 = 0
	exit
.Lfunc_end2:
	.size	cb, .Lfunc_end2-cb
                                        # -- End function
	.type	pairs,@object                   # @pairs
	.data
	.globl	pairs
	.p2align	3, 0x0
pairs:
	.quad	1                               # 0x1
	.long	2                               # 0x2
	.short	3                               # 0x3
	.byte	4                               # 0x4
	.zero	1
	.quad	5                               # 0x5
	.long	6                               # 0x6
	.short	7                               # 0x7
	.byte	8                               # 0x8
	.zero	1
	.zero	16
	.zero	16
	.size	pairs, 64

	.type	counter,@object                 # @counter
	.section	.bss,"aw",@nobits
	.globl	counter
	.p2align	3, 0x0
counter:
	.quad	0                               # 0x0
	.size	counter, 8

	.type	small,@object                   # @small
	.globl	small
	.p2align	2, 0x0
small:
	.long	0                               # 0x0
	.size	small, 4

	.type	ptrs,@object                    # @ptrs
	.data
	.globl	ptrs
	.p2align	3, 0x0
ptrs:
	.quad	counter
	.quad	small
	.size	ptrs, 16

	.type	_license,@object                # @_license
	.section	license,"aw",@progbits
	.globl	_license
_license:
	.asciz	"Dual MIT/GPL"
	.size	_license, 13

	.addrsig
	.addrsig_sym filter
	.addrsig_sym cb
	.addrsig_sym counter
	.addrsig_sym small
	.addrsig_sym _license
