"""Load + attach speed: in process (open the object -> attached), and whole process
(`bpfkit load OBJ` and `bpfkit run OBJ --count 0` against Debian's
`bpftool prog load OBJ PIN` + unpin), in one run.

    .venv/bin/python bench/load.py [--repeat N]

Goals (issue 6): hello's load + attach under 20 ms in process; the whole process at most
2x bpftool's.  ``bpfkit load`` (load, no attach) is the like-for-like comparison with
``bpftool prog load``; ``bpfkit run --count 0`` also attaches and detaches, and detaching
a perf-event tracepoint costs the kernel's RCU grace periods (measured below), which
bpftool, not attaching, never pays.  The whole-process figures are broken down
(interpreter start, imports, the kernel's detach) so it is clear what they are made of.
Child Pythons get a bytecode cache (as a pip install has) in a private directory, even
when PYTHONDONTWRITEBYTECODE is set here; the cost without one is printed too.  Issue 11's
start-up goal: ``bpfkit load`` of hello at most 3x ``python -c pass``.  A second ``bpfkit
load`` of the same object replays the ``bpf()`` calls the first one recorded
(bpfkit/kernel/replay.py, in a private cache directory filled by the uncounted first round);
``BPFKIT_NO_CACHE=1`` shows the whole road, which a first load takes.  Needs root.
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

from bpfkit.isa.insn import Insn  # noqa: E402
from bpfkit.kernel import links  # noqa: E402
from bpfkit.kernel.attach import parse_spec  # noqa: E402
from bpfkit.kernel.program import load_program  # noqa: E402
from bpfkit.kernel.session import Session  # noqa: E402
from bpfkit.obj.reader import read_object  # noqa: E402
from bpfkit.uapi import ProgType  # noqa: E402

PIN = "/sys/fs/bpf/bpfkit_bench_load"
# What `bpfkit run OBJ` imports (the CLI imports only the command it runs), and reading
# OBJ (which imports the BTF parser if OBJ has BTF).
RUN_IMPORTS = (
    "import sys, bpfkit.cli.main, bpfkit.cli.run, bpfkit.kernel.session, "
    "bpfkit.kernel.collection; from bpfkit.obj.reader import read_object; "
    "read_object(sys.argv[1])"
)


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


def in_process(path: Path, repeat: int) -> tuple[float, float, float, float]:
    """Median ms of: open -> attached; read_object alone; detach + close; and the best
    detach + close."""
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
    return statistics.median(times), read_ms, statistics.median(detach), min(detach)


def kernel_load_ms(path: Path, repeat: int) -> float:
    """Best ms spent inside bpf() while ``bpfkit load`` loads ``path`` (maps, BTF, program
    load and verification): the kernel's part, which no change of bpfkit can cut."""
    import ctypes

    from bpfkit.kernel.collection import load_collection
    from bpfkit.syscalls import backend

    spec = read_object(str(path))
    spent = [0.0]

    def timed(cmd: int, attr: ctypes.Structure) -> int:
        t0 = time.perf_counter()
        try:
            return backend.real_backend(cmd, attr)
        finally:
            spent[0] += time.perf_counter() - t0

    best = float("inf")
    for _ in range(repeat):
        spent[0] = 0.0
        with backend.use_backend(timed):
            coll = load_collection(spec)
        coll.close()
        best = min(best, spent[0] * 1000)
    return best


def detach_costs(repeat: int) -> dict[str, float]:
    """Median ms to detach (close) a trivial program by each way of attaching to a
    syscall: what the kernel does on close, without anything of the object around it."""
    ret0 = [Insn(0xB7, 0, 0, 0, 0), Insn(0x95)]  # r0 = 0; exit
    tracepoint = parse_spec("tracepoint:syscalls:sys_enter_getppid")
    ways = {
        "perf-event tracepoint, BPF link": (ProgType.TRACEPOINT, tracepoint, None),
        "perf-event tracepoint, SET_BPF ioctl": (ProgType.TRACEPOINT, tracepoint, False),
        "raw tracepoint (sys_enter), BPF link": (
            ProgType.RAW_TRACEPOINT,
            parse_spec("raw_tracepoint:sys_enter"),
            None,
        ),
    }
    out: dict[str, float] = {}
    for name, (prog_type, point, use_link) in ways.items():
        times = []
        with load_program(ret0, prog_type, name="bench_detach") as prog:
            for _ in range(repeat):
                saved = links._perf_link_supported
                if use_link is False:
                    links._perf_link_supported = False
                try:
                    link = links.attach(prog, point)
                finally:
                    links._perf_link_supported = saved
                t0 = time.perf_counter()
                link.close()
                times.append((time.perf_counter() - t0) * 1000)
        out[name] = statistics.median(times)
    return out


def _bpfkit() -> list[str]:
    script = Path(sys.executable).parent / "bpfkit"  # the console script users run
    return [str(script)] if script.exists() else [sys.executable, "-m", "bpfkit"]


