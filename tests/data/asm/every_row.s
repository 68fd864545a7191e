# Every row of the ISA table in LLVM syntax, written in several spellings llvm-mc accepts
# (compact and spaced operators, hex and negative numbers, labels, symbols, r/w names).
# Rows newer than LLVM 19 (load_acquire, store_release, gotox) are in v5_rows.s.
	.text
	.globl	every_row
	.p2align	3
	.type	every_row,@function
every_row:
	r5+=4660
	r9 += r0
	r3 -= 4660
	r9 -= r0
	r2 *= 4660
	r8 *= r10
	r5 /= 1
	r8 s/= -2147483648
	r3 /= r2
	r5 s/= r7
	r5|=0xff
	r8 |= r9
	r9 &= 1
	r1 &= r0
	r5<<=0xff
	r0 <<= r3
	r7>>=-1
	r2 >>= r6
	r3 %= 1
	r0 s%=-1
	r8 %= r5
	r0 s%=r7
	r6^=7
	r5^=r9
	r1 = 0
	r4 = r5
	r7 s>>=0xff
	r5 s>>=r4
	r8 = -r8
	r1 = (s8)r4
	r8 = (s16)r8
	r3 = (s32)r3
	w0 += 0x7fffffff
	w5+=w7
	w7 -= -2147483648
	w9 -= w0
	w1 *= 0x7
	w5 *= w1
	w2 /= -1
	w2 s/= 0xff
	w0 /= w0
	w3 s/=w0
	w9 |= 0x7fffffff
	w5 |= w7
	w0&=-1
	w9 &= w1
	w7<<=0
	w1 <<= w8
	w8 >>= 0x7
	w7 >>= w8
	w2%=0x1
	w3 s%= 1
	w2 %= w10
	w3 s%= w1
	w2 ^= 0x1234
	w1 ^= w5
	w0=-2147483648
	w3 = w1
	w2 s>>= -1
	w8 s>>=w8
	w2 = -w2
	w4 = (s8)w1
	w5 = (s16)w8
	r3 = addr_space_cast(r1, 1, 0)
	r4 = le16 r4
	r2 = be16 r2
	r8 = bswap16 r8
	r6 = le32 r6
	r3 = be32 r3
	r2 = bswap32 r2
	r6 = le64 r6
	r2 = be64 r2
	r5 = bswap64 r5
	r2 = every_row_data + 8 ll
	ld_pseudo	r3, 1, 11
	ld_pseudo	r9, 2, 38
	ld_pseudo	r1, 3, 92
	ld_pseudo	r2, 4, 65
	ld_pseudo	r8, 5, 3
	ld_pseudo	r5, 6, 6
	r0 = *(u8 *)skb[0x7]
	r0 = *(u8 *)skb[r8]
	w1 = *(u8 *)(r4 + 8)
	r1 = *(u8 *)(r4 + 8)
	r7 = *(s8 *)(r7 + 32767)
	*(u8 *)(r0 - 32768) = 7
	*(u8 *)(r4 + 32767) = w9
	*(u8 *)(r4 + 32767) = r9
	r0 = *(u16 *)skb[0xff]
	r0 = *(u16 *)skb[r7]
	w0 = *(u16 *)(r4 - 32768)
	r0 = *(u16 *)(r4 - 32768)
	r6 = *(s16 *)(r3 - 32768)
	*(u16 *)(r8 - 32768) = -2147483648
	*(u16 *)(r1 + 32767) = w5
	*(u16 *)(r1 + 32767) = r5
	r0 = *(u32 *)skb[0xff]
	r0 = *(u32 *)skb[r6]
	w5 = *(u32 *)(r6 + 16)
	r5 = *(u32 *)(r6 + 16)
	r4 = *(s32 *)(r4 + 32767)
	*(u32 *)(r9 - 8) = -2147483648
	*(u32 *)(r0 + 8) = w10
	*(u32 *)(r0 + 8) = r10
	r5 = *(u64 *)(r3 + 0)
	*(u64 *)(r8 + 0) = 7
	*(u64 *)(r9 + 0) = r2
	lock *(u64 *)(r7 - 8) += r6
	r6 = atomic_fetch_add((u64 *)(r4 + 32767), r6)
	lock *(u64 *)(r1 + 8) |= r2
	r8 = atomic_fetch_or((u64 *)(r7 - 8), r8)
	lock *(u64 *)(r2 + 0) &= r8
	r5 = atomic_fetch_and((u64 *)(r1 - 8), r5)
	lock *(u64 *)(r0 + 16) ^= r6
	r5 = atomic_fetch_xor((u64 *)(r4 - 8), r5)
	r10 = xchg_64(r2 - 8, r10)
	r0 = cmpxchg_64(r7 + 8, r0, r6)
	lock *(u32 *)(r7 + 0) += w9
	w7 = atomic_fetch_add((u32 *)(r8 + 0), w7)
	lock *(u32 *)(r8 + 0) |= w10
	w2 = atomic_fetch_or((u32 *)(r0 + 16), w2)
	lock *(u32 *)(r2 + 16) &= w10
	w4 = atomic_fetch_and((u32 *)(r1 - 8), w4)
	lock *(u32 *)(r0 - 8) ^= w0
	w7 = atomic_fetch_xor((u32 *)(r3 + 0), w7)
	w0 = xchg32_32(r4 + 32767, w0)
	w0 = cmpxchg32_32(r1 - 8, w0, w4)
	goto +0
	gotol -1
	if r3 == 2147483647 goto every_row_end
	if r3 == r7 goto L125
