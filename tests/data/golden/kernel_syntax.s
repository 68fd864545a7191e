	.section socket,"ax",@progbits
	.globl prog
	.type prog,@function
prog:
	r6 = r1
	r0 = *(u8 *)skb[12]
	r0 = *(u16 *)skb[r0]
	r0 = *(u32 *)skb[4]
	r1 = 0
	r2 = -5
	w3 = 7
	r1 += 3
	r1 -= r2
	r1 *= 4
	r1 /= 3
	r1 |= 8
	r1 &= 255
	r1 <<= 2
	r1 >>= 1
	r1 s>>= 1
	r1 ^= r2
	r1 %= 7
	w1 += w3
	w1 -= 1
	w1 = w3
	r1 = -r1
	w1 = -w1
	r1 = be16 r1
	r1 = le32 r1
	r1 = be64 r1
	r1 = bswap32 r1
	r1 = 0x123456789abcdef ll
	*(u64 *)(r10 - 8) = r1
	*(u32 *)(r10 - 12) = w1
	*(u16 *)(r10 - 14) = w1
	*(u8 *)(r10 - 15) = w1
	*(u64 *)(r10 - 24) = 5
	*(u32 *)(r10 - 28) = -1
	*(u16 *)(r10 - 30) = 3
	*(u8 *)(r10 - 31) = 4
	r2 = *(u64 *)(r10 - 8)
	w2 = *(u32 *)(r10 - 12)
	w2 = *(u16 *)(r10 - 14)
	w2 = *(u8 *)(r10 - 15)
	r2 = *(s8 *)(r10 - 15)
	r2 = *(s16 *)(r10 - 14)
	r2 = *(s32 *)(r10 - 12)
	r3 = (s8)r2
	w3 = (s16)w2
	r3 s/= 3
	r3 s%= r2
	r2 = 1
	lock *(u64 *)(r10 - 8) += r2
	lock *(u32 *)(r10 - 12) |= w2
	r2 = atomic_fetch_add((u64 *)(r10 - 8), r2)
	w2 = atomic_fetch_xor((u32 *)(r10 - 12), w2)
	r2 = xchg_64(r10 - 8, r2)
	r0 = 0
	r0 = cmpxchg_64(r10 - 8, r0, r2)
	if r1 == 0 goto L1
	if r1 != r2 goto L1
	if w1 s> -3 goto L1
	if r1 s<= r2 goto L1
	if r1 & 4 goto L1
	if w1 < w2 goto L1
	goto L1
L1:
	gotol L2
L2:
	call 7
	r0 = 0
	exit
	.size prog, .-prog
	.section license,"aw",@progbits
	.asciz "GPL"
