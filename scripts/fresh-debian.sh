#!/usr/bin/env bash
# Check the README's two set-up commands on a clean Debian 12 root filesystem, as a new user
# would run them: debootstrap bookworm (no rustc), add only python3, clone this checkout into
# it, then run `bash scripts/setup.sh && bash scripts/demo.sh` (and, with --tests, the test
# command) inside a chroot with /proc, /sys, /dev and bpffs mounted.  Needs root and network.
#   bash scripts/fresh-debian.sh [--tests] [DIR]      (DIR default: /var/tmp/bpfkit-deb12)
set -euo pipefail
cd "$(dirname "$0")/.."
tests=0
if [ "${1:-}" = --tests ]; then tests=1; shift; fi
root=${1:-/var/tmp/bpfkit-deb12}
[ "$(id -u)" -eq 0 ] || { echo "fresh-debian.sh: needs root (debootstrap, chroot)"; exit 1; }
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
if [ ! -x "$root/usr/bin/apt-get" ]; then
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$root.log" 2>&1 \
    || { tail -5 "$root.log"; exit 1; }
fi
mounted=()
cleanup() { for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done; }
trap cleanup EXIT
# The chroot's / must be a mount point, as a machine's or a container's is: `ip netns` and
# `unshare --propagation private` change the propagation of / (EINVAL on a plain directory).
mountpoint -q "$root" || { mount --bind "$root" "$root"; mounted+=("$root"); }
for m in proc sys dev; do
  mountpoint -q "$root/$m" || { mount --rbind "/$m" "$root/$m"; mounted+=("$root/$m"); }
done
# This workplace reaches PyPI through its own CA certificates: carry them over (where
# update-ca-certificates keeps them when a package installs ca-certificates).
mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/ssl/certs"
cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
cp /etc/resolv.conf "$root/etc/resolv.conf"
rm -rf "$root/root/bpfkit"
git clone -q "$PWD" "$root/root/bpfkit"
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb \
  PIP_CERT=/etc/ssl/certs/ca-certificates.crt bash -euo pipefail -c '
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq python3 ca-certificates >/dev/null
  update-ca-certificates >/dev/null 2>&1 || true
  if command -v rustc >/dev/null; then echo "fresh-debian.sh: rustc is present, not a clean check"; exit 1; fi
  cd /root/bpfkit
  echo "== README command 1"
  if ! (bash scripts/setup.sh && bash scripts/demo.sh); then echo "fresh-debian.sh: command 1 FAILED"; exit 1; fi
  if [ "'"$tests"'" = 1 ]; then
    echo "== README command 2"
    if ! (bash scripts/setup.sh && bash scripts/test.sh); then echo "fresh-debian.sh: command 2 FAILED"; exit 1; fi
  fi
'
echo "fresh-debian.sh: the README's commands succeeded on a clean Debian 12 (no rustc)"
