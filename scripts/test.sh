#!/usr/bin/env bash
# The whole test command: lint, type-check, then the test suite (kernel tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${CI:-}" ]; then
  # On CI's machine these capabilities exist: their absence is a failure, not a skip.
  export BPFKIT_REQUIRE="${BPFKIT_REQUIRE-bpf,tracefs,tracepoint,uprobes,llvm19,clang19,llc,llc19,bpftool,rustc,binutils,kernel-btf,kallsyms,dev-full,libbpf-headers,sdt-header,gcc,python-dtrace,conformance,xdp-objects,llvmlite}"
fi
# The pictures' tools (bpfkit cfg, explain --format html) are on CI's machine too.
[ -z "${CI:-}" ] || export BPFKIT_REQUIRE="$BPFKIT_REQUIRE,graphviz,chromium,scapy,netns"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
# In parallel, one worker per core: a test module runs on one worker (tests/conftest.py
# makes each module an xdist group, so module fixtures are built once).
.venv/bin/python -m pytest -q -p no:cacheprovider -n auto --dist loadgroup "$@"
