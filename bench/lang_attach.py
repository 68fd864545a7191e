"""Benchmark: from ``python prog.py`` to attached, for the ten bpfkit.lang examples, against
compiling one BPF C program with clang at run time (what bcc does on every start).

Each example runs as a whole process (``python examples/python/TOOL.py --duration 0.01``);
the time is until its first output line, which it prints once its programs are compiled,
loaded and attached.  The reference, measured in the same run: ``clang-19 -target bpf -O2
-g -c`` of examples/execsnoop/execsnoop.c (compiling alone; bcc also loads headers and
attaches).  Best of three each; needs root.  Usage: ``python bench/lang_attach.py``.

The examples run with a bytecode cache (PYTHONPYCACHEPREFIX in a temporary directory,
PYTHONDONTWRITEBYTECODE dropped), as an installed package would.  Where the time goes
(measured while writing it, in-process, on an idle machine): importing bpfkit.lang with
the assembler and the kernel layer ~230 ms without a bytecode cache (most of the
total), compiling a tool ~50 ms (a third of it assembling the generated text), loading and
attaching ~40 ms; execsnoop also parses the kernel's BTF (~1 s) for its CO-RE access.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = [
    "execsnoop", "opensnoop", "syslat", "tcpconnect", "runqlat", "statsnoop", "killsnoop",
    "syscount", "xdpcount", "funclatency",
]  # fmt: skip


def _to_first_line(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env
    )
    assert p.stdout is not None
    line = p.stdout.readline()
    t = time.perf_counter() - t0
    p.communicate(timeout=60)
    if not line:
        raise SystemExit(f"{' '.join(argv)} printed nothing (root needed?)")
    return t


def _clang() -> float | None:
    clang = shutil.which("clang-19") or shutil.which("clang")
    if clang is None:
        return None
    src = os.path.join(ROOT, "examples", "execsnoop", "execsnoop.c")
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(
            [
                clang,
                "-target",
                "bpf",
                "-O2",
                "-g",
                f"-I/usr/include/{os.uname().machine}-linux-gnu",
                "-c",
                src,
                "-o",
                os.devnull,
            ],  # fmt: skip
            check=True,
            capture_output=True,
        )
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ref = _clang()
    # As installed packages run: with a bytecode cache (this environment may set
    # PYTHONDONTWRITEBYTECODE, which makes every start compile bpfkit's modules again).
    cache = tempfile.mkdtemp(prefix="bpfkit-pycache-")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    times = {}
    try:
        for tool in TOOLS:
            argv = [sys.executable, f"examples/python/{tool}.py", "--duration", "0.01"]
            times[tool] = min(_to_first_line(argv, env) for _ in range(3))
            print(f"{tool:<12} {times[tool] * 1000:7.0f} ms to attached", flush=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    median = sorted(times.values())[len(times) // 2]
    print(f"median: {median * 1000:.0f} ms (goal: 100 ms)")
    if ref is not None:
        print(f"reference: clang -O2 of one BPF C program: {ref * 1000:.0f} ms")
        print(f"ratio median/clang: {median / ref:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
