"""Linking and relocating programs, without a kernel: sub-programs appended once, call
offsets recomputed, map and global-data lddw rewritten, BTF.ext records moved."""

from __future__ import annotations

import pytest

from bpfkit.errors import ObjectError
from bpfkit.isa.insn import Insn
from bpfkit.obj.relocate import link, remap_ext_records
from bpfkit.obj.spec import DataSpec, MapSpec, ObjectSpec, ProgramSpec, Relocation, RelocKind

MOV, CALL, EXIT = 0xB7, 0x85, 0x95


def rel(
    offset: int, symbol: str, section: str, value: int, kind: RelocKind, stype: str
) -> Relocation:
    return Relocation(
        offset=offset,
        type=10 if kind == RelocKind.CALL else 1,
        type_name="R_BPF_64_32" if kind == RelocKind.CALL else "R_BPF_64_64",
        symbol=symbol,
        symbol_section=section,
        symbol_value=value,
        symbol_type=stype,
        kind=kind,
    )


def prog(
    name: str, section: str, offset: int, insns: list[Insn], rels: tuple[Relocation, ...] = ()
) -> ProgramSpec:
    return ProgramSpec(
        name,
        section,
        3 if section == ".text" else 4,
        offset,
        tuple(insns),
        rels,
        section == ".text",
    )


def make_obj(extra_rel: Relocation | None = None) -> ObjectSpec:
    main = prog(
        "main",
        "socket",
        0,
        [
            Insn(MOV, 1, 0, 0, 5),
            Insn(CALL, 0, 1, 0, -1),  # call sub (relocated against the STT_FUNC symbol)
            Insn.lddw(1, 0),  # map m
            Insn.lddw(2, 8),  # .data + 8 (section symbol: the offset is in imm)
            Insn(EXIT),
        ],
        (
            rel(8, "sub", ".text", 16, RelocKind.CALL, "STT_FUNC"),
            rel(16, "m", ".maps", 0, RelocKind.MAP, "STT_OBJECT"),
            rel(32, ".data", ".data", 0, RelocKind.GLOBAL_DATA, "STT_SECTION"),
        )
        + ((extra_rel,) if extra_rel else ()),
    )
    other = prog(".text_other", ".text", 0, [Insn(MOV, 0, 0, 0, 1), Insn(EXIT)])
    sub = prog(
        "sub", ".text", 16, [Insn(CALL, 0, 1, 0, -3), Insn(EXIT)]
    )  # calls `other` (no reloc)
    unused = prog("unused", ".text", 32, [Insn(EXIT)])
    return ObjectSpec(
        path="t.o",
        big_endian=False,
        programs=(main, other, sub, unused),
        maps=(MapSpec("m", ".maps", 0, type=1, key_size=4, value_size=4, max_entries=1),),
        data=(DataSpec(".data", 5, 16, bytes(16), False),),
        license="GPL",
        version=None,
        sections=(),
        symbols=(),
        relocations={},
    )


def test_subprograms_are_appended_and_calls_fixed() -> None:
    obj = make_obj()
    linked = link(obj, "main", map_fds={"m": 11}, data_fds={".data": 12})
    names = [p.spec.name for p in linked.functions]
    assert names == ["main", "sub", ".text_other"]  # `unused` is not pulled in
    assert [p.start for p in linked.functions] == [0, 7, 9]
    insns = linked.insns
    assert linked.slots == 11
    call_main = insns[1]
    assert (call_main.src, call_main.imm) == (1, 7 - 2)  # to slot 7 from slot 1
    map_ld, data_ld = insns[2], insns[3]
    assert (map_ld.src, map_ld.imm, map_ld.imm_hi) == (1, 11, 0)
    assert (data_ld.src, data_ld.imm, data_ld.imm_hi) == (2, 12, 8)
    call_sub = insns[5]  # first insn of `sub` (list index 5: lddw is one Insn), at slot 7
    assert call_sub.opcode == CALL and call_sub.imm == 9 - 8


