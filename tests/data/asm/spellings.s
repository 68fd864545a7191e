# Spellings llvm-mc accepts: spaces, // and # comments, 'label :', constants from .equ/.set,
# expressions, every operator form; compared with llvm-mc-19 like the other files.
  r0 = * (u8 *)skb[0]    // abs
  r0 = * (u32*)skb[4]
  r0 = *  (u16 *)skb[r1] // ind
  r9 = dummy_map  ll
  r9 = 0x1ffffffff ll
  r8 = *(u64 *)(r3 - 30)
  lock *(u32 *)(r2 + 16) += r9
  goto Llabel0
  if r2 >= 0xffffffff goto Llabel0
  if r4 s> 0xffffffff goto Llabel0
Llabel0 :
  r2 = -r2
  r10 s>>= r0
  r3 = be64 r3
  r10 s>>= 64
  w1 = w2
  w0 = *(u32 *)(r1 + 0)
  *(u32 *)(r10 - 4) = w1
  w1 = -w1
  r1 = (s8)r2
  w1 = (s16)w2
  r0 = *(s32 *)(r1 + 8)
  r1 s/= r2
  w1 s%= 5
  r1 = bswap16 r1
  gotol Llabel0
  may_goto Llabel0
  callx r3
  r1 = addr_space_cast(r2, 1, 0)
  w2 = atomic_fetch_and((u32 *)(r1 + 0), w2)
  r0 = cmpxchg_64(r1 + 0, r0, r2)
  w0 = cmpxchg32_32(r1 + 0, w0, w2)
  r2 = xchg_64(r1 + 0, r2)
  call dummy_func
  exit

.equ foo, -1
        if r1 > r2 goto foo + 2
        exit
        exit
	.set	K, 5
	r1 = K
	r2 = K * 2 + 1
	r3 = *(u64 *)(r10 - 8)
	r4 = 1+2*3
	.data
	.long K, K+1, 1 << 4, -K
	.quad	2-1
	.text
	r5 = 'a'
	r6 = 0b1010
	r7 = 017
	r1 = -2147483648
	w2 = 0xffffffff
	if w1 == 0x7fffffff goto +0
	r1 = K ll
	r2 = foo + 10 ll
	*(u64 *)(r10 - 8) = -1
	r0 = 0 ; r1 = 1 ; exit
# '.' is the current location
	.text
dotfn:
	r0 = 0
	exit
	.size dotfn, .-dotfn
	.data
dotdata:
	.quad .
	.long . - dotdata
	.size dotdata, . - dotdata
