"""bpfkit.obj.read_object on the seed object, C objects built here, and assembler output.

External oracles: llvm-objdump-19 (function symbols), llvm-readobj-19 (relocations) and
the section bytes themselves (instructions re-encode to exactly what the file holds).
"""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import pytest

from bpfkit.btf import parse_btf
from bpfkit.errors import ObjectError
from bpfkit.isa.insn import encode_all
from bpfkit.obj import read_object
from bpfkit.obj.spec import RelocKind
from helpers import ROOT, TESTS, clang_bpf, readobj_relocations

ROOT = ROOT
HELLO = ROOT / "examples" / "hello" / "hello.o"
DATA = TESTS / "data" / "obj_reader"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("objc")
    return {
        "el": clang_bpf(DATA / "corpus.c", d / "corpus.o"),
        "eb": clang_bpf(DATA / "corpus.c", d / "corpus_eb.o", target="bpfeb"),
    }


# --- the seed -------------------------------------------------------------------------------


def test_hello_program() -> None:
    obj = read_object(HELLO)
    assert obj.path == str(HELLO)
    assert not obj.big_endian
    assert [p.name for p in obj.programs] == ["kprobe__sys_clone"]
    prog = obj.program("kprobe__sys_clone")
    assert prog.section == "kprobe/SyS_clone"
    assert not prog.is_subprog
    # 12 instructions in 14 slots: two lddw of the message bytes.
    assert len(prog.insns) == 12
    assert sum(i.width for i in prog.insns) == 14
    assert prog.size == 112
    assert prog.insns[0].opcode == 0x18
    assert prog.insns[0].imm64 == 0x0A74737572206D6F
    assert prog.insns[-3].opcode == 0x85 and prog.insns[-3].imm == 6  # bpf_trace_printk
    assert prog.insns[-1].opcode == 0x95
    assert prog.relocations == ()
    assert encode_all(list(prog.insns)) == obj.section("kprobe/SyS_clone").data


def test_hello_metadata() -> None:
    obj = read_object(HELLO)
    assert obj.license == "GPL"
    assert obj.version == 0xFFFFFFFE
    assert obj.maps == () and obj.data == ()
    assert obj.btf is None and obj.btf_ext is None
    names = [s.name for s in obj.sections]
    assert names[:4] == ["", ".strtab", ".text", "kprobe/SyS_clone"]
    assert obj.section("kprobe/SyS_clone").executable
    sym = {s.name: s for s in obj.symbols}
    assert sym["kprobe__sys_clone"].type == "STT_FUNC"
    assert sym["kprobe__sys_clone"].size == 112
    assert sym["_license"].section == "license"
    # .eh_frame's one relocation is data, not an instruction fix-up.
    (rel,) = obj.relocations[".eh_frame"]
    assert rel.kind is RelocKind.OTHER and rel.symbol == "kprobe/SyS_clone"


def test_bytes_source_and_name() -> None:
    data = HELLO.read_bytes()
    obj = read_object(data)
    assert obj.path == "<bytes>"
    assert read_object(data, name="x.o").path == "x.o"
    assert obj.programs == read_object(HELLO).programs


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ObjectError, match="nope.o: cannot read"):
        read_object(tmp_path / "nope.o")


def test_unknown_program_names_the_choices() -> None:
    with pytest.raises(ObjectError, match="kprobe__sys_clone"):
        read_object(HELLO).program("nope")


# --- C objects --------------------------------------------------------------------------------


def _objdump_functions(path: Path) -> set[tuple[str, int, str]]:
    """(section, offset, name) of every symbol line llvm-objdump prints."""
    out = subprocess.run(
        ["llvm-objdump-19", "-d", str(path)], check=True, capture_output=True, text=True
    ).stdout
    found, section = set(), ""
    for line in out.splitlines():
        if m := re.match(r"Disassembly of section (.*):$", line):
            section = m.group(1)
        elif m := re.match(r"([0-9a-f]{16}) <(.*)>:$", line):
            found.add((section, int(m.group(1), 16), m.group(2)))
    return found


@pytest.mark.requires("clang19", "llvm19")
@pytest.mark.parametrize("endian", ["el", "eb"])
def test_programs_match_objdump(corpus: dict[str, Path], endian: str) -> None:
    path = corpus[endian]
    obj = read_object(path)
    assert obj.big_endian == (endian == "eb")
    ours = {(p.section, p.offset, p.name) for p in obj.programs}
    assert ours == _objdump_functions(path)
    for p in obj.programs:
        sec = obj.section(p.section)
        assert encode_all(list(p.insns), obj.big_endian) == sec.data[p.offset : p.offset + p.size]
        assert p.is_subprog == (p.section == ".text")


@pytest.mark.requires("clang19", "llvm19")
@pytest.mark.parametrize("endian", ["el", "eb"])
def test_relocations_match_readobj(corpus: dict[str, Path], endian: str) -> None:
    path = corpus[endian]
    obj = read_object(path)
    expected = readobj_relocations(path)
    assert expected
    for target, rels in expected.items():
        if target.startswith(".debug_"):
            assert target not in obj.relocations  # DWARF relocations are not read
            continue
        ours = [(r.offset, r.type_name, r.symbol) for r in obj.relocations[target]]
        assert sorted(ours) == sorted(rels), target


