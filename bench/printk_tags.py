"""What tagging printk formats costs (``bpfkit run``: bpfkit.obj.printk_tags), against the
same object loaded untagged in the same run.

    .venv/bin/python bench/printk_tags.py [--repeat N]

- load: ``load_collection`` of the seed's hello.o and of a C program (BTF, .rodata
  formats), untagged vs tagged (finding the calls with explain's analysis, one more
  frozen map, the stubs verified with their func_info/line_info);
- per call: BPF_PROG_TEST_RUN of a socket filter that calls ``bpf_trace_printk`` once,
  untagged vs through the stub (one bpf-to-bpf call more), in the kernel's own ns/run.

Prints medians and the ratios tagged/untagged.  Needs root and clang-19.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bpfkit.events.printk import printk_sites  # noqa: E402
from bpfkit.kernel.collection import load_collection  # noqa: E402
from bpfkit.obj.printk_tags import PrintkTagging, run_tag  # noqa: E402
from bpfkit.obj.reader import read_object  # noqa: E402
from bpfkit.obj.spec import ObjectSpec  # noqa: E402
from bpfkit.uapi import ProgType  # noqa: E402

C_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("socket") int bench_printk(void *ctx)
{
	bpf_printk("bpfkit bench printk %d", 7);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


def _build(tmp: Path) -> Path:
    src, out = tmp / "bench_printk.c", tmp / "bench_printk.o"
    src.write_text(C_SOURCE)
    cmd = ["clang-19", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu"]
    subprocess.run([*cmd, "-c", str(src), "-o", str(out)], check=True)
    return out


def _load_ms(obj: ObjectSpec, tagged: bool, repeat: int, types: dict[str, int]) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        printk = PrintkTagging(run_tag(os.getpid()), tuple(printk_sites(obj))) if tagged else None
        coll = load_collection(obj, prog_types=types, printk=printk)
        times.append((time.perf_counter() - t0) * 1000)
        coll.close()
    return statistics.median(times)


def _run_ns(obj: ObjectSpec, tagged: bool, runs: int) -> float:
    printk = PrintkTagging(run_tag(os.getpid()), tuple(printk_sites(obj))) if tagged else None
    with load_collection(obj, printk=printk) as coll:
        prog = coll.programs["bench_printk"]
        samples = [prog.test_run(bytes(64), repeat=runs).duration_ns for _ in range(5)]
    return statistics.median(samples)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30, help="loads per figure (default 30)")
    ap.add_argument("--runs", type=int, default=200, help="test runs per sample (default 200)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/printk_tags.py: needs root (it loads programs)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        c_obj = read_object(str(_build(Path(tmp))))
    hello = read_object(str(ROOT / "examples" / "hello" / "hello.o"))
    tp = {"kprobe__sys_clone": int(ProgType.TRACEPOINT)}  # what the no-kprobes fallback loads
    print("load_collection, median ms (untagged -> tagged, ratio):")
    for name, obj, types in (("hello.o", hello, tp), ("C, BTF", c_obj, {})):
        plain = _load_ms(obj, False, args.repeat, types)
        tagged = _load_ms(obj, True, args.repeat, types)
        print(f"  {name:10} {plain:7.2f} -> {tagged:7.2f} ms   x{tagged / plain:.2f}")
    plain_ns = _run_ns(c_obj, False, args.runs)
    tagged_ns = _run_ns(c_obj, True, args.runs)
    print(
        "one bpf_trace_printk call (BPF_PROG_TEST_RUN, kernel ns/run): "
        f"{plain_ns:.0f} -> {tagged_ns:.0f} ns   x{tagged_ns / plain_ns:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
