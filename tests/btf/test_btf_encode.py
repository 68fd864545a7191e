"""bpfkit.btf.encode and bpfkit.btf.fixup: the one BTF writer, checked against what clang
and pahole wrote (parse then encode gives the same bytes) and against bpftool reading
what it writes; the loader's fix-ups and kind sanitizing, without a kernel."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import probes
from bpfkit.btf import Btf, Kind, parse_btf
from bpfkit.btf import types as T
from bpfkit.btf.dump import dump_raw
from bpfkit.btf.encode import BtfBuilder, encode_btf
from bpfkit.btf.fixup import NEWER_KINDS, fixup_types, sanitize_types
from bpfkit.errors import BtfError
from bpfkit.obj import read_object
from bpfkit.obj.prepare import btf_for_kernel
from helpers import TESTS, clang_bpf

DATA = TESTS / "data" / "obj_reader"
KINDS_C = TESTS / "kernel" / "load_progs" / "btf_kinds.c"
EXTERNS_C = TESTS / "kernel" / "load_progs" / "externs.c"
VMLINUX = "/sys/kernel/btf/vmlinux"


@pytest.fixture(scope="module")
@probes.needs("clang19")
def objs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("encode")
    return {
        "types": clang_bpf(DATA / "types.c", d / "types.o"),
        "types_eb": clang_bpf(DATA / "types.c", d / "types_eb.o", target="bpfeb"),
        "corpus": clang_bpf(DATA / "corpus.c", d / "corpus.o"),
        "kinds": clang_bpf(KINDS_C, d / "kinds.o"),
        "externs": clang_bpf(EXTERNS_C, d / "externs.o"),
    }


@pytest.mark.requires("clang19")
@pytest.mark.parametrize("name", ["types", "types_eb", "corpus", "kinds", "externs"])
def test_parse_then_encode_gives_clangs_bytes(objs: dict[str, Path], name: str) -> None:
    obj = read_object(objs[name])
    assert obj.btf is not None
    btf = parse_btf(obj.btf, big_endian=obj.big_endian)
    again = encode_btf(btf.types, big_endian=btf.big_endian, strings=btf.strings.data)
    assert again == obj.btf


def test_parse_then_encode_gives_the_kernels_bytes(vmlinux_btf: Btf) -> None:
    raw = Path(VMLINUX).read_bytes()
    btf = vmlinux_btf  # parse_btf(raw), parsed once per session
    assert encode_btf(btf.types, strings=btf.strings.data) == raw  # pahole's, type tags too


@pytest.mark.requires("bpftool")
def test_built_types_read_back_by_bpftool(tmp_path: Path) -> None:
    b = BtfBuilder()
    u32 = b.add(T.Int(0, "unsigned int", 4, 0, 0, 32))
    assert b.add(T.Int(0, "unsigned int", 4, 0, 0, 32)) == u32  # shared
    ptr = b.add(T.Ptr(0, "", u32))
    st = b.add(
        T.Struct(0, "s", 8, (T.Member("a", u32, 0), T.Member("bits", u32, 32, 3))), share=False
    )
    b.add(T.Enum64(0, "big", 8, (T.EnumValue("HUGE", 1 << 40), T.EnumValue("NEG", -1)), True))
    b.add(T.FuncProto(0, "", u32, (T.Param("p", ptr),)))
    b.add(T.DeclTag(0, "user", st, 1))
    path = tmp_path / "built.btf"
    path.write_bytes(b.encode())
    dump = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(path)], check=True, capture_output=True, text=True
    ).stdout
    assert dump == dump_raw(parse_btf(path.read_bytes()))
    assert "'bits' type_id=1 bits_offset=32 bitfield_size=3" in dump
    assert "'NEG' val=-1" in dump


def test_strings_kept_and_names_appended() -> None:
    strings = b"\0a\0file.c\0"
    blob = encode_btf([T.Int(1, "a", 4, 0, 0, 32), T.Typedef(2, "new", 1)], strings=strings)
    btf = parse_btf(blob)
    assert btf.string(3) == "file.c"  # .BTF.ext line_info offsets stay valid
    assert [t.name for t in btf.types[1:]] == ["a", "new"]
    assert btf.strings.data == strings + b"new\0"
    with pytest.raises(BtfError, match="NUL"):
        encode_btf([], strings=b"x")


@pytest.mark.requires("clang19")
def test_sanitizing_keeps_ids_and_replaces_every_newer_kind(objs: dict[str, Path]) -> None:
    obj = read_object(objs["kinds"])
    assert obj.btf is not None
    before = parse_btf(obj.btf)
    assert {t.kind for t in before.types} >= set(NEWER_KINDS)
    after = parse_btf(btf_for_kernel(obj, before, unsupported=NEWER_KINDS))
    assert not {t.kind for t in after.types} & set(NEWER_KINDS)
    assert len(after.types) == len(before.types)
    for old, new in zip(before.types, after.types, strict=True):
        assert (old.kind in NEWER_KINDS) == (old.kind != new.kind)
        if old.kind == Kind.FLOAT or old.kind == Kind.ENUM64:
            assert before.size_of(old.id) == after.size_of(new.id)
    # Only what the kernel lacks is replaced.
    only_float = parse_btf(btf_for_kernel(obj, before, unsupported={Kind.FLOAT}))
    assert {t.kind for t in only_float.types} & set(NEWER_KINDS) == set(NEWER_KINDS) - {Kind.FLOAT}


@pytest.mark.requires("clang19")
def test_fixup_lays_out_datasecs_and_drops_extern_linkage(objs: dict[str, Path]) -> None:
    obj = read_object(objs["externs"])
    assert obj.btf is not None
    btf = parse_btf(obj.btf)
    bss = btf.find(".bss", "datasec")
    assert isinstance(bss, T.Datasec) and bss.size == 0  # clang leaves it to the loader
    fixed = parse_btf(btf_for_kernel(obj, btf, layouts={".kconfig": (32, {"CONFIG_HZ": 8})}))
    sec = fixed.find(".bss", "datasec")
    assert isinstance(sec, T.Datasec)
    assert sec.size == obj.section(".bss").size == 32
    offsets = {fixed.type(v.type).name: v.offset for v in sec.vars}
    symbols = {s.name: s.value for s in obj.symbols if s.section == ".bss"}
    assert offsets == {n: symbols[n] for n in offsets} and len(offsets) == 4
    kconfig = fixed.find(".kconfig", "datasec")
    assert isinstance(kconfig, T.Datasec) and kconfig.size == 32
    assert {fixed.type(v.type).name: v.offset for v in kconfig.vars}["CONFIG_HZ"] == 8
    # kfunc declarations: no extern FUNC or VAR is left, no unnamed parameter of a kfunc.
    for t in fixed.types:
        if isinstance(t, (T.Func, T.Var)):
            assert t.linkage <= T.Linkage.GLOBAL, t
        if isinstance(t, T.Func) and t.name.startswith("bpf_iter_num"):
            proto = fixed.type(t.type)
            assert isinstance(proto, T.FuncProto) and all(p.name for p in proto.params)
    ksyms = fixed.find(".ksyms", "datasec")
    assert isinstance(ksyms, T.Datasec) and ksyms.vars == ()  # kfuncs are not VARs


def test_fixup_keeps_untouched_types_and_hides_functions() -> None:
    b = BtfBuilder()
    proto = b.add(T.FuncProto(0, "", 0, ()))
    b.add(T.Func(0, "helper", proto, T.Linkage.GLOBAL))
    b.add(T.Func(0, "public", proto, T.Linkage.GLOBAL))
    btf = parse_btf(b.encode())
    types = fixup_types(btf, section_sizes={}, symbol_offsets={}, hidden_funcs={"helper"})
    assert [getattr(t, "linkage", None) for t in types[2:]] == [0, 1]
    assert sanitize_types(types) == types  # nothing newer to replace


def test_name_index_agrees_with_the_parsed_types() -> None:
    from bpfkit.btf.parse import name_index

    raw = (TESTS / "data" / "kernel" / "vmlinux.btf").read_bytes()
    btf = parse_btf(raw)
    kinds = {Kind.FUNC, Kind.VAR, Kind.TYPEDEF, Kind.STRUCT}
    want: dict[tuple[int, str], int] = {}
    for t in btf.types:
        if t.kind in kinds and t.name:
            want.setdefault((int(t.kind), t.name), t.id)
    assert name_index(raw, kinds) == want and len(want) > 20


def test_btf_ext_written_and_read_back() -> None:
    from bpfkit.btf import parse_btf_ext
    from bpfkit.btf.encode import encode_btf_ext
    from bpfkit.btf.ext import CoreRelo, FuncInfo, LineInfo

    b = BtfBuilder()
    node = b.reserve()  # struct node { struct node *next; }
    ptr = b.add(T.Ptr(0, "", node))
    b.fill(node, T.Struct(0, "node", 8, (T.Member("next", ptr, 0),)))
    proto = b.add(T.FuncProto(0, "", 0, ()))
    func = b.add(T.Func(0, "prog", proto, T.Linkage.GLOBAL))
    file, text, access = b.name("prog.py"), b.name("return 0"), b.name("0:0")
    ext = encode_btf_ext(
        {"xdp": [FuncInfo(0, func)], "empty": []},
        {"xdp": [LineInfo(0, file, text, 7, 3), LineInfo(8, file, text, 8, 1)]},
        {"xdp": [CoreRelo(16, node, access, 0)]},
        b.name,
    )
    btf = parse_btf(b.encode())
    assert btf.format(ptr) == "struct node *"
    got = parse_btf_ext(ext, btf=btf)
    assert got.func_info == {"xdp": (FuncInfo(0, func),)}
    lines = [(r.insn_off, r.file_name, r.source, r.line, r.column) for r in got.line_info["xdp"]]
    assert lines == [(0, "prog.py", "return 0", 7, 3), (8, "prog.py", "return 0", 8, 1)]
    (relo,) = got.core_relos["xdp"]
    assert (relo.insn_off, relo.type_id, relo.access, relo.kind) == (16, node, "0:0", 0)
    unfilled = BtfBuilder()
    unfilled.reserve()
    with pytest.raises(BtfError, match="reserved but never filled"):
        unfilled.encode()
