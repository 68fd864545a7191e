"""The LLVM-syntax assembler against llvm-mc-19: same sections, symbols and relocations.

Every assembly file of the project is assembled by bpfkit and by
``llvm-mc-19 -triple bpfel|bpfeb -mcpu=v4 -filetype=obj``; the two objects are read with
pyelftools and compared: each section's name, type, flags, alignment, entry size and
contents; each symbol's name, section, value, size, binding, type and visibility; each
relocation's offset, type and symbol.  The files: the hand-written ones in tests/data/asm
(every ISA row, directives), the corpus' assembly, ``clang-19 -S -O2`` output of every C
program (at -mcpu v1..v4, with and without -g), ``llc-19`` output of the examples' IR and rustc's ``--emit=asm``.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection

from bpfkit.asm.assemble import assemble, assemble_file
from bpfkit.isa import OPS, decode_all, lookup
from helpers import ROOT, TESTS

ROOT = ROOT
HERE = TESTS / "data" / "asm"
CORPUS = TESTS / "corpus" / "src"
INCLUDE = "/usr/include/x86_64-linux-gnu"

HAND = sorted(p for p in HERE.glob("*.s") if p.name != "v5_rows.s")
CORPUS_ASM = sorted(CORPUS.glob("*.s")) if CORPUS.is_dir() else []
C_SOURCES = (
    sorted(HERE.glob("*.c"))
    + (sorted(CORPUS.glob("*.c")) if CORPUS.is_dir() else [])
    + sorted(ROOT.glob("examples/*/*.c"))
)
EXAMPLES_RS = sorted(ROOT.glob("examples/*/*.rs"))
IR_SOURCES = sorted(ROOT.glob("examples/*/*.ll"))
RUST_SOURCES = sorted(HERE.glob("*.rs"))


def summary(obj: bytes) -> dict[str, Any]:
    """What must agree between two objects, read with pyelftools."""
    elf = ELFFile(io.BytesIO(obj))
    names = {i: s.name for i, s in enumerate(elf.iter_sections())}
    sections = []
    symbols: list[tuple[Any, ...]] = []
    relocations = []
    for sec in elf.iter_sections():
        h = sec.header
        if isinstance(sec, SymbolTableSection):
            for sym in sec.iter_symbols():
                ndx = sym["st_shndx"]
                where = names.get(ndx, ndx) if isinstance(ndx, int) else ndx
                name = sym.name or (names.get(ndx, "") if isinstance(ndx, int) else "")
                symbols.append(
                    (
                        name,
                        where,
                        sym["st_value"],
                        sym["st_size"],
                        sym["st_info"]["bind"],
                        sym["st_info"]["type"],
                        sym["st_other"]["visibility"],
                    )
                )
            continue
        if isinstance(sec, RelocationSection):
            symtab = elf.get_section(h["sh_link"])
            target = names[h["sh_info"]]
            for r in sec.iter_relocations():
                sym = symtab.get_symbol(r["r_info_sym"])
                name = sym.name or names.get(sym["st_shndx"], "")
                relocations.append((target, r["r_offset"], r["r_info_type"], name))
            continue
        if h["sh_type"] == "SHT_STRTAB":
            continue
        data = b"" if h["sh_type"] == "SHT_NOBITS" else sec.data()
        sections.append(
            (
                sec.name,
                h["sh_type"],
                h["sh_flags"],
                h["sh_addralign"],
                h["sh_entsize"],
                h["sh_size"],
                data,
            )
        )
    return {
        "header": (elf["e_type"], elf["e_machine"], elf.little_endian, elf.elfclass),
        "sections": sections,
        "symbols": symbols,
        "relocations": relocations,
    }


def llvm_mc(path: Path, tmp: Path, big_endian: bool = False) -> bytes:
    out = tmp / (path.stem + (".eb" if big_endian else ".el") + ".o")
    triple = "bpfeb" if big_endian else "bpfel"
    subprocess.run(
        ["llvm-mc-19", "-triple", triple, "-mcpu=v4", "-filetype=obj", str(path), "-o", str(out)],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def check_same(path: Path, tmp: Path, big_endian: bool = False) -> bytes:
    ours = assemble_file(path, big_endian=big_endian)
    theirs = llvm_mc(path, tmp, big_endian)
    a, b = summary(ours), summary(theirs)
    assert a["header"] == b["header"], path
    assert a["sections"] == b["sections"], path
    assert a["symbols"] == b["symbols"], path
    assert a["relocations"] == b["relocations"], path
    return ours


def check_tools_read(obj: bytes, tmp: Path) -> None:
    """llvm-readelf-19 -a and llvm-objdump-19 -d read the object without a warning."""
    path = tmp / "ours.o"
    path.write_bytes(obj)
    for cmd in (["llvm-readelf-19", "-a", str(path)], ["llvm-objdump-19", "-d", str(path)]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, (cmd, r.stderr)
        assert "warning" not in (r.stdout + r.stderr).lower(), (cmd, r.stderr)


@pytest.mark.requires("llvm19")
@pytest.mark.parametrize("path", HAND + CORPUS_ASM, ids=lambda p: p.name)
@pytest.mark.parametrize("big_endian", [False, True], ids=["bpfel", "bpfeb"])
def test_assembly_files_match_llvm_mc(path: Path, big_endian: bool, tmp_path: Path) -> None:
    obj = check_same(path, tmp_path, big_endian)
    check_tools_read(obj, tmp_path)


@pytest.mark.requires("llvm19", "clang19")
@pytest.mark.parametrize("source", C_SOURCES, ids=lambda p: p.name)
def test_clang_output_matches_llvm_mc(source: Path, tmp_path: Path) -> None:
    for cpu in ("v1", "v2", "v3", "v4"):
        for debug in ([], ["-g"]):  # -g: BTF, .BTF.ext, DWARF sections, .loc line tables
            asm = tmp_path / f"{source.stem}_{cpu}{'_g' if debug else ''}.s"
            subprocess.run(
                ["clang-19", "-target", "bpf", "-O2", f"-mcpu={cpu}", "-I", INCLUDE, "-S"]
                + debug
                + [str(source), "-o", str(asm)],
                check=True,
                capture_output=True,
            )
            obj = check_same(asm, tmp_path)
            if cpu in ("v1", "v4"):
                check_same(asm, tmp_path, big_endian=True)
            if cpu == "v4":
                check_tools_read(obj, tmp_path)


@pytest.mark.requires("llvm19", "llc19")
@pytest.mark.parametrize("source", IR_SOURCES, ids=lambda p: p.parent.name + "/" + p.name)
def test_llc_output_matches_llvm_mc(source: Path, tmp_path: Path) -> None:
    asm = tmp_path / (source.stem + ".s")
    r = subprocess.run(
        ["llc-19", "-march=bpf", str(source), "-o", str(asm)], capture_output=True, text=True
    )
    assert r.returncode == 0, f"llc-19 cannot read {source.name}: {r.stderr.strip()[:200]}"
    check_same(asm, tmp_path)
    check_same(asm, tmp_path, big_endian=True)


@pytest.mark.requires("llvm19", "rustc")
@pytest.mark.parametrize("source", RUST_SOURCES, ids=lambda p: p.name)
def test_rustc_output_matches_llvm_mc(source: Path, tmp_path: Path) -> None:
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    for debug in ([], ["-g"]):  # -g: DWARF 4 line tables from .loc, .debug_frame
        asm = tmp_path / (source.stem + ("_g" if debug else "") + ".s")
        subprocess.run(
            ["rustc", "--target", "bpfel-unknown-none", "--emit=asm", "-C", "opt-level=3"]
            + ["-C", "panic=abort", "--crate-type=lib", *debug, str(source), "-o", str(asm)],
            check=True,
            capture_output=True,
            env=env,
        )
        obj = check_same(asm, tmp_path)
        check_same(asm, tmp_path, big_endian=True)
        check_tools_read(obj, tmp_path)


@pytest.mark.requires("llvm19", "rustc")
@pytest.mark.parametrize("source", EXAMPLES_RS, ids=lambda p: p.parent.name + "/" + p.name)
def test_examples_rust_assembly_matches_llvm_mc(source: Path, tmp_path: Path) -> None:
    """The assembly ``bpfkit build`` gets from rustc for the examples (with bpfkit's prelude)."""
    from bpfkit.cli.main import main

    asm, obj = tmp_path / (source.stem + ".s"), tmp_path / (source.stem + ".o")
    assert main(["build", str(source), "--asm", str(asm), "-o", str(obj)]) == 0
    ours = check_same(asm, tmp_path)
    assert ours == obj.read_bytes()  # what bpfkit build wrote is our assembler's object
    check_tools_read(ours, tmp_path)


def test_every_isa_row_is_assembled() -> None:
    """The hand-written files name every row of the table, decoded back to that row."""
    seen = set()
    for name in ("every_row.s", "v5_rows.s"):
        obj = assemble_file(HERE / name)
        text = ELFFile(io.BytesIO(obj)).get_section_by_name(".text").data()
        for insn in decode_all(text):
            op = lookup(insn)
            assert op is not None, insn
            seen.add(op)
    # A kfunc call (src 2) has no LLVM spelling: clang writes ``call sym`` with an
    # R_BPF_64_32 relocation and the loader turns it into src 2 (the mnemonic syntax has it).
    missing = {op.mnemonic for op in set(OPS) - seen}
    assert missing == {"call kfunc"}, sorted(missing)


def test_v5_rows_encode_as_the_table_says() -> None:
    obj = assemble_file(HERE / "v5_rows.s")
    insns = decode_all(ELFFile(io.BytesIO(obj)).get_section_by_name(".text").data())
    got = [(lookup(i).mnemonic, i.dst, i.src, i.off) for i in insns]  # type: ignore[union-attr]
    assert got == [
        ("ldacqb", 1, 2, 8),
        ("ldacqh", 3, 4, -2),
        ("ldacqw", 5, 6, 0),
        ("ldacqdw", 7, 10, -16),
        ("strelb", 1, 2, 1),
        ("strelh", 3, 4, -4),
        ("strelw", 5, 6, 12),
        ("streldw", 10, 7, -8),
        ("gotox", 3, 0, 0),
        ("exit", 0, 0, 0),
    ]


def test_hello_is_byte_identical_to_llvm_mc_object_in_the_repository() -> None:
    """llc-19's assembly of the seed assembles to an object with the seed's instructions."""
    obj = assemble_file(HERE / "hello.llc.s")
    elf = ELFFile(io.BytesIO(obj))
    prog = elf.get_section_by_name("kprobe/SyS_clone").data()
    seed = ELFFile(io.BytesIO((ROOT / "examples/hello/hello.o").read_bytes()))
    assert prog == seed.get_section_by_name("kprobe/SyS_clone").data()


def test_big_endian_object_header_and_bytes() -> None:
    obj = assemble("\tr1 = 0x1122 ll\n\tr0 = r1\n\texit\n", big_endian=True)
    elf = ELFFile(io.BytesIO(obj))
    assert not elf.little_endian
    text = elf.get_section_by_name(".text").data()
    # big-endian slots: dst in the high nibble, 16/32-bit fields big-endian
    assert text[:8] == bytes.fromhex("1810000000001122")
    assert text[16:24] == bytes.fromhex("bf01000000000000")
    assert decode_all(text, big_endian=True)[1].src == 1


@pytest.mark.requires("llvm19")
def test_leb128_directives_match_llvm_mc(tmp_path: Path) -> None:
    """.uleb128/.sleb128 at the edges of each byte, negative .uleb128 (64-bit two's
    complement, which once looped forever) included."""
    src = tmp_path / "leb.s"
    src.write_text(
        '\t.section\t.rodata,"a",@progbits\n'
        "\t.uleb128 0, 1, 127, 128, 300, 16383, 16384, 0xffffffffffffffff, -1, -128\n"
        "\t.sleb128 0, 1, -1, 63, 64, -64, -65, 8191, -8192, -8193, 0x7fffffffffffffff\n"
    )
    for big_endian in (False, True):
        check_same(src, tmp_path, big_endian)
