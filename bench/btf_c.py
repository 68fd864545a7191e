"""Benchmark: ``bpfkit btf dump file /sys/kernel/btf/vmlinux format c`` against bpftool's.

Both run as whole processes on the running kernel's BTF, taking turns, best of N (wall
seconds, output to /dev/null); the outputs are checked equal first, then the ratio is
printed.  Usage: ``python bench/btf_c.py [N]`` (root not needed; bpftool must be on PATH).

Where bpfkit's time goes (measured while writing it): about 0.7 s parsing the ~130,000
types of vmlinux into the type model, about 2 s ordering and writing them
(:mod:`bpfkit.btf.cdump`, one Python call per type visit).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

VMLINUX = "/sys/kernel/btf/vmlinux"


def _run(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    bpftool = shutil.which("bpftool")
    if bpftool is None:
        print("bpftool is not on PATH: nothing to compare with")
        return 1
    ours = [sys.executable, "-m", "bpfkit", "btf", "dump", "file", VMLINUX, "format", "c"]
    theirs = [bpftool, "btf", "dump", "file", VMLINUX, "format", "c"]
    a = subprocess.run(ours, check=True, capture_output=True).stdout
    b = subprocess.run(theirs, check=True, capture_output=True).stdout
    if a != b:
        print("outputs differ: fix that first")
        return 1
    mine, ref = [], []
    for _ in range(rounds):
        mine.append(_run(ours))
        ref.append(_run(theirs))
    print(f"vmlinux.h ({len(a.splitlines())} lines, identical)")
    print(f"bpfkit  {min(mine):.3f} s")
    print(f"bpftool {min(ref):.3f} s")
    print(f"ratio   {min(mine) / min(ref):.1f}x bpftool")
    return 0


if __name__ == "__main__":
    sys.exit(main())
