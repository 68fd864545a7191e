#!/bin/sh
# Rebuild the test corpus objects from src/ (needs clang-19 and llvm-mc-19).
#   tests/corpus/build.sh
# C programs: clang-19 -target bpf -O2 at -mcpu v1..v4, each with and without -g;
# one big-endian object (bpfeb); assembly: llvm-mc-19 -triple bpfel -mcpu=v4.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src="$here/src"
out="$here/obj"
mkdir -p "$out"
inc=/usr/include/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
for c in "$src"/*.c; do
	base=$(basename "$c" .c)
	for cpu in v1 v2 v3 v4; do
		clang-19 -target bpf -O2 -mcpu=$cpu -I"$inc" -c "$c" -o "$out/${base}_$cpu.o"
		clang-19 -target bpf -O2 -mcpu=$cpu -g -I"$inc" -c "$c" -o "$out/${base}_${cpu}_g.o"
	done
done
clang-19 -target bpfeb -O2 -mcpu=v3 -g -I"$inc" -c "$src/xdp_count.c" -o "$out/xdp_count_bpfeb_v3_g.o"
clang-19 -target bpfeb -O2 -mcpu=v4 -I"$inc" -c "$src/subprogs.c" -o "$out/subprogs_bpfeb_v4.o"
for s in "$src"/*.s; do
	llvm-mc-19 -triple bpfel -mcpu=v4 -filetype=obj "$s" -o "$out/$(basename "$s" .s).o"
done
llvm-mc-19 -triple bpfeb -mcpu=v4 -filetype=obj "$src/all_ops.s" -o "$out/all_ops_bpfeb.o"
