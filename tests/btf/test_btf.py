"""bpfkit.btf: parsing checked against bpftool's dump, the C source and the ELF symbols.

Oracles: ``bpftool btf dump file X`` (raw text, compared line for line for C objects of
both byte orders and for the running kernel's vmlinux), the C declarations in
tests/data/obj_reader/types.c (format), ELF symbol sizes (size_of) and the source lines
(.BTF.ext line_info).
"""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfkit.btf import Btf, Kind, decode_value, parse_btf, parse_btf_ext
from bpfkit.btf import types as T
from bpfkit.btf.cdecl import define
from bpfkit.btf.dump import dump_raw
from bpfkit.errors import BtfError
from bpfkit.obj import read_object
from helpers import TESTS, clang_bpf

DATA = TESTS / "data" / "obj_reader"
VMLINUX = "/sys/kernel/btf/vmlinux"


@pytest.fixture(scope="module")
def objs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("btf")
    return {
        "corpus": clang_bpf(DATA / "corpus.c", d / "corpus.o"),
        "corpus_eb": clang_bpf(DATA / "corpus.c", d / "corpus_eb.o", target="bpfeb"),
        "types": clang_bpf(DATA / "types.c", d / "types.o"),
        "types_eb": clang_bpf(DATA / "types.c", d / "types_eb.o", target="bpfeb"),
    }


def _bpftool_dump(path: str | Path) -> str:
    return subprocess.run(
        ["bpftool", "btf", "dump", "file", str(path)], check=True, capture_output=True, text=True
    ).stdout


# --- against bpftool ----------------------------------------------------------------------


@pytest.mark.requires("clang19", "bpftool")
@pytest.mark.parametrize("name", ["corpus", "corpus_eb", "types", "types_eb"])
def test_object_btf_matches_bpftool(objs: dict[str, Path], name: str) -> None:
    obj = read_object(objs[name])
    assert obj.btf is not None
    btf = parse_btf(obj.btf, big_endian=obj.big_endian)
    assert btf.big_endian == obj.big_endian
    assert dump_raw(btf) == _bpftool_dump(objs[name])


@pytest.fixture
def vmlinux(vmlinux_btf: Btf) -> Btf:
    return vmlinux_btf


def test_vmlinux(vmlinux: Btf) -> None:
    assert len(vmlinux.types) > 10000
    task = vmlinux.find("task_struct", "struct")
    assert isinstance(task, T.Struct) and task.size > 1000
    pid = task.member("pid")
    assert pid is not None and vmlinux.format(pid.type) == "pid_t"
    assert vmlinux.size_of(pid.type) == 4
    comm = task.member("comm")
    assert comm is not None and vmlinux.format(comm.type, "comm") == "char comm[16]"
    funcs = vmlinux.find("bpf_func_id", Kind.ENUM)
    assert isinstance(funcs, T.Enum)
    ids = funcs.as_dict()
    # uapi/linux/bpf.h: stable helper numbers.
    assert ids["BPF_FUNC_map_lookup_elem"] == 1
    assert ids["BPF_FUNC_trace_printk"] == 6
    assert ids["BPF_FUNC_loop"] == 181
    assert vmlinux.find("bpf_prog_type", "enum").value("BPF_PROG_TYPE_XDP") == 6  # type: ignore[attr-defined]
    with pytest.raises(BtfError, match="no struct type named 'no_such_thing'"):
        vmlinux.find("no_such_thing", "struct")


@pytest.mark.requires("bpftool")
def test_vmlinux_matches_bpftool(vmlinux: Btf) -> None:
    ours = dump_raw(vmlinux).splitlines()
    theirs = _bpftool_dump(VMLINUX).splitlines()
    assert len(ours) == len(theirs)
    diffs = [(a, b) for a, b in zip(ours, theirs, strict=True) if a != b]
    assert diffs[:5] == []


# --- format and size_of against the C source and the ELF symbols ----------------------------


