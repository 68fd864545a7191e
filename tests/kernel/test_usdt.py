"""USDT probes in the kernel: a libbpf-style program (usdt.bpf.h's BPF_USDT) attached by
bpfkit to a binary built here with sys/sdt.h probes counts each probe and reads its
arguments (registers, memory, constants, a semaphore-guarded probe); the maps and cookies
are filled as libbpf fills them; a Python @usdt program counts through the same path."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

import probes
from bpfkit.cli.main import main
from bpfkit.kernel.session import Session
from bpfkit.obj import usdt
from helpers import USDT_DATA, clang_bpf, sdt_binary

CALLS = 3
PROBE_INDEX = {"on_args": 0, "on_constant": 1, "on_mem": 2, "on_tick": 3}


@pytest.fixture(scope="module", params=[("-O2",), ("-O0", "-no-pie")], ids=["O2-pie", "O0-exec"])
@probes.needs("gcc", "sdt-header", "clang19", "libbpf-headers")
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """The probe binary and the BPF object whose sections name its probes."""
    d = tmp_path_factory.mktemp("usdt")
    binary = sdt_binary(d / "probes", *request.param)
    obj = clang_bpf(
        USDT_DATA / "usdt_args.bpf.c", d / "usdt_args.o", "-D__TARGET_ARCH_x86", f'-DBIN="{binary}"'
    )
    return binary, obj


def seen(session: Session) -> dict[int, tuple[int, ...]]:
    """The ``seen`` map: probe -> (calls, arg_cnt, args[4])."""
    out = {}
    for k, v in session.maps["seen"].typed().items_raw():
        out[struct.unpack("<I", k)[0]] = struct.unpack("<Qq4q", v)
    return out


def run_binary(binary: Path, n: int = CALLS) -> None:
    out = subprocess.run([str(binary), str(n)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(n)


@pytest.mark.requires("bpf", "uprobes")
def test_usdt_programs_count_and_read_arguments(built: tuple[Path, Path]) -> None:
    binary, obj = built
    with Session(obj, trace=False) as s:
        assert [str(link.point) for link in s.links] == [
            f"usdt:{binary}:bpfkit_test:{name}" for name in ("args", "constant", "mem", "tick")
        ]
        run_binary(binary)
        got = seen(s)
    last = CALLS - 1
    big = 0x100000000 * (last + 1)
    # args: int, long, short (negative), unsigned char, as the binary passes them.
    assert got[0] == (CALLS, 4, last, big, -1 - last, 200 + last)
    assert got[1] == (CALLS, 1, 5, 0, 0, 0)  # a constant argument ($5)
    assert got[2] == (CALLS, 2, big * 3, big * 3, 0, 0)  # a pointer read back, and a value
    # tick fires only while its semaphore is counted up by the attached uprobe.
    assert got[3] == (CALLS, 1, 10 * last, 0, 0, 0)


@pytest.mark.requires("bpf", "uprobes")
def test_specs_and_addresses_are_filled_as_libbpf_does(built: tuple[Path, Path]) -> None:
    binary, obj = built
    sites = {
        n.name: usdt.find_sites(str(binary), "bpfkit_test", n.name)[0]
        for n in usdt.read_notes(str(binary))
    }
    with Session(obj, trace=False) as s:
        specs = s.maps[usdt.SPECS_MAP].typed()
        counts = [
            struct.unpack_from("<h", specs.lookup(struct.pack("<i", i)) or b"", 200)[0]
            for i in range(4)
        ]
        assert sorted(counts) == [1, 1, 2, 4]  # four distinct argument strings, four ids
        ips = {
            struct.unpack("<q", k)[0]: struct.unpack("<I", v)[0]
            for k, v in s.maps[usdt.IP_MAP].typed().items_raw()
        }
        if sites["args"].executable:  # a non-PIE executable: its sites have one address
            assert sorted(ips) == sorted(site.address for site in sites.values())
            assert sorted(ips.values()) == [0, 1, 2, 3]
        else:
            assert ips == {}  # addresses differ per process: the BPF cookie carries the id
    # After closing, a new session gets the same ids again (they were given back).
    with Session(obj, trace=False) as s:
        specs = s.maps[usdt.SPECS_MAP].typed()
        assert struct.unpack_from("<h", specs.lookup(struct.pack("<i", 0)) or b"", 200)[0] == 4


@pytest.mark.requires("bpf", "uprobes")
def test_plain_usdt_section_takes_the_probe_from_attach(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    binary, _ = built
    obj = clang_bpf(USDT_DATA / "usdt_args.bpf.c", tmp_path / "plain.o", "-D__TARGET_ARCH_x86")
    with Session(
        obj, program="on_args", attach=f"usdt:{binary}:bpfkit_test:args", trace=False
    ) as s:
        run_binary(binary, 2)
        got = seen(s)
    assert got[0][:3] == (2, 4, 1)


@pytest.mark.requires("bpf", "uprobes")
def test_cli_errors(
    built: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary, _ = built
    obj = clang_bpf(USDT_DATA / "usdt_args.bpf.c", tmp_path / "plain.o", "-D__TARGET_ARCH_x86")
    args = ["run", str(obj), "--program", "on_args", "--count", "0", "--attach"]
    assert main([*args, f"usdt:{binary}:bpfkit_test:nope"]) == 1
    assert "no USDT probe bpfkit_test:nope; its probes: bpfkit_test:args" in capsys.readouterr().err
    assert main([*args, f"usdt:{binary}"]) == 1
    assert "a USDT probe needs PATH:PROVIDER:NAME" in capsys.readouterr().err
    assert main(["run", str(obj), "--program", "on_args", "--count", "0"]) == 1
    assert "usdt:PATH:PROVIDER:NAME" in capsys.readouterr().err


PY_USDT = """
from bpfkit.lang import *
ticks = Array[u32, u64](max_entries=1)