@pytest.mark.requires("clang19")
@pytest.mark.parametrize("endian", ["el", "eb"])
def test_relocation_kinds(corpus: dict[str, Path], endian: str) -> None:
    obj = read_object(corpus[endian])
    count = obj.program("count")
    kinds = [(r.symbol, r.kind) for r in count.relocations]
    assert kinds == [
        ("counts", RelocKind.MAP),
        ("btf_hash", RelocKind.MAP),
        (".text", RelocKind.FUNC_ADDR),  # the static callback given to bpf_loop
        ("LINUX_KERNEL_VERSION", RelocKind.KCONFIG),  # extern in BTF's .kconfig datasec
        (".rodata", RelocKind.GLOBAL_DATA),  # the bpf_printk format string
        ("msg", RelocKind.GLOBAL_DATA),
        (".text", RelocKind.CALL),  # static sub-program: section symbol + imm
        ("gcount", RelocKind.GLOBAL_DATA),
        ("helper_global", RelocKind.CALL),
    ]
    # Offsets are relative to the program and land on the instruction they patch.
    sec = obj.section(count.section)
    for r in count.relocations:
        assert sec.data[count.offset + r.offset] in (0x18, 0x85)
    xdp_b = obj.program("xdp_b")
    assert xdp_b.offset == 16
    (call,) = xdp_b.relocations
    assert call.kind is RelocKind.CALL and call.offset == 8  # section offset 24, program start 16
    # Relocations of data sections are never instruction kinds.
    assert all(r.kind is RelocKind.OTHER for r in obj.relocations[".BTF"])


@pytest.mark.requires("clang19")
@pytest.mark.parametrize("endian", ["el", "eb"])
def test_maps_data_license(corpus: dict[str, Path], endian: str) -> None:
    obj = read_object(corpus[endian])
    assert obj.license == "Dual BSD/GPL"
    assert obj.version is None
    legacy = {m.name: m for m in obj.maps if m.legacy}
    assert set(legacy) == {"counts", "arr"}
    c = legacy["counts"]
    assert (c.type, c.key_size, c.value_size, c.max_entries, c.flags) == (1, 4, 8, 1024, 0)
    a = legacy["arr"]
    assert (a.section, a.offset, a.type, a.max_entries, a.flags) == ("maps", 20, 2, 16, 1)
    assert len(a.raw) == 20 and a.inner_map_idx is None
    btf_maps = {m.name: m for m in obj.maps if not m.legacy}
    assert sorted(btf_maps) == ["btf_hash", "inner1", "outer"]
    assert all(m.section == ".maps" for m in btf_maps.values())
    h = btf_maps["btf_hash"]
    assert (h.type, h.key_size, h.value_size, h.max_entries, h.flags) == (1, 4, 8, 128, 1)
    assert obj.btf is not None
    btf = parse_btf(obj.btf)
    assert h.key_type_id is not None and btf.format(h.key_type_id) == "__u32"
    assert h.value_type_id is not None and btf.format(h.value_type_id) == "__u64"
    o = btf_maps["outer"]
    assert (o.type, o.key_size, o.value_size, o.max_entries) == (12, 4, 4, 2)
    assert o.inner is not None
    assert (o.inner.name, o.inner.type, o.inner.max_entries) == ("outer.inner", 2, 1)
    assert o.init_values == ((0, "inner1"),)
    assert [m.offset for m in obj.maps if not m.legacy] == [0, 32, 64]
    data = {d.name: d for d in obj.data}
    assert set(data) == {".data", ".rodata", ".bss"}
    gcount = (1).to_bytes(4, "big" if obj.big_endian else "little")
    assert data[".data"].data == gcount + b"hi\0"
    assert not data[".data"].readonly and data[".rodata"].readonly
    assert data[".bss"].data == bytes(8)
    assert {s.name for s in data[".data"].symbols} == {"gcount", "msg"}
    assert obj.btf is not None and obj.btf[:2] in (b"\x9f\xeb", b"\xeb\x9f")
    assert obj.btf_ext is not None


@pytest.mark.requires("clang19")
def test_big_endian_decodes_same_instructions(corpus: dict[str, Path]) -> None:
    el, eb = read_object(corpus["el"]), read_object(corpus["eb"])
    for p, q in zip(el.programs, eb.programs, strict=True):
        assert p.name == q.name
        assert [i.opcode for i in p.insns] == [i.opcode for i in q.insns]
        assert [(i.dst, i.src, i.off) for i in p.insns] == [(i.dst, i.src, i.off) for i in q.insns]


# --- assembler output: no function symbols ----------------------------------------------------