@pytest.mark.requires("clang19")
@pytest.mark.parametrize("name", ["types", "types_eb"])
def test_format_reproduces_declarations(objs: dict[str, Path], name: str) -> None:
    obj = read_object(objs[name])
    assert obj.btf is not None
    btf = parse_btf(obj.btf)
    names = {}
    for line in (DATA / "types.c").read_text().splitlines():
        m = re.match(r"^(?!typedef)([^=/]*?)\s*=\s*.*;$", line)
        if m and "__attribute__" not in m.group(1):
            ident = re.findall(r"[A-Za-z_]\w*", m.group(1).split("[")[0].split(")(")[0])[-1]
            names[ident] = m.group(1)
    assert len(names) >= 18
    syms = {s.name: s for s in obj.symbols}
    for var in btf.types:
        if isinstance(var, T.Var) and var.name in names:
            assert btf.format(var.type, var.name) == names[var.name]
            # size_of agrees with the compiler's symbol sizes.
            assert btf.size_of(var.type) == syms[var.name].size, var.name
    tagged = btf.find("tagged_v", Kind.VAR)
    tags = [t for t in btf.types if isinstance(t, T.DeclTag) and t.type == tagged.id]
    assert [(t.name, t.component_idx) for t in tags] == [("tagged", -1)]
    user = btf.find("user_ptr", Kind.VAR)
    assert isinstance(user, T.Var)
    ptr = btf.type(user.type)
    assert isinstance(ptr, T.Ptr)
    tag = btf.type(ptr.type)
    assert isinstance(tag, T.TypeTag) and tag.name == "user"
    assert btf.format(user.type) == "int *"


@pytest.mark.requires("clang19")
def test_types_details(objs: dict[str, Path]) -> None:
    obj = read_object(objs["types"])
    assert obj.btf is not None
    btf = parse_btf(obj.btf)
    flags = btf.find("flags", "struct")
    assert isinstance(flags, T.Struct)
    assert [(m.name, m.bit_offset, m.bitfield_size) for m in flags.members] == [
        ("a", 0, 3),
        ("b", 3, 5),
        ("rest", 64, 0),
        ("nested", 128, 0),
    ]
    nested = flags.member("nested")
    assert nested is not None and btf.format(nested.type) == "struct (anon)"
    color = btf.find("color", "enum")
    assert isinstance(color, T.Enum) and color.signed and color.as_dict() == {"RED": -1, "GREEN": 1}
    big = btf.find("big", "enum")
    assert isinstance(big, T.Enum64) and big.kind is Kind.ENUM64 and big.value("HUGE") == 1 << 32
    node = btf.find("node")
    assert isinstance(node, T.Fwd) and not node.union
    with pytest.raises(BtfError, match="has no size"):
        btf.size_of(node.id)
    handler = btf.find("handler_t", "typedef")
    proto = btf.resolve(btf.resolve(handler.id).type)  # type: ignore[attr-defined]
    assert isinstance(proto, T.FuncProto) and not proto.variadic
    assert btf.format(proto.id) == "int (int, void *)"
    counter = btf.find("counter", Kind.VAR)
    assert isinstance(counter, T.Var)
    resolved = btf.resolve(counter.type)
    assert isinstance(resolved, T.Int) and resolved.name == "unsigned int" and not resolved.signed
    kinds = {t.kind for t in btf.types}
    assert {Kind.FLOAT, Kind.DATASEC, Kind.DECL_TAG, Kind.TYPE_TAG, Kind.UNION} <= kinds


# --- .BTF.ext ---------------------------------------------------------------------------------


@pytest.mark.requires("clang19")
@pytest.mark.parametrize("name", ["corpus", "corpus_eb"])
def test_btf_ext(objs: dict[str, Path], name: str) -> None:
    obj = read_object(objs[name])
    assert obj.btf is not None and obj.btf_ext is not None
    btf = parse_btf(obj.btf)
    ext = parse_btf_ext(obj.btf_ext, big_endian=obj.big_endian, btf=btf)
    assert ext.big_endian == obj.big_endian
    # func_info: one FUNC per program, at its offset, named like it.
    for p in obj.programs:
        infos = {fi.insn_off: fi for fi in ext.func_info[p.section]}
        fi = infos[p.offset]
        assert btf.type(fi.type_id).name == p.name
    assert sum(len(v) for v in ext.func_info.values()) == len(obj.programs)
    # line_info: the recorded text is the source line at that number.
    source = (DATA / "corpus.c").read_text().splitlines()
    count = 0
    for sec, lines in ext.line_info.items():
        assert any(s.name == sec for s in obj.sections)
        for li in lines:
            assert li.file_name.endswith("corpus.c")
            assert source[li.line - 1].strip() == li.source.strip()
            count += 1
    assert count > 10
    # Without .BTF, sections are keyed by string offset.
    bare = parse_btf_ext(obj.btf_ext)
    assert all(k.startswith("#") for k in bare.func_info)