def whole_process(path: Path, repeat: int, pycache: Path) -> dict[str, tuple[float, float]]:
    """(median, best) wall ms of each command, the commands run alternately ``repeat``
    times (the best is the one least disturbed by other processes of the machine)."""
    py = sys.executable
    cmds: dict[str, list[str]] = {
        "bpftool": ["bpftool", "prog", "load", str(path), PIN],
        "load": [*_bpfkit(), "load", str(path)],
        "load-whole": ["env", "BPFKIT_NO_CACHE=1", *_bpfkit(), "load", str(path)],
        "run": [*_bpfkit(), "run", str(path), "--count", "0"],
        "python": [py, "-c", "pass"],
        "imports": [py, "-c", RUN_IMPORTS, str(path)],
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONPYCACHEPREFIX": str(pycache)}
    env["BPFKIT_CACHE_DIR"] = str(pycache / "bpfkit")  # its recorded loads (kernel/replay.py)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("BPFKIT_NO_CACHE", None)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    # The first round fills the bytecode cache and records the load: not counted.
    for i in range(repeat + 1):
        for name, cmd in cmds.items():
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, env=env)
            if os.path.exists(PIN):  # unpinning releases bpftool's program: part of its time
                os.unlink(PIN)
            ms = (time.perf_counter() - t0) * 1000
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr.decode()}")
            if i:
                times[name].append(ms)
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}


def without_bytecode_cache(path: Path, repeat: int) -> float:
    """Median wall ms of ``bpfkit run --count 0`` compiling every module (no .pyc)."""
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as empty:
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT / "src"),
                "PYTHONPYCACHEPREFIX": empty,
                "PYTHONDONTWRITEBYTECODE": "1",
            }
            t0 = time.perf_counter()
            subprocess.run([*_bpfkit(), "run", str(path), "--count", "0"], env=env, check=True,
                           capture_output=True)  # fmt: skip
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _goal(ratio: float) -> str:
    return "met" if ratio <= 2 else "NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/load.py needs root (it loads programs)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        objs = objects(Path(tmp))
        print(f"in process: open object -> attached (median of {args.repeat}, ms)")
        detach_ms: dict[str, float] = {}
        detach_best: dict[str, float] = {}
        for name, path in objs.items():
            Session(path, trace=False).close()  # warm caches (tracefs, kallsyms)
            attach_ms, read_ms, detach_ms[name], detach_best[name] = in_process(path, args.repeat)
            goal = f"   goal < 20 ms: {'met' if attach_ms < 20 else 'NOT met'}"
            print(
                f"  {name:10} {attach_ms:7.2f} ms   (of which read_object {read_ms:.2f} ms)"
                f"{goal if name == 'hello' else ''}"
            )
        print(f"  (attached with a BPF link on the perf event: {links._perf_link_supported})")
        print()
        print("detach + close, in process (median ms)")
        for name, ms in detach_ms.items():
            print(f"  {name:10} {ms:7.2f} ms   (best {detach_best[name]:.2f} ms)")
        print("  a trivial program, by way of attaching:")
        for way, ms in detach_costs(max(5, args.repeat // 2)).items():
            print(f"    {way:38} {ms:7.2f} ms")
        print(
            "  Closing the last perf event of a tracepoint makes the kernel wait for RCU\n"
            "  grace periods (perf_trace_event_unreg -> tracepoint_synchronize_unregister;\n"
            "  with a BPF link, also when the link releases the program), whichever fd is\n"
            "  closed first and with or without PERF_EVENT_IOC_DISABLE.  A raw tracepoint\n"
            "  detaches without waiting, but a tracepoint program cannot attach to one.\n"
            "  A process that exits without closing pays the same wait in exit()."
        )
        print()
        repeat = max(5, args.repeat)
        print(f"whole process (wall ms of {repeat} alternating runs: median, best)")
        with tempfile.TemporaryDirectory() as pycache:
            for name, path in objs.items():
                res = whole_process(path, repeat, Path(pycache))
                ref, ref_best = res["bpftool"]
                print(f"  {name}:")
                print(f"    bpftool prog load OBJ PIN + unpin   {ref:8.1f} {ref_best:8.1f} ms")
                for key, label, what in (
                    ("load", "bpfkit load OBJ", "like for like, the load replayed"),
                    ("load-whole", "bpfkit load OBJ, not recorded", "BPFKIT_NO_CACHE=1"),
                    ("run", "bpfkit run OBJ --count 0", "attaches + detaches too"),
                ):
                    med, best = res[key]
                    ratio = med / ref
                    print(
                        f"    {label:35} {med:8.1f} {best:8.1f} ms   {ratio:5.1f}x bpftool "
                        f"(best {best / ref_best:.1f}x; {what}; goal <= 2x: {_goal(ratio)})"
                    )
                # The breakdown from the best runs (the least disturbed by other processes).
                python, imports = res["python"][1], res["imports"][1] - res["python"][1]
                rest = res["run"][1] - res["imports"][1] - detach_best[name]
                print(
                    f"      best run = python start-up {python:.1f} ms + imports (and reading OBJ) "
                    f"{imports:.1f} ms"
                    f" + the kernel's detach {detach_best[name]:.1f} ms + the rest {rest:.1f} ms"
                )
                print(
                    f"      (`python -c pass` alone is {res['python'][0] / ref:.1f}x bpftool "
                    f"by median, {python / ref_best:.1f}x by best)"
                )
                kernel = kernel_load_ms(path, repeat)
                print(
                    f"      of `bpfkit load`, inside bpf() (the kernel: maps, BTF, load and "
                    f"verification; best): {kernel:.2f} ms"
                )
                start = res["load"][0] / res["python"][0]
                print(
                    f"    start-up: bpfkit load OBJ is {start:.1f}x `python -c pass` by median "
                    f"({res['load'][1] / python:.1f}x by best; issue 11's goal <= 3x: "
                    f"{'met' if start <= 3 else 'not met'}); the first load of an object, or "
                    f"one not recorded, takes the whole road: "
                    f"{res['load-whole'][0] / res['python'][0]:.1f}x by median"
                )
            hello = objs["hello"]
            cold = without_bytecode_cache(hello, max(3, args.repeat // 5))
            print(f"  hello, bpfkit run --count 0 without a bytecode cache: {cold:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
