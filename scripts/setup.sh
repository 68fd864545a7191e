#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for bpfkit: the reference LLVM/clang/bpftool the tests
# compare against, and the package with its test tools in .venv at the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pkg in llvm-19 clang-19 bpftool libbpf-dev graphviz chromium iproute2; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# Debian's python3 makes venvs only with python3-venv (ensurepip) installed.
python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The second kernel (tests/guest.py): QEMU and a static busybox for its initramfs.
need=()
for pkg in qemu-system-x86 busybox-static; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ] && [ "$(uname -m)" = x86_64 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
log=$(mktemp)
if ! .venv/bin/pip install -q --disable-pip-version-check -e '.[test,jit]' >"$log" 2>&1; then
  grep -v '^WARNING: Location' "$log" | tail -20; rm -f "$log"
  echo "setup.sh: pip could not install bpfkit, its test tools and llvmlite into .venv (above: why)" >&2
  exit 1
fi
rm -f "$log"
# scapy: bpfkit.testing accepts its packets, and tests/testing compares packet bytes with it.
.venv/bin/pip install -q --disable-pip-version-check -e '.[packets]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import bpfkit' 
# Debian's Linux 6.1 for the guest, downloaded once into ~/.cache/bpfkit/guest.
if [ "$(id -u)" -eq 0 ] && [ "$(uname -m)" = x86_64 ]; then
  .venv/bin/python tests/guest.py --fetch || echo "setup.sh: could not fetch the guest kernel"
fi