L125:
	if r0 > 0 goto +1
	if r7 > r5 goto -1
	if r8 >= 0x0 goto L128
L128:
	if r5 >= r5 goto +1
	if r5 & 1 goto +0
	if r6 & r1 goto every_row_end
	if r3 != -2147483648 goto L132
L132:
	if r3 != r10 goto L133
L133:
	if r1 s> 2147483647 goto every_row_end
	if r4 s> r5 goto +0
	if r4 s>= 1 goto L136
L136:
	if r7 s>= r6 goto L137
L137:
	if r2 < 2147483647 goto +0
	if r7 < r5 goto -1
	if r1 <= 0x0 goto +0
	if r6 <= r1 goto -1
	if r7 s< -1 goto L142
L142:
	if r9 s< r10 goto +0
	if r5 s<= 2147483647 goto -1
	if r2 s<= r4 goto +0
	if w8 == 7 goto +1
	if w7 == w3 goto -1
	if w3 > 7 goto -1
	if w4 > w10 goto every_row_end
	if w0 >= -2147483648 goto +0
	if w3 >= w0 goto -1
	if w1 & 0x0 goto +1
	if w6 & w10 goto L153
L153:
	if w4 != 0x7fffffff goto +0
	if w5 != w6 goto -1
	if w6 s> 0x0 goto +1
	if w6 s> w9 goto +1
	if w2 s>= 4660 goto +0
	if w2 s>= w2 goto -1
	if w1 < 255 goto +1
	if w7 < w5 goto every_row_end
	if w2 <= 0x7 goto L162
L162:
	if w2 <= w9 goto -1
	if w1 s< 7 goto +1
	if w5 s< w1 goto +0
	if w4 s<= 0x7 goto +0
	if w7 s<= w2 goto L167
L167:
	may_goto +1
	call 131
	call local_fn
	call ext_func
	callx r1
	exit
every_row_end:
	exit
.Lfunc_end0:
	.size	every_row, .Lfunc_end0-every_row

	.p2align	3
	.type	local_fn,@function
local_fn:
	r0 = 0
	exit
.Lfunc_end1:
	.size	local_fn, .Lfunc_end1-local_fn

	.section	.rodata,"a",@progbits
	.p2align	3
every_row_data:
	.quad	1, 2, 3