@pytest.mark.requires("clang19")
def test_core_relos(tmp_path: Path) -> None:
    src = tmp_path / "core.c"
    src.write_text(
        "struct task { int pid; int tgid; } __attribute__((preserve_access_index));\n"
        "int f(struct task *t) { return t->tgid + __builtin_preserve_field_info(t->pid, 2); }\n"
    )
    obj = read_object(clang_bpf(src, tmp_path / "core.o"))
    assert obj.btf is not None and obj.btf_ext is not None
    btf = parse_btf(obj.btf)
    ext = parse_btf_ext(obj.btf_ext, btf=btf)
    relos = ext.core_relos[".text"]
    assert {(r.access, r.kind) for r in relos} == {("0:1", 0), ("0:0", 2)}
    assert all(btf.type(r.type_id).name == "task" for r in relos)


# --- synthetic blobs: split BTF and malformed input ----------------------------------------


def _blob(types: bytes, strings: bytes, big: bool = False) -> bytes:
    e = ">" if big else "<"
    return struct.pack(
        e + "HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings)
    ) + (types + strings)


def _t(name_off: int, kind: int, vlen: int, size_or_type: int, big: bool = False) -> bytes:
    return struct.pack((">" if big else "<") + "III", name_off, (kind << 24) | vlen, size_or_type)


INT_U32 = _t(1, Kind.INT, 0, 4) + struct.pack("<I", 32)  # "u32"
STRS = b"\0u32\0p\0"


@pytest.mark.parametrize("big", [False, True])
def test_synthetic_both_orders(big: bool) -> None:
    e = ">" if big else "<"
    types = _t(1, Kind.INT, 0, 4, big) + struct.pack(e + "I", 32) + _t(0, Kind.PTR, 0, 1, big)
    btf = parse_btf(_blob(types, STRS, big))
    assert btf.big_endian is big
    assert btf.format(2) == "u32 *" and btf.size_of(1) == 4


def test_split_btf() -> None:
    base = parse_btf(_blob(INT_U32, STRS))
    # Split: type 2 = typedef "t" (string offset continues after the base's 7 bytes).
    split = parse_btf(_blob(_t(7 + 1, Kind.TYPEDEF, 0, 1), b"\0t\0"), base=base)
    assert split.first_id == 2 and len(split.types) == 3
    assert split.format(2) == "t" and split.resolve(2).name == "u32" and split.size_of(2) == 4
    assert dump_raw(split) == "[2] TYPEDEF 't' type_id=1\n"


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "too short"),
        (b"\x12\x34" + bytes(30), "bad magic"),
        (struct.pack("<HBBIIIII", 0xEB9F, 2, 0, 24, 0, 0, 0, 1) + b"\0", "version 2"),
        (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 100, 0, 1) + b"\0", "type section"),
        (_blob(INT_U32[:14], STRS), "needs 4 more bytes"),
        (_blob(_t(1, 25, 0, 0), STRS), "unknown kind 25"),
        (_blob(_t(100, Kind.INT, 0, 4) + bytes(4), STRS), "string offset 100"),
        (_blob(_t(0, Kind.PTR, 0, 9), STRS), "refers to type 9"),
        (_blob(INT_U32, b"\0u32"), "NUL"),
        (_blob(_t(0, 0, 0, 0), STRS), "kind 0"),
    ],
)
def test_malformed(blob: bytes, message: str) -> None:
    with pytest.raises(BtfError, match=message):
        parse_btf(blob)


def test_modifier_loop() -> None:
    types = _t(1, Kind.TYPEDEF, 0, 2) + _t(0, Kind.CONST, 0, 1) + _t(0, Kind.PTR, 0, 3)
    btf = parse_btf(_blob(types, STRS))
    with pytest.raises(BtfError, match="loop"):
        btf.resolve(1)
    with pytest.raises(BtfError, match="loop"):
        btf.size_of(1)
    assert btf.format(2) == "const u32"
    assert "..." in btf.format(3)  # a pointer to itself: formatting stops


def test_btf_ext_malformed() -> None:
    with pytest.raises(BtfError, match="too short"):
        parse_btf_ext(b"\x9f\xeb")
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 100, 0, 0)
    with pytest.raises(BtfError, match="func_info"):
        parse_btf_ext(hdr + bytes(8))
    rec = struct.pack("<IIII", 8, 0, 5, 0)  # 5 records claimed, none present
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(rec), 0, 0)
    with pytest.raises(BtfError, match="claims 5 records"):
        parse_btf_ext(hdr + rec)