def test_global_data_symbol_offsets_add_to_imm() -> None:
    obj = make_obj()
    main = obj.programs[0]
    rels = tuple(
        rel(32, "counter", ".data", 4, RelocKind.GLOBAL_DATA, "STT_OBJECT") if r.offset == 32 else r
        for r in main.relocations
    )
    insns = list(main.insns)
    insns[3] = Insn.lddw(2, 0)
    main2 = ProgramSpec(main.name, main.section, 4, 0, tuple(insns), rels, False)
    obj2 = ObjectSpec(
        **{
            **{f: getattr(obj, f) for f in obj.__dataclass_fields__},
            "programs": (main2, *obj.programs[1:]),
        }
    )
    linked = link(obj2, "main", map_fds={"m": 3}, data_fds={".data": 4})
    assert linked.insns[3].imm_hi == 4


def test_missing_map_or_extern_is_an_object_error() -> None:
    with pytest.raises(ObjectError, match="map 'm' was not created"):
        link(make_obj(), "main", data_fds={".data": 1})
    ext = rel(0, "bpf_kfunc", "", 0, RelocKind.EXTERN, "STT_NOTYPE")
    with pytest.raises(ObjectError, match="extern ksym/kfunc symbol 'bpf_kfunc' is not resolved"):
        link(make_obj(ext), "main", map_fds={"m": 1}, data_fds={".data": 1})


def test_ext_records_follow_their_functions() -> None:
    linked = link(make_obj(), "main", map_fds={"m": 1}, data_fds={".data": 2})
    records = {
        "socket": [(0, b"A"), (40, b"B")],
        ".text": [(0, b"other"), (16, b"sub"), (24, b"sub+1"), (32, b"unused")],
    }
    assert remap_ext_records(linked, records) == [
        (0, b"A"),
        (5, b"B"),
        (7, b"sub"),
        (8, b"sub+1"),
        (9, b"other"),
    ]


def test_externs_are_patched_by_kind() -> None:
    from bpfkit.obj.relocate import Extern

    obj = make_obj()
    main = obj.programs[0]
    kfunc = rel(48, "bpf_kfunc", "", 0, RelocKind.EXTERN, "STT_NOTYPE")
    kcfg = rel(56, "CONFIG_HZ", "", 0, RelocKind.KCONFIG, "STT_NOTYPE")
    addr = rel(72, "jiffies", "", 0, RelocKind.EXTERN, "STT_NOTYPE")
    insns = (
        *main.insns[:-1],
        Insn(CALL, 0, 0, 0, -1),
        Insn.lddw(1, 0),
        Insn.lddw(2, 0),
        Insn(EXIT),
    )
    main2 = ProgramSpec(
        "main", "socket", 4, 0, insns, (*main.relocations, kfunc, kcfg, addr), False
    )
    obj2 = ObjectSpec(
        **{
            **{f: getattr(obj, f) for f in obj.__dataclass_fields__},
            "programs": (main2, *obj.programs[1:]),
        }
    )
    externs = {
        "bpf_kfunc": Extern("kfunc", 777),
        "CONFIG_HZ": Extern("map_value", 9, 12),
        "jiffies": Extern("addr", 0xFFFFFFFF81234567),
    }
    linked = link(obj2, "main", map_fds={"m": 1}, data_fds={".data": 2}, externs=externs)
    call, kc, ad = linked.insns[4], linked.insns[5], linked.insns[6]
    assert (call.src, call.imm, call.off) == (2, 777, 0)
    assert (kc.src, kc.imm, kc.imm_hi) == (2, 9, 12)
    assert (ad.src, ad.imm64) == (0, 0xFFFFFFFF81234567)
    with pytest.raises(ObjectError, match="'CONFIG_HZ' is not resolved"):
        link(
            obj2,
            "main",
            map_fds={"m": 1},
            data_fds={".data": 2},
            externs={"bpf_kfunc": Extern("kfunc", 1)},
        )
