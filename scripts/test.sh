#!/usr/bin/env bash
# The whole test command: lint, type-check, then the test suite (kernel tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${CI:-}" ]; then
  # On CI's machine these capabilities exist: their absence is a failure, not a skip.
  export BPFKIT_REQUIRE="${BPFKIT_REQUIRE-bpf,tracefs,tracepoint,uprobes,llvm19,clang19,llc,bpftool,rustc}"
fi
.venv/bin/ruff check src tests bench
.venv/bin/mypy
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
