"""Load + attach speed: in process (open the object -> attached), and whole process
(`bpfkit run OBJ --count 0` against Debian's `bpftool prog load OBJ PIN`), in one run.

    .venv/bin/python bench/load.py [--repeat N]

Goals (issue 6): hello's load + attach under 20 ms in process; the whole process at most
2x bpftool's.  The whole-process figure is also broken down (interpreter start, importing
the CLI, the run itself) so it is clear what a slow number is made of.  Needs root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bpfkit.kernel import links  # noqa: E402
from bpfkit.kernel.session import Session  # noqa: E402
from bpfkit.obj.reader import read_object  # noqa: E402


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def objects(tmp: Path) -> dict[str, Path]:
    """hello (the seed's object) and the C examples that attach, built with clang-19."""
    objs = {"hello": ROOT / "examples" / "hello" / "hello.o"}
    if shutil.which("clang-19"):
        src = ROOT / "examples" / "execsnoop" / "execsnoop.c"
        if src.exists():
            out = tmp / "execsnoop.o"
            cmd = ["clang-19", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu"]
            done = subprocess.run([*cmd, "-c", str(src), "-o", str(out)], capture_output=True)
            if done.returncode == 0:
                objs["execsnoop"] = out
    return objs


def in_process(path: Path, repeat: int) -> tuple[float, float, float]:
    """Median ms of: open -> attached; read_object alone; detach + close."""
    detach: list[float] = []
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        s = Session(path, trace=False)
        times.append((time.perf_counter() - t0) * 1000)
        t1 = time.perf_counter()
        s.close()
        detach.append((time.perf_counter() - t1) * 1000)
    read_ms = _median_ms(lambda: read_object(str(path)), repeat)
    return statistics.median(times), read_ms, statistics.median(detach)


def whole_process(path: Path, repeat: int) -> dict[str, float]:
    """Median wall ms of the commands compared, run alternately."""
    pin = "/sys/fs/bpf/bpfkit_bench_load"
    py = sys.executable
    cmds: dict[str, list[str]] = {
        "bpftool prog load": ["bpftool", "prog", "load", str(path), pin],
        "bpfkit run --count 0": [py, "-m", "bpfkit", "run", str(path), "--count", "0"],
        "  python -c pass": [py, "-c", "pass"],
        "  python: import the CLI": [
            py,
            "-c",
            "from bpfkit.cli.main import build_parser; build_parser()",
        ],
        # What `run` costs without importing every other command (lazy CLI imports).
        "  python: Session only": [
            py,
            "-c",
            "import sys; from bpfkit.kernel.session import Session; "
            "Session(sys.argv[1], trace=False).close()",
            str(path),
        ],
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(repeat):
        for name, cmd in cmds.items():
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, env=env)
            times[name].append((time.perf_counter() - t0) * 1000)
            if os.path.exists(pin):
                os.unlink(pin)
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr.decode()}")
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/load.py needs root (it loads programs)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        objs = objects(Path(tmp))
        print("in process: open object -> attached (median ms)")
        for name, path in objs.items():
            Session(path, trace=False).close()  # warm caches (tracefs, kallsyms)
            attach_ms, read_ms, detach_ms = in_process(path, args.repeat)
            goal = "  (goal < 20 ms: " + ("met)" if attach_ms < 20 else "NOT met)")
            print(
                f"  {name:10} {attach_ms:7.2f} ms   (read_object {read_ms:.2f} ms; "
                f"detach+close {detach_ms:.2f} ms){goal if name == 'hello' else ''}"
            )
        print(f"  perf link used: {links._perf_link_supported}")
        print()
        print("whole process (median wall ms)")
        for name, path in objs.items():
            res = whole_process(path, max(5, args.repeat // 2))
            print(f"  {name}:")
            for cmd, ms in res.items():
                print(f"    {cmd:28} {ms:8.1f} ms")
            ratio = res["bpfkit run --count 0"] / res["bpftool prog load"]
            print(f"    ratio bpfkit/bpftool: {ratio:.1f}x (goal <= 2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