@usdt("{binary}:bpfkit_test:tick")
def on_tick(ctx) -> i32:
    ticks[0] += 1
    return 0
"""


@pytest.mark.requires("bpf", "uprobes")
def test_python_usdt_program_counts_through_the_same_attach(built: tuple[Path, Path]) -> None:
    from bpfkit.lang.compiler import compile_source
    from bpfkit.lang.runtime import Program

    binary, _ = built
    src = PY_USDT.format(binary=binary)
    ns: dict[str, object] = {}
    exec(compile(src, "tick.py", "exec", dont_inherit=True), ns)
    with Program(compile_source(src, ns, "tick.py")).load() as live:
        run_binary(binary, 4)
        assert live.maps["ticks"][0] == 4  # the semaphore was counted: tick fired


PY_SCRIPT = """
import gc, sys
gc.disable()
for _ in range(5):
    gc.collect(1)
sys.path.insert(0, sys.argv[1])
import bpfkit_usdt_marker_module
"""


@pytest.mark.requires("bpf", "uprobes", "python-dtrace")
def test_cpython_probes(tmp_path: Path) -> None:
    """Debian's CPython (--with-dtrace): gc__start's generation (read from the stack) and
    import__find__load__start's module name (a pointer), both behind semaphores."""
    obj = clang_bpf(
        USDT_DATA / "python_probes.bpf.c",
        tmp_path / "py.o",
        "-D__TARGET_ARCH_x86",
        f'-DPY="{probes.PYTHON_DTRACE}"',
    )
    (tmp_path / "bpfkit_usdt_marker_module.py").write_text("")
    with Session(obj, trace=False) as s:
        subprocess.run([probes.PYTHON_DTRACE, "-S", "-c", PY_SCRIPT, str(tmp_path)], check=True)
        collections = [struct.unpack("<Q", v)[0] for v in s.maps["collections"].typed().values()]
        imports = {
            k.rstrip(b"\0"): struct.unpack("<Q", v)[0]
            for k, v in s.maps["imports"].typed().items_raw()
        }
    # Start-up and shut-down collect generations 0 and 2; only the script collects 1.
    assert collections[1] == 5
    assert imports[b"bpfkit_usdt_marker_module"] == 1
