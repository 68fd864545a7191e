"""read_object on libbpf-tools style objects and on every BPF source in this repository.

Oracles: libbpf itself (``bpftool prog loadall`` creates the maps it reads from the same
object; their kernel attributes must equal our MapSpecs), llvm-objdump-19 (functions),
llvm-readobj-19 (relocations) and bpftool (BTF).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import probes
from bpfkit.btf import Kind, load_vmlinux, parse_btf
from bpfkit.btf.dump import dump_raw
from bpfkit.btf.types import Enum
from bpfkit.obj import read_object
from bpfkit.obj.spec import RelocKind
from helpers import ROOT, TESTS, clang_bpf, readobj_relocations

ROOT = ROOT
DATA = TESTS / "data" / "obj_reader"


@pytest.fixture(scope="module")
@probes.needs("clang19")
def realworld(tmp_path_factory: pytest.TempPathFactory, vmlinux_h: Path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("rw")
    src = DATA / "realworld.c"
    flags = ("-D__TARGET_ARCH_x86", f"-I{vmlinux_h}")
    return {
        "plain": clang_bpf(src, d / "realworld.o", *flags),
        "pin": clang_bpf(src, d / "realworld_pin.o", *flags, "-DWITH_PIN"),
    }


@pytest.mark.requires("clang19", "bpftool")
def test_realworld_maps(realworld: dict[str, Path]) -> None:
    obj = read_object(realworld["pin"])
    maps = {m.name: m for m in obj.maps}
    assert set(maps) == {
        "events",
        "perf",
        "heap",
        "starts",
        "bloom",
        "pinned_counts",
        "jmp",
        "progs",
    }
    assert maps["pinned_counts"].pinning == 1  # LIBBPF_PIN_BY_NAME
    assert maps["bloom"].extra == {"map_extra": 3}
    assert maps["jmp"].init_values == ((2, "tail_a"),)
    assert maps["jmp"].inner is None
    assert maps["progs"].type == 3 and maps["progs"].init_values == ()
    assert obj.btf is not None
    btf = parse_btf(obj.btf)
    heap = maps["heap"]
    assert heap.value_type_id is not None and btf.format(heap.value_type_id) == "struct event"
    assert heap.value_size == 24
    prog = obj.program("handle_exec")
    kinds = {r.symbol: r.kind for r in prog.relocations}
    assert kinds["target_pid"] is RelocKind.GLOBAL_DATA
    assert kinds["LINUX_KERNEL_VERSION"] is RelocKind.KCONFIG
    assert kinds["CONFIG_HZ"] is RelocKind.KCONFIG
    assert kinds["jmp"] is RelocKind.MAP
    assert obj.btf_ext is not None


def _map_type_names() -> dict[int, str]:
    enum = load_vmlinux().find("bpf_map_type", Kind.ENUM)
    assert isinstance(enum, Enum)
    return {v.value: v.name.removeprefix("BPF_MAP_TYPE_").lower() for v in enum.values}


@pytest.mark.requires("bpf", "bpftool", "clang19")
def test_maps_agree_with_libbpf(realworld: dict[str, Path]) -> None:
    """libbpf (bpftool prog loadall) creates each map; the kernel's view equals our spec."""
    path = realworld["plain"]
    obj = read_object(path)
    from bpfkit.kernel.pins import ensure_bpffs

    ensure_bpffs("/sys/fs/bpf")  # bpftool loadall pins there; a fresh machine may lack it
    pins = Path(f"/sys/fs/bpf/bpfkit_objtest_{os.getpid()}")
    try:
        pins.mkdir()
        subprocess.run(
            ["bpftool", "prog", "loadall", str(path), str(pins / "p"), "pinmaps", str(pins / "m")],
            check=True,
            capture_output=True,
        )
        shown = {}
        for pin in (pins / "m").iterdir():
            out = subprocess.run(
                ["bpftool", "map", "show", "pinned", str(pin), "-j"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            shown[pin.name] = json.loads(out)
    finally:
        shutil.rmtree(pins, ignore_errors=True)
    names = _map_type_names()
    for m in obj.maps:
        k = shown[m.name]
        assert m.type is not None
        assert names[m.type] == k["type"], m.name
        assert (m.key_size or 0) == k["bytes_key"], m.name
        assert (m.value_size or 0) == k["bytes_value"], m.name
        assert m.flags == k["flags"], m.name
        if m.max_entries is not None:  # perf event arrays default to the CPU count
            assert m.max_entries == k["max_entries"], m.name
    rodata = next(d for d in obj.data if d.name == ".rodata")
    # libbpf names it "<object prefix>.rodata", the prefix cut to fit 15 characters.
    (pinned,) = [v for k, v in shown.items() if k.endswith("rodata")]
    assert pinned["bytes_value"] == rodata.size and pinned["frozen"] == 1


# --- every BPF source of the repository ----------------------------------------------------


def _repo_sources() -> list[Path]:
    globs = [
        "examples/*/*.c",
        "tests/corpus/src/*.c",
        "tests/kernel/progs/*.c",
        "tests/data/asm/*.c",
    ]
    return sorted(p for g in globs for p in ROOT.glob(g))


@pytest.mark.requires("clang19", "llvm19", "bpftool")
@pytest.mark.parametrize("target", ["bpf", "bpfeb"])
def test_repository_objects(tmp_path: Path, target: str) -> None:
    """Every BPF C source here, both byte orders: functions as llvm-objdump-19 lists them,
    relocations as llvm-readobj-19 lists them, BTF as bpftool dumps it."""
    sources = _repo_sources()
    read = 0
    for src in sources:
        out = tmp_path / (src.stem + ".o")
        try:
            clang_bpf(src, out, target=target)
        except subprocess.CalledProcessError:
            continue  # a source needing other flags: not this test's business
        obj = read_object(out)
        assert obj.big_endian == (target == "bpfeb")
        dis = subprocess.run(
            ["llvm-objdump-19", "-d", str(out)], check=True, capture_output=True, text=True
        ).stdout
        for p in obj.programs:
            assert f"{p.offset:016x} <{p.name}>:" in dis, (src, p.name)
        for sec, rels in readobj_relocations(out).items():
            if sec.startswith(".debug_"):
                continue
            ours = sorted((r.offset, r.type_name, r.symbol) for r in obj.relocations[sec])
            assert ours == sorted(rels), (src, sec)
        if obj.btf is not None:
            btf = parse_btf(obj.btf)
            theirs = subprocess.run(
                ["bpftool", "btf", "dump", "file", str(out)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            assert dump_raw(btf) == theirs, src
        read += 1
    assert read >= min(3, len(sources))
