"""Fuzz the object reader and the commands dump, explain, btf, vm and load with mutated
objects (tests/mutate.py): count the outcomes and print every crash (a traceback, an exit
status other than 0/1, or a case slower than --slow seconds: a hang).

    python3 scripts/fuzz_objects.py [--cases 100000] [--seed 1] [--jobs 2] [--out DIR]

load needs root (the cases are loaded into the kernel and unloaded).  Crashing cases are
written to DIR (default /tmp/bpfkit-fuzz) to be reproduced with the command named.
The suite runs a few hundred cases per command (tests/cli/test_fuzz_commands.py).
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import mutate  # noqa: E402

SHARE = {"read": 20, "dump": 20, "btf": 20, "vm": 15, "explain": 10, "load": 15}  # percent


def _work(job: tuple[str, int, int, float, str]) -> dict[str, object]:
    command, n, seed, slow, out = job
    rng = random.Random(seed)
    seeds = [p.read_bytes() for p in mutate.SEEDS]
    kinds: collections.Counter[str] = collections.Counter()
    crashes: dict[str, dict[str, object]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bpfkit-fuzz-"))
    path = tmp / "case.o"
    t0 = time.monotonic()
    for i in range(n):
        data, note = mutate.mutate(rng.choice(seeds), rng)
        path.write_bytes(data)
        t = time.monotonic()
        outcome = mutate.run_case(command, path)
        took = time.monotonic() - t
        kind = outcome.kind
        if kind != "crash" and took > slow:
            kind, outcome = "slow", mutate.Outcome("slow", f"{took:.1f} s")
        kinds[kind] += 1
        if kind in ("crash", "slow"):
            key = outcome.detail.strip().splitlines()[-1][:200] if outcome.detail else kind
            entry = crashes.setdefault(key, {"count": 0, "mutation": note, "case": ""})
            entry["count"] = int(str(entry["count"])) + 1
            if not entry["case"]:
                keep = Path(out) / f"{command}-{seed}-{i}.o"
                keep.write_bytes(data)
                entry["case"] = str(keep)
    path.unlink(missing_ok=True)
    tmp.rmdir()
    return {
        "command": command,
        "cases": n,
        "seconds": round(time.monotonic() - t0, 1),
        "outcomes": dict(kinds),
        "crashes": crashes,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--slow", type=float, default=30.0, help="seconds that count as a hang")
    ap.add_argument("--out", default="/tmp/bpfkit-fuzz")
    ap.add_argument("--commands", default=",".join(SHARE))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    commands = [c for c in args.commands.split(",") if c]
    if "load" in commands and os.geteuid() != 0:
        print("fuzz_objects: load needs root; leaving it out", file=sys.stderr)
        commands.remove("load")
    total_share = sum(SHARE[c] for c in commands)
    jobs = []
    for c in commands:
        n = args.cases * SHARE[c] // total_share
        chunk = 1000
        for k in range(0, n, chunk):
            jobs.append((c, min(chunk, n - k), args.seed * 1_000_003 + len(jobs), args.slow,
                         args.out))
    summary: dict[str, dict[str, object]] = {}
    with multiprocessing.Pool(args.jobs, maxtasksperchild=5) as pool:
        for r in pool.imap_unordered(_work, jobs):
            s = summary.setdefault(str(r["command"]), {"cases": 0, "seconds": 0.0,
                                                      "outcomes": collections.Counter(),
                                                      "crashes": {}})
            s["cases"] = int(str(s["cases"])) + int(str(r["cases"]))
            s["seconds"] = float(str(s["seconds"])) + float(str(r["seconds"]))
            s["outcomes"].update(r["outcomes"])  # type: ignore[union-attr,arg-type]
            for key, c in r["crashes"].items():  # type: ignore[union-attr]
                got = s["crashes"].setdefault(key, c)  # type: ignore[union-attr]
                if got is not c:
                    got["count"] += c["count"]
            print(json.dumps({k: v for k, v in r.items() if k != "crashes"}), flush=True)
    print(json.dumps(summary, indent=1, default=dict))
    return 1 if any(s["crashes"] for s in summary.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
