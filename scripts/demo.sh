#!/usr/bin/env bash
# The seed story end to end: build the Rust probe, read and disassemble it, explain it,
# run it in the VM, then load it into the kernel, attach it and read trace_pipe.
set -euo pipefail
cd "$(dirname "$0")/.."
B=.venv/bin/bpfkit
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# The seed's road is Rust -> LLVM IR -> BPF.  With a rustc bpfkit's prelude supports (1.89+),
# build hello.rs; without one (a fresh Debian 12 has rustc 1.63 or none), build the seed's own
# LLVM IR, examples/hello/hello.ll, with llc instead, and say so.
why=$(.venv/bin/python -c 'from bpfkit.toolchain.rust import rust_unavailable as u; print(u() or "")')
if [ -z "$why" ]; then
  step "build: examples/hello/hello.rs -> BPF object (rustc's BPF backend + bpfkit's assembler)"
  $B build examples/hello/hello.rs -o "$out/hello.o"
else
  step "build: examples/hello/hello.ll -> BPF object (the seed's LLVM IR, through llc)"
  echo "no Rust build here ($why); building the seed's hello.ll instead"
  $B build examples/hello/hello.ll -o "$out/hello.o"
fi

step "dump: the seed's listing (llvm-objdump of LLVM 7 printed decimal immediates)"
$B dump --no-print-imm-hex "$out/hello.o"

step "explain: the seed's annotated bytecode, generated (first instructions)"
$B explain examples/hello/hello.o > "$out/explain.txt"
head -40 "$out/explain.txt"
echo "   ... (whole walkthrough: docs/hello-from-rust.md)"

step "run in bpfkit's userspace VM (no root needed)"
$B run --vm "$out/hello.o"

step "load, attach and trace on the real kernel"
if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: loading BPF programs needs root (or CAP_BPF + CAP_PERFMON)"
else
  # The probe fires on clone(): start a few processes meanwhile, as any busy machine would.
  ( for _ in $(seq 60); do /bin/true; sleep 0.3; done ) &
  kicker=$!
  $B run "$out/hello.o" --count 3 --duration 20
  kill "$kicker" 2>/dev/null || true
fi
