"""USDT notes and argument specs (bpfkit.obj.usdt, no root): the notes of a binary built
here with sys/sdt.h probes are what ``readelf -n`` shows, sites are placed as libbpf places
them, and argument strings parse as libbpf's rules say."""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import pytest

import probes
from bpfkit.errors import ObjectError
from bpfkit.obj import usdt
from bpfkit.obj.usdt import ARG_CONST, ARG_REG, ARG_REG_DEREF, ARG_SIB, parse_args
from bpfkit.obj.usdt_spec import LIBBPF_1_1, encode_spec, layout_from_btf
from bpfkit.uapi._generated import CTX_FIELDS
from helpers import USDT_DATA, clang_bpf, sdt_binary

PT_REGS = {name: off for name, off, _ in CTX_FIELDS["pt_regs"]}


@pytest.fixture(scope="module", params=[("-O2",), ("-O0", "-no-pie")], ids=["O2-pie", "O0-exec"])
@probes.needs("gcc", "sdt-header")
def binary(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sdt_binary(tmp_path_factory.mktemp("usdt") / "probes", *request.param)


def readelf_notes(path: Path) -> list[usdt.UsdtNote]:
    """The stapsdt notes as ``readelf -n`` prints them (the oracle)."""
    text = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True).stdout
    pattern = re.compile(
        r"Provider: (\S+)\n\s+Name: (\S+)\n\s+Location: (0x[0-9a-f]+), Base: (0x[0-9a-f]+), "
        r"Semaphore: (0x[0-9a-f]+)\n\s+Arguments: ?(.*)\n"
    )
    return [
        usdt.UsdtNote(p, n, args, int(pc, 16), int(base, 16), int(sema, 16))
        for p, n, pc, base, sema, args in pattern.findall(text)
    ]


@pytest.mark.requires("binutils")
def test_notes_are_what_readelf_shows(binary: Path) -> None:
    ours = usdt.read_notes(str(binary))
    assert ours == readelf_notes(binary)
    assert {n.name for n in ours} == {"args", "constant", "mem", "tick"}
    assert [n.name for n in ours if n.semaphore] == ["tick"]


def _section(path: Path, name: str) -> tuple[int, int]:
    """(address, file offset) of section ``name`` from ``readelf -SW``."""
    text = subprocess.run(["readelf", "-SW", str(path)], capture_output=True, text=True).stdout
    m = re.search(rf"\s{re.escape(name)}\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)", text)
    assert m, text
    return int(m.group(1), 16), int(m.group(2), 16)


@pytest.mark.requires("binutils")
def test_sites_are_placed_at_file_offsets(binary: Path) -> None:
    (site,) = usdt.find_sites(str(binary), "bpfkit_test", "args")
    text_addr, text_off = _section(binary, ".text")
    assert site.offset == site.address - text_addr + text_off
    assert site.semaphore_offset == 0
    assert site.executable == _is_exec(binary)
    (tick,) = usdt.find_sites(str(binary), "bpfkit_test", "tick")
    probes_addr, probes_off = _section(binary, ".probes")
    assert tick.note.semaphore == probes_addr
    assert tick.semaphore_offset == probes_off


def _is_exec(path: Path) -> bool:
    text = subprocess.run(["readelf", "-h", str(path)], capture_output=True, text=True).stdout
    return "EXEC (Executable file)" in text


def test_prelink_moves_the_site_by_the_base_difference(binary: Path, tmp_path: Path) -> None:
    """A note whose stored base differs from .stapsdt.base's address (a prelinked binary)
    is moved by the difference: lower both pc and base by 0x40 and the site stays."""
    (before,) = usdt.find_sites(str(binary), "bpfkit_test", "constant")
    data = bytearray(binary.read_bytes())
    old = struct.pack("<QQ", before.note.pc, before.note.base)
    assert data.count(old) == 1
    at = data.index(old)
    data[at : at + 16] = struct.pack("<QQ", before.note.pc - 0x40, before.note.base - 0x40)
    moved = tmp_path / "prelinked"
    moved.write_bytes(bytes(data))
    (after,) = usdt.find_sites(str(moved), "bpfkit_test", "constant")
    assert after.note.pc == before.note.pc - 0x40
    assert (after.address, after.offset) == (before.address, before.offset)


def test_unknown_probe_lists_the_probes(binary: Path) -> None:
    with pytest.raises(
        ObjectError,
        match=r"no USDT probe bpfkit_test:nope; its probes: "
        r"bpfkit_test:args, bpfkit_test:constant, bpfkit_test:mem, bpfkit_test:tick",
    ):
        usdt.find_sites(str(binary), "bpfkit_test", "nope")


