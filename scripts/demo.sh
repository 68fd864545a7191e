#!/usr/bin/env bash
# The seed story end to end, as far as bpfkit goes today.
set -euo pipefail
cd "$(dirname "$0")/.."
B=.venv/bin/bpfkit
echo "== read and disassemble the seed's object (as llvm-objdump -d does)"
$B dump examples/hello/hello.o
