"""Benchmark: ``bpfkit dump`` against ``llvm-objdump-19 -d`` on one object of 200,000+ instructions.

Generates an assembly file (a mix of ALU, memory, jumps, calls and lddw as compilers emit
them, in several functions), assembles it with llvm-mc-19, then times both tools as whole
processes (best of 5 rounds, the two tools taking turns, in this one run) and prints both
times and the ratio.
The goal is a ratio of at most 3.

    .venv/bin/python bench/dump.py [--insns N] [--runs N]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def program(n: int, seed: int = 1) -> str:
    rnd = random.Random(seed)
    ops = ["+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "%=", "^=", "=", "s>>="]
    conds = ["==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&"]
    sizes = ["u8", "u16", "u32", "u64"]
    lines = [".text"]
    count = 0
    fn = 0
    while count < n:
        lines += [f".globl f{fn}", f".type f{fn},@function", f"f{fn}:"]
        body = rnd.randint(200, 2000)
        for i in range(body):
            r = rnd.random()
            d, s = rnd.randint(0, 9), rnd.randint(0, 9)
            if r < 0.35:
                rhs = f"r{s}" if rnd.random() < 0.5 else str(rnd.randint(-512, 4096))
                lines.append(f"r{d} {rnd.choice(ops)} {rhs}")
            elif r < 0.45:
                rhs = f"w{s}" if rnd.random() < 0.5 else str(rnd.randint(-64, 255))
                lines.append(f"w{d} {rnd.choice(ops)} {rhs}")
            elif r < 0.60:
                sz = rnd.choice(sizes)
                lines.append(f"r{d} = *({sz} *)(r10 - {8 * rnd.randint(1, 64)})")
            elif r < 0.72:
                sz = rnd.choice(sizes)
                lines.append(f"*({sz} *)(r10 - {8 * rnd.randint(1, 64)}) = r{s}")
            elif r < 0.85 and i + 12 < body:
                tgt = rnd.randint(-min(i, 40), 10)
                rhs = f"r{s}" if rnd.random() < 0.5 else str(rnd.randint(0, 100))
                lines.append(f"if r{d} {rnd.choice(conds)} {rhs} goto {tgt:+d}")
            elif r < 0.90:
                lines.append(f"call {rnd.randint(1, 200)}")
            elif r < 0.95:
                lines.append(f"r{d} = {rnd.getrandbits(64)} ll")
            else:
                lines.append(f"goto {rnd.randint(0, 8):+d}" if i + 10 < body else "r0 = 0")
            count += 1
        lines += ["r0 = 0", "exit"]
        count += 2
        fn += 1
    return "\n".join(lines) + "\n"


def best(cmds: list[list[str]], runs: int = 5) -> list[float]:
    """Best wall time of each command over ``runs`` rounds.  The commands take turns in
    every round, so that load from other processes on a shared machine falls on both."""
    times: list[list[float]] = [[] for _ in cmds]
    for _ in range(runs):
        for cmd, spent in zip(cmds, times, strict=True):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            spent.append(time.perf_counter() - t)
    return [min(spent) for spent in times]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--insns", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5, help="rounds; the best time counts")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, obj = Path(tmp) / "big.s", Path(tmp) / "big.o"
        src.write_text(program(args.insns))
        subprocess.run(
            [
                "llvm-mc-19",
                "-triple",
                "bpfel",
                "-mcpu=v4",
                "-filetype=obj",
                str(src),
                "-o",
                str(obj),
            ],
            check=True,
        )
        bpfkit = [sys.executable, "-m", "bpfkit", "dump", str(obj)]
        llvm = ["llvm-objdump-19", "-d", "--no-print-imm-hex", str(obj)]
        out = subprocess.run(bpfkit, check=True, capture_output=True, text=True).stdout
        ref = subprocess.run(llvm, check=True, capture_output=True, text=True).stdout
        n = sum(1 for ln in out.splitlines() if ln[:1] == " ")
        same = out == ref
        t_llvm, t_ours = best([llvm, bpfkit], args.runs)
    print(f"object: {n} instructions; output identical to llvm-objdump-19: {same}")
    print(f"llvm-objdump-19 -d: {t_llvm:.3f} s")
    print(f"bpfkit dump:        {t_ours:.3f} s")
    print(f"ratio: {t_ours / t_llvm:.2f} (goal <= 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