def test_binary_without_notes_says_so(tmp_path: Path) -> None:
    with pytest.raises(ObjectError, match="no .note.stapsdt section"):
        usdt.find_sites("/bin/true", "p", "n")
    bad = tmp_path / "bad"
    bad.write_bytes(b"not an elf")
    with pytest.raises(ObjectError, match="not an ELF binary"):
        usdt.read_notes(str(bad))


def test_every_note_argument_of_the_binaries_parses(binary: Path) -> None:
    for note in usdt.read_notes(str(binary)):
        args = parse_args(note.args)
        assert " ".join(a.text for a in args) == note.args
        for a in args:
            assert a.kind in (ARG_CONST, ARG_REG, ARG_REG_DEREF)
            assert a.bitshift == 64 - 8 * a.size


@pytest.mark.parametrize(
    ("text", "kind", "val_off", "reg", "size", "signed"),
    [
        ("-4@%eax", ARG_REG, 0, "ax", 4, True),
        ("8@%rdx", ARG_REG, 0, "dx", 8, False),
        ("-2@%dx", ARG_REG, 0, "dx", 2, True),
        ("1@%cl", ARG_REG, 0, "cx", 1, False),
        ("1@%sil", ARG_REG, 0, "si", 1, False),
        ("-8@%r12", ARG_REG, 0, "r12", 8, True),
        ("4@%r9d", ARG_REG, 0, "r9", 4, False),
        ("8@-16(%rbp)", ARG_REG_DEREF, -16, "bp", 8, False),
        ("-4@-1204(%rbp)", ARG_REG_DEREF, -1204, "bp", 4, True),
        ("8@(%rsp)", ARG_REG_DEREF, 0, "sp", 8, False),
        ("2@0x10(%r15)", ARG_REG_DEREF, 16, "r15", 2, False),
        ("-4@$5", ARG_CONST, 5, None, 4, True),
        ("8@$-1", ARG_CONST, -1, None, 8, False),
    ],
)
def test_argument_forms(
    text: str, kind: int, val_off: int, reg: str | None, size: int, signed: bool
) -> None:
    (a,) = parse_args(text)
    assert (a.kind, a.val_off, a.size, a.signed) == (kind, val_off, size, signed)
    assert a.reg_off == (PT_REGS[reg] if reg else 0)


def test_base_index_scale() -> None:
    (a,) = parse_args("-8@-8(%rbp,%rax,8)")
    assert (a.kind, a.val_off, a.reg_off, a.index_reg_off, a.scale) == (
        ARG_SIB,
        -8,
        PT_REGS["bp"],
        PT_REGS["ax"],
        8,
    )
    with pytest.raises(ObjectError, match="cannot read"):
        encode_spec((a,), 0, LIBBPF_1_1, "probe")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3@%eax", "size 3 is not 1, 2, 4 or 8"),
        ("4@%xmm0", "unknown x86-64 register %xmm0"),
        ("4@eax", "is not SIZE@%REG"),
        ("-4@%eax junk", "argument #1 'junk'"),
        (" ".join(["8@%rax"] * 13), "more than 12 arguments"),
    ],
)
def test_bad_arguments_say_which(text: str, message: str) -> None:
    with pytest.raises(ObjectError, match=re.escape(message)):
        parse_args(text, "probe p:n")


def test_spec_bytes_follow_libbpf_1_1() -> None:
    args = parse_args("-4@%edi 8@-16(%rbp) 1@$7")
    data = encode_spec(args, 0x1122, LIBBPF_1_1, "probe")
    assert len(data) == 208
    # {u64 val_off; u32 arg_type; s16 reg_off; u8 arg_signed; u8 arg_bitshift}
    assert struct.unpack_from("<QIhBB", data, 0) == (0, ARG_REG, PT_REGS["di"], 1, 32)
    assert struct.unpack_from("<qIhBB", data, 16) == (-16, ARG_REG_DEREF, PT_REGS["bp"], 0, 0)
    assert struct.unpack_from("<QIhBB", data, 32) == (7, ARG_CONST, 0, 0, 56)
    assert struct.unpack_from("<Qh", data, 192) == (0x1122, 3)


@pytest.mark.requires("clang19", "libbpf-headers")
def test_layout_read_from_the_objects_btf(tmp_path: Path) -> None:
    """The layout bpfkit reads from a usdt.bpf.h program's BTF is libbpf 1.1's (Debian 12)."""
    from bpfkit.obj.reader import read_object

    obj = clang_bpf(USDT_DATA / "usdt_args.bpf.c", tmp_path / "u.o", "-D__TARGET_ARCH_x86")
    spec = read_object(str(obj))
    (specs,) = [m for m in spec.maps if m.name == usdt.SPECS_MAP]
    assert layout_from_btf(spec.parsed_btf(), specs.value_type_id) == LIBBPF_1_1
