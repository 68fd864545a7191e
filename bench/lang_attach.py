"""Benchmark: from ``python prog.py`` to attached, for the ten bpfkit.lang examples, against
``python -c pass`` and against compiling one BPF C program with clang at run time (what bcc
does on every start), all measured in the same run.

Each example runs as a whole process (``python examples/python/TOOL.py --duration 0.01``);
the time is until its first output line, which it prints once its programs are compiled,
loaded and attached.  Two figures per tool, both honest about what they include:

* first run: an empty compile cache (a new ``BPFKIT_CACHE_DIR``), so the program is
  compiled (and, for CO-RE, the kernel's BTF parsed);
* cached: the second and later runs, which read the compiled object from the cache
  (:mod:`bpfkit.lang.cache`) instead of compiling.

The kernel's part, which no change of bpfkit can cut, is measured separately in this
process: the time spent inside ``bpf()`` (map and BTF creation, program load and
verification, link creation) while the tool's object is loaded and attached.

Both run with a bytecode cache (PYTHONPYCACHEPREFIX in a temporary directory, filled by a
first, uncounted run; PYTHONDONTWRITEBYTECODE dropped), as an installed package runs.  Best
and median of ``--repeat`` runs each (default 3); needs root.
Usage: ``python bench/lang_attach.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
TOOLS = [
    "execsnoop", "opensnoop", "syslat", "tcpconnect", "runqlat", "statsnoop", "killsnoop",
    "syscount", "xdpcount", "funclatency",
]  # fmt: skip
GOAL_MS = 100


def _to_first_line(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env
    )
    assert p.stdout is not None
    line = p.stdout.readline()
    t = time.perf_counter() - t0
    _, err = p.communicate(timeout=60)
    if not line:
        raise SystemExit(f"{' '.join(argv)} printed nothing (root needed?)\n{err}")
    return t * 1000


def _run_ms(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env, cwd=ROOT)
    return (time.perf_counter() - t0) * 1000


def _clang() -> float | None:
    clang = shutil.which("clang-19") or shutil.which("clang")
    if clang is None:
        return None
    src = os.path.join(ROOT, "examples", "execsnoop", "execsnoop.c")
    include = f"-I/usr/include/{os.uname().machine}-linux-gnu"
    argv = [clang, "-target", "bpf", "-O2", "-g", include, "-c", src, "-o", os.devnull]
    return min(_run_ms(argv, dict(os.environ)) for _ in range(3))


def kernel_ms(tool: str) -> float:
    """ms spent inside bpf() while ``tool``'s object is loaded and attached (in process)."""
    from bpfkit.lang.runtime import Program
    from bpfkit.syscalls import backend

    spent = [0.0]

    def timed(cmd: int, attr: ctypes.Structure) -> int:
        t0 = time.perf_counter()
        try:
            return backend.real_backend(cmd, attr)
        finally:
            spent[0] += time.perf_counter() - t0

    prog = Program.from_file(os.path.join(ROOT, "examples", "python", f"{tool}.py"))
    prog.spec  # noqa: B018 - read the object before timing
    kwargs = {"ifname": "lo"} if tool == "xdpcount" else {}
    with backend.use_backend(timed):
        live = prog.load(**kwargs)
    live.close()
    return spent[0] * 1000


def _stats(values: list[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/lang_attach.py needs root (it loads programs)", file=sys.stderr)
        return 1
    ref = _clang()
    tmp = tempfile.mkdtemp(prefix="bpfkit-bench-lang-")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONDONTWRITEBYTECODE", "BPFKIT_NO_CACHE")
    }
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
    env["PYTHONPATH"] = os.path.join(ROOT, "src")
    os.environ["BPFKIT_CACHE_DIR"] = os.path.join(tmp, "inprocess")  # kernel_ms's compiles
    first: dict[str, list[float]] = {}
    cached: dict[str, list[float]] = {}
    kernel: dict[str, float] = {}
    try:
        python = [sys.executable, "-c", "pass"]
        _run_ms(python, env)
        py: list[float] = []  # measured next to each tool's runs: the same load on both
        print(
            f"{'tool':<12} {'first run':>18} {'cached':>18} {'cached/python':>14} {'in bpf()':>9}"
        )
        print(f"{'':<12} {'best  median ms':>18} {'best  median ms':>18}")
        for tool in TOOLS:
            argv = [sys.executable, f"examples/python/{tool}.py", "--duration", "0.01"]
            # Uncounted: fills the bytecode cache.
            _to_first_line(argv, {**env, "BPFKIT_CACHE_DIR": os.path.join(tmp, "warm")})
            first[tool] = []
            cached[tool] = []
            filled = {**env, "BPFKIT_CACHE_DIR": os.path.join(tmp, f"{tool}-0")}
            for i in range(args.repeat):
                fresh = os.path.join(tmp, f"{tool}-{i}")  # an empty compile cache
                first[tool].append(_to_first_line(argv, {**env, "BPFKIT_CACHE_DIR": fresh}))
                cached[tool].append(_to_first_line(argv, filled))
                py.append(_run_ms(python, env))
            kernel[tool] = kernel_ms(tool)
            fb, fm = _stats(first[tool])
            cb, cm = _stats(cached[tool])
            print(
                f"{tool:<12} {fb:7.0f} {fm:7.0f} ms {cb:7.0f} {cm:7.0f} ms "
                f"{cm / statistics.median(py[-args.repeat :]):12.1f}x {kernel[tool]:7.1f} ms",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    pyb, pym = _stats(py)
    first_med = statistics.median(statistics.median(v) for v in first.values())
    cached_med = statistics.median(statistics.median(v) for v in cached.values())
    kernel_med = statistics.median(kernel.values())
    print()
    print(f"python -c pass: best {pyb:.0f} ms, median {pym:.0f} ms")
    for label, med in (
        ("first run (compiling)", first_med),
        ("cached (second run on)", cached_med),
    ):
        verdict = "met" if med <= GOAL_MS else "NOT met"
        print(
            f"median over the tools, {label}: {med:.0f} ms = {med / pym:.1f}x python -c pass "
            f"(goal {GOAL_MS} ms: {verdict})"
        )
    print(
        f"of which inside bpf() (the kernel: maps, BTF, verifier, links), median: {kernel_med:.1f} ms"
    )
    if ref is not None:
        print(f"reference: clang -O2 of one BPF C program: {ref:.0f} ms")
        print(
            f"ratio first run / clang: {first_med / ref:.2f}; cached / clang: {cached_med / ref:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