@pytest.mark.requires("clang19")
def test_mutated_btf_only_btf_error(objs: dict[str, Path]) -> None:
    obj = read_object(objs["corpus"])
    assert obj.btf is not None and obj.btf_ext is not None
    seed, ext_seed = obj.btf, obj.btf_ext

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6))
    def run(edits: list[tuple[int, int]]) -> None:
        data, ext = bytearray(seed), bytearray(ext_seed)
        for pos, val in edits:
            target = data if pos % 3 else ext  # two thirds of the edits in .BTF
            target[pos % len(target)] = val
        good = parse_btf(seed)
        try:
            btf = parse_btf(bytes(data))
            for t in btf.types:
                btf.format(t.id)
                try:
                    decode_value(btf, t.id, bytes(512))
                except BtfError:
                    pass
        except BtfError:
            pass
        try:
            parse_btf_ext(bytes(ext), btf=good)
        except BtfError:
            pass

    run()


def test_branching_cycles_stay_fast() -> None:
    # 1: int (*)(2, 2, 2, 2) where 2 is a pointer back to 1: exponential unless bounded.
    proto = _t(0, Kind.FUNC_PROTO, 4, 2) + struct.pack("<8I", 0, 2, 0, 2, 0, 2, 0, 2)
    btf = parse_btf(_blob(proto + _t(0, Kind.PTR, 0, 1), STRS))
    text = btf.format(1)
    assert "..." in text and len(text) < 10**6


# --- C definitions against `bpftool btf dump file X format c` ------------------------------


def _c_blocks(text: str) -> dict[str, str]:
    """Top-level definitions of a bpftool C dump, by their first line."""
    out: dict[str, str] = {}
    for block in text.split("\n\n"):
        block = block.strip()
        if block.endswith(";") and re.match(r"^(struct|union|enum|typedef)\b", block):
            out.setdefault(block.splitlines()[0], block)
    return out


def _compare_definitions(btf: Btf, c_text: str) -> tuple[int, int]:
    theirs = _c_blocks(c_text)
    same = differ = 0
    for t in btf.types:
        if not t.name or t.kind not in (
            Kind.STRUCT,
            Kind.UNION,
            Kind.ENUM,
            Kind.ENUM64,
            Kind.TYPEDEF,
        ):
            continue
        ours = define(btf, t.id)
        ref = theirs.get(ours.splitlines()[0])
        if ref is None:
            continue
        if ref == ours:
            same += 1
        else:
            differ += 1
    return same, differ


@pytest.mark.requires("clang19", "bpftool")
@pytest.mark.parametrize("name", ["corpus", "types", "types_eb"])
def test_definitions_match_bpftool(objs: dict[str, Path], name: str) -> None:
    obj = read_object(objs[name])
    assert obj.btf is not None
    c_text = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(objs[name]), "format", "c"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    same, differ = _compare_definitions(parse_btf(obj.btf), c_text)
    assert same >= 3 and differ == 0


@pytest.mark.requires("bpftool")
def test_vmlinux_definitions_mostly_match_bpftool(vmlinux: Btf, vmlinux_h: Path) -> None:
    """Definitions follow bpftool's rules (bpfkit.btf.cdump's), padding members and
    ``__attribute__((packed))`` included; what differs is keyed wrongly here (two
    ``typedef struct {`` blocks) or renamed ``___2`` in a whole header."""
    c_text = (vmlinux_h / "vmlinux.h").read_text()
    same, differ = _compare_definitions(vmlinux, c_text)
    assert same > 10000 and same / (same + differ) > 0.97
    theirs = _c_blocks(c_text)
    unnatural = [
        (head, block)
        for head, block in theirs.items()
        if head.startswith(("struct ", "union "))
        and "___" not in head
        and (
            "__attribute__((packed))" in block
            or re.search(r"\n\t(long|int|short|char): \d+;", block)
        )
    ]
    assert len(unnatural) > 50
    for head, block in unnatural:
        word, name = head.split()[:2]
        assert any(define(vmlinux, t.id) == block for t in vmlinux.find_all(name, word)), block
    task = vmlinux.find("list_head", "struct")
    assert define(vmlinux, task.id) == (
        "struct list_head {\n\tstruct list_head *next;\n\tstruct list_head *prev;\n};"
    )