@pytest.mark.requires("llvm19")
def test_assembly_labels_split_programs(tmp_path: Path) -> None:
    out = tmp_path / "prog.o"
    subprocess.run(
        ["llvm-mc-19", "-triple", "bpfel", "-filetype=obj", str(DATA / "prog.s"), "-o", str(out)],
        check=True,
    )
    obj = read_object(out)
    progs = [(p.name, p.section, p.offset, len(p.insns)) for p in obj.programs]
    assert progs == [
        ("first", ".text", 0, 2),
        ("second", ".text", 16, 3),
        ("socket", "socket", 0, 2),
    ]
    assert obj.program("second").insns[0].imm64 == 2


# --- legacy map records of other sizes --------------------------------------------------------

LEGACY_28 = r"""
struct bpf_load_map_def {  /* samples/bpf bpf_load.h: bpf_map_def + inner_map_idx, numa_node */
    unsigned int type, key_size, value_size, max_entries, map_flags, inner_map_idx, numa_node;
};
struct bpf_load_map_def inner __attribute__((section("maps"), used)) = { 2, 4, 4, 1, 0, 0, 0 };
struct bpf_load_map_def outer __attribute__((section("maps"), used)) = { 12, 4, 4, 8, 0, 0, 3 };
unsigned int tc_map[5] __attribute__((section("maps/tc"), used)) = { 1, 8, 16, 32, 0 };
__attribute__((section("socket"), used)) int prog(void *ctx) { return 0; }
char _license[] __attribute__((section("license"), used)) = "GPL";
unsigned int _version __attribute__((section("version"), used)) = 0x050a00;
"""


@pytest.mark.requires("clang19")
@pytest.mark.parametrize("target", ["bpf", "bpfeb"])
def test_legacy_records_with_inner_map_idx(tmp_path: Path, target: str) -> None:
    src = tmp_path / "legacy.c"
    src.write_text(LEGACY_28)
    obj = read_object(clang_bpf(src, tmp_path / "legacy.o", target=target))
    maps = {m.name: m for m in obj.maps}
    assert list(maps) == ["inner", "outer", "tc_map"]
    outer = maps["outer"]
    assert (outer.offset, outer.type, outer.max_entries, outer.inner_map_idx, outer.numa_node) == (
        28,
        12,
        8,
        0,
        3,
    )
    assert len(outer.raw) == 28 and outer.legacy
    tc = maps["tc_map"]
    assert (tc.section, tc.type, tc.key_size, tc.value_size, tc.max_entries) == (
        "maps/tc",
        1,
        8,
        16,
        32,
    )
    assert tc.inner_map_idx is None and len(tc.raw) == 20
    assert obj.version == 0x050A00 and obj.license == "GPL"


@pytest.mark.requires("clang19")
def test_legacy_maps_size_mismatch(tmp_path: Path) -> None:
    src = tmp_path / "odd.c"
    # Two symbols in 25 bytes: no record size divides the section.
    src.write_text(
        'char a[12] __attribute__((section("maps"), used));\n'
        'char b[13] __attribute__((section("maps"), used));\n'
    )
    with pytest.raises(ObjectError, match="map definition size in section 'maps'"):
        read_object(clang_bpf(src, tmp_path / "odd.o"))


@pytest.mark.requires("llvm19")
def test_sizeless_functions_keep_their_local_labels(tmp_path: Path) -> None:
    out = tmp_path / "funcs.o"
    subprocess.run(
        ["llvm-mc-19", "-triple", "bpfel", "-filetype=obj", str(DATA / "funcs.s"), "-o", str(out)],
        check=True,
    )
    obj = read_object(out)
    assert any(s.name == "loop" and s.bind == "STB_LOCAL" for s in obj.symbols)
    assert [(p.name, p.offset, len(p.insns)) for p in obj.programs] == [("f", 0, 4), ("g", 32, 2)]


@pytest.mark.requires("clang19")
def test_rela_sections(corpus: dict[str, Path]) -> None:
    """Re-encode .rel.text as SHT_RELA with an addend: same relocations, addend kept."""
    data = bytearray(corpus["el"].read_bytes())
    obj = read_object(bytes(data))
    (shoff,) = struct.unpack_from("<Q", data, 40)
    rel = next(s for s in obj.sections if s.name == ".rel.text")
    entries = [struct.unpack_from("<QQ", rel.data, i) for i in range(0, rel.size, 16)]
    table = b"".join(struct.pack("<QQq", off, info, -8) for off, info in entries)
    data += bytes(-len(data) % 8)
    new_off = len(data)
    data += table
    hdr = shoff + 64 * rel.index
    struct.pack_into("<I", data, hdr + 4, 4)  # sh_type = SHT_RELA
    struct.pack_into("<QQ", data, hdr + 24, new_off, len(table))  # sh_offset, sh_size
    struct.pack_into("<Q", data, hdr + 56, 24)  # sh_entsize
    rela = read_object(bytes(data))
    assert rela.section(".rel.text").type == "SHT_RELA"
    before, after = obj.relocations[".text"], rela.relocations[".text"]
    assert [(r.offset, r.symbol, r.kind) for r in after] == [
        (r.offset, r.symbol, r.kind) for r in before
    ]
    assert {r.addend for r in after} == {-8} and {r.addend for r in before} == {0}
