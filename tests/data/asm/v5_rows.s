# Rows newer than LLVM 19 (llvm-mc-19 rejects them): load-acquire, store-release, gotox.
# Checked against the ISA table's encoding, not against llvm-mc.
	.text
v5:
	w1 = load_acquire((u8 *)(r2 + 8))
	w3 = load_acquire((u16 *)(r4 - 2))
	w5 = load_acquire((u32 *)(r6 + 0))
	r7 = load_acquire((u64 *)(r10 - 16))
	store_release((u8 *)(r1 + 1), w2)
	store_release((u16 *)(r3 - 4), w4)
	store_release((u32 *)(r5 + 12), w6)
	store_release((u64 *)(r10 - 8), r7)
	gotox r3
	exit
