"""Linking and relocating one program of an object: pure rewriting, no kernel.

:func:`link` turns a :class:`~bpfkit.obj.spec.ProgramSpec` into the instruction stream
the kernel loads, as libbpf does (``bpf_object__relocate``):

- every function the program calls (``call`` with src 1, or a callback address ``lddw``
  with src 4), in its own section or in ``.text``, is appended once after the program,
  transitively, and each call's offset is recomputed for the new layout;
- a ``lddw`` of a map becomes ``src=1`` (BPF_PSEUDO_MAP_FD) with the map's descriptor;
- a ``lddw`` of global data becomes ``src=2`` (BPF_PSEUDO_MAP_VALUE): the data map's
  descriptor in ``imm`` and the offset inside the section in the second slot.

Descriptors come from the caller (``map_fds`` by map name, ``data_fds`` by section name),
so tests run it with made-up numbers; ``Linked.map_refs`` says which instruction holds
which map's descriptor, so a program linked before its maps exist (placeholders, as
:mod:`bpfkit.obj.prepare` does) gets them later with :meth:`bpfkit.obj.prepare.PreparedProgram.bind`.  :func:`remap_ext_records` moves ``.BTF.ext``
func_info/line_info records (byte offsets inside their section) to the instruction indices
of the linked program.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from bpfkit.errors import ObjectError
from bpfkit.isa.insn import Insn
from bpfkit.obj.spec import MapSpec, ObjectSpec, ProgramSpec, Relocation, RelocKind

CALL = 0x85
LDDW = 0x18
PSEUDO_MAP_FD = 1
PSEUDO_MAP_VALUE = 2
PSEUDO_CALL = 1
PSEUDO_FUNC = 4
PSEUDO_BTF_ID = 3
PSEUDO_KFUNC_CALL = 2


@dataclass(frozen=True, slots=True)
class Extern:
    """How an extern symbol resolves (the kernel layer decides; relocation applies it):

    - ``map_value``: ``value`` is the fd of map ``map``, ``offset`` the place in its value
      (``.kconfig``);
    - ``btf_id``: ``value`` is a kernel BTF id (typed ``__ksym`` variable, lddw src 3);
    - ``kfunc``: ``value`` is the BTF id of a kernel function (call src 2);
    - ``addr``: ``value`` is an address (typeless ``__ksym``; 0 for an unresolved weak one).
    """

    kind: str
    value: int
    offset: int = 0
    map: str = ""


@dataclass(frozen=True, slots=True)
class Placed:
    """A function of the object placed in a linked program, at instruction ``start``."""

    spec: ProgramSpec
    start: int  # slot index in the linked program


@dataclass(frozen=True, slots=True)
class Linked:
    """A program ready to load: instructions and where each of its functions went."""

    name: str
    section: str
    insns: tuple[Insn, ...]
    functions: tuple[Placed, ...]  # the program itself first, then its sub-programs
    # (instruction index, map name or data section) of each lddw holding a map's fd
    map_refs: tuple[tuple[int, str], ...] = ()

    @property
    def slots(self) -> int:
        """Length in 8-byte slots."""
        return sum(i.width for i in self.insns)


def find_map(obj: ObjectSpec, rel: Relocation, insn: Insn) -> MapSpec:
    """The map a ``lddw`` relocation refers to (by symbol name, else section + offset)."""
    # Section symbols (old compilers) point at the section start; the map's offset is in imm.
    offset = rel.symbol_value + (insn.imm if rel.symbol_type == "STT_SECTION" else 0)
    for m in obj.maps:
        if m.section == rel.symbol_section and m.offset == offset:
            return m
    for m in obj.maps:
        if rel.symbol_type != "STT_SECTION" and m.name == rel.symbol:
            return m
    raise ObjectError(
        f"{obj.path}: relocation against {rel.symbol!r} refers to no map in section "
        f"{rel.symbol_section!r} at offset {offset}"
    )


def _functions_of(obj: ObjectSpec, section: str) -> list[ProgramSpec]:
    return sorted((p for p in obj.programs if p.section == section), key=lambda p: p.offset)


def _function_at(obj: ObjectSpec, section: str, slot: int, where: str) -> ProgramSpec:
    byte = slot * 8
    for p in _functions_of(obj, section):
        if p.offset <= byte < p.offset + p.size:
            return p
    raise ObjectError(f"{obj.path}: {where}: no function at instruction {slot} of {section!r}")


class _Linker:
    def __init__(
        self,
        obj: ObjectSpec,
        map_fds: Mapping[str, int],
        data_fds: Mapping[str, int],
        externs: Mapping[str, Extern],
    ) -> None:
        self.obj = obj
        self.map_fds = map_fds
        self.data_fds = data_fds
        self.externs = externs
        self.out: list[Insn] = []
        self.size = 0  # slots so far
        self.placed: dict[tuple[str, int], Placed] = {}
        self.order: list[Placed] = []
        self.refs: list[tuple[int, str]] = []
        self.ref = ""  # set by rewrite when the instruction it returns holds a map's fd

    def place(self, spec: ProgramSpec) -> Placed:
        key = (spec.section, spec.offset)
        got = self.placed.get(key)
        if got is None:
            got = Placed(spec, self.size)
            self.placed[key] = got
            self.order.append(got)
            self.out.extend(spec.insns)
            self.size += sum(i.width for i in spec.insns)
        return got

    def target(self, section: str, slot: int, where: str) -> int:
        """Slot in the linked program of ``slot`` (an index inside ``section``)."""
        fn = _function_at(self.obj, section, slot, where)
        return self.place(fn).start + slot - fn.offset // 8

    def run(self, prog: ProgramSpec) -> Linked:
        self.place(prog)
        done = 0
        while done < len(self.order):  # functions appended while relocating are processed too
            self.relocate(self.order[done])
            done += 1
        refs = tuple(sorted(self.refs))
        return Linked(prog.name, prog.section, tuple(self.out), tuple(self.order), refs)

    def relocate(self, fn: Placed) -> None:
        spec = fn.spec
        rels = {r.offset: r for r in spec.relocations}
        index = self._index_of(fn.start)
        slot = 0
        for insn in spec.insns:
            out_slot = fn.start + slot
            rel = rels.get(slot * 8)
            where = f"{spec.section}:{spec.name}+{slot}"
            self.ref = ""
            new = self.rewrite(insn, rel, spec, slot, out_slot, where)
            if self.ref:
                self.refs.append((index, self.ref))
            if new is not insn:
                self.out[index] = new
            index += 1
            slot += insn.width

    def extern(self, insn: Insn, rel: Relocation, where: str) -> Insn:
        ext = self.externs.get(rel.symbol)
        what = "kconfig" if rel.kind == RelocKind.KCONFIG else "ksym/kfunc"
        if ext is None:
            raise ObjectError(
                f"{self.obj.path}: {where}: extern {what} symbol {rel.symbol!r} is not resolved"
            )
        if insn.opcode == CALL and ext.kind == "kfunc":
            return replace(insn, src=PSEUDO_KFUNC_CALL, imm=ext.value, off=0)
        if insn.opcode == LDDW:
            if ext.kind == "map_value":
                self.ref = ext.map
                return replace(
                    insn, src=PSEUDO_MAP_VALUE, imm=ext.value, imm_hi=ext.offset + insn.imm
                )
            if ext.kind == "btf_id":
                return replace(insn, src=PSEUDO_BTF_ID, imm=ext.value, imm_hi=0)
            if ext.kind == "addr":
                v = ext.value & 0xFFFFFFFFFFFFFFFF
                lo, hi = v & 0xFFFFFFFF, v >> 32
                return replace(
                    insn,
                    src=0,
                    imm=lo - (1 << 32) if lo & 0x80000000 else lo,
                    imm_hi=hi - (1 << 32) if hi & 0x80000000 else hi,
                )
        raise ObjectError(
            f"{self.obj.path}: {where}: extern {rel.symbol!r} resolved as {ext.kind} cannot "
            f"be used by opcode {insn.opcode:#04x}"
        )

    def _index_of(self, start_slot: int) -> int:
        slot = 0
        for i, insn in enumerate(self.out):
            if slot == start_slot:
                return i
            slot += insn.width
        raise AssertionError("function start not on an instruction")

    def rewrite(
        self,
        insn: Insn,
        rel: Relocation | None,
        spec: ProgramSpec,
        slot: int,
        out_slot: int,
        where: str,
    ) -> Insn:
        obj = self.obj
        if rel is not None and rel.kind in (RelocKind.EXTERN, RelocKind.KCONFIG):
            return self.extern(insn, rel, where)
        if insn.opcode == CALL and insn.src == PSEUDO_CALL:
            if rel is not None and rel.symbol_section is not None:
                section, target = rel.symbol_section, rel.symbol_value // 8 + insn.imm + 1
            else:
                section, target = spec.section, spec.offset // 8 + slot + insn.imm + 1
            new_target = self.target(section, target, where)
            return replace(insn, imm=new_target - (out_slot + 1))
        if insn.opcode != LDDW:
            if rel is not None and rel.kind in (RelocKind.MAP, RelocKind.GLOBAL_DATA):
                raise ObjectError(
                    f"{obj.path}: {where}: relocation against {rel.symbol!r} is on an "
                    f"instruction (opcode {insn.opcode:#04x}) that is not lddw"
                )
            return insn
        if rel is None:
            if insn.src == PSEUDO_FUNC:
                target = spec.offset // 8 + slot + insn.imm + 1
                new_target = self.target(spec.section, target, where)
                return replace(insn, imm=new_target - (out_slot + 1))
            return insn
        if rel.kind == RelocKind.MAP:
            m = find_map(obj, rel, insn)
            if m.name not in self.map_fds:
                raise ObjectError(f"{obj.path}: {where}: map {m.name!r} was not created")
            self.ref = m.name
            return replace(insn, src=PSEUDO_MAP_FD, imm=self.map_fds[m.name], imm_hi=0)
        if rel.kind == RelocKind.GLOBAL_DATA:
            section = rel.symbol_section or ""
            if section not in self.data_fds:
                raise ObjectError(f"{obj.path}: {where}: no map for data section {section!r}")
            off = insn.imm + rel.symbol_value
            self.ref = section
            return replace(insn, src=PSEUDO_MAP_VALUE, imm=self.data_fds[section], imm_hi=off)
        if rel.kind == RelocKind.FUNC_ADDR:
            section = rel.symbol_section or spec.section
            target = rel.symbol_value // 8 + insn.imm // 8
            new_target = self.target(section, target, where)
            return replace(insn, src=PSEUDO_FUNC, imm=new_target - (out_slot + 1), imm_hi=0)
        raise ObjectError(
            f"{obj.path}: {where}: lddw relocation against {rel.symbol!r} in section "
            f"{rel.symbol_section!r} is not a map, global data or function"
        )


def link(
    obj: ObjectSpec,
    prog: ProgramSpec | str,
    *,
    map_fds: Mapping[str, int] | None = None,
    data_fds: Mapping[str, int] | None = None,
    externs: Mapping[str, Extern] | None = None,
) -> Linked:
    """Link ``prog`` (a spec or a program name) with its sub-programs and relocate it;
    ``externs`` resolves extern symbols (kconfig, ksym, kfunc) by name."""
    spec = obj.program(prog) if isinstance(prog, str) else prog
    return _Linker(obj, map_fds or {}, data_fds or {}, externs or {}).run(spec)


def extern_symbols(obj: ObjectSpec) -> dict[str, bool]:
    """Extern symbols the object's code refers to: name -> True if called (a function),
    False if loaded (a variable)."""
    out: dict[str, bool] = {}
    for p in obj.programs:
        for r in p.relocations:
            if r.kind in (RelocKind.EXTERN, RelocKind.KCONFIG):
                insn = _insn_at(p, r.offset)
                called = insn is not None and insn.opcode == CALL
                out[r.symbol] = out.get(r.symbol, False) or called
    return out


def _insn_at(p: ProgramSpec, offset: int) -> Insn | None:
    slot = 0
    for insn in p.insns:
        if slot * 8 == offset:
            return insn
        slot += insn.width
    return None


_R = TypeVar("_R")


def remap_ext_records(
    linked: Linked,
    records: Mapping[str, Sequence[tuple[int, _R]]],
) -> list[tuple[int, _R]]:
    """func_info/line_info records for ``linked``: ``records`` maps a section name to
    ``(byte offset in the section, rest of the record)``; the result gives instruction
    indices in the linked program, sorted, as BPF_PROG_LOAD wants them."""
    out: list[tuple[int, _R]] = []
    for placed in linked.functions:
        spec = placed.spec
        lo, hi = spec.offset, spec.offset + spec.size
        for off, rest in records.get(spec.section, ()):
            if lo <= off < hi:
                out.append((placed.start + (off - lo) // 8, rest))
    out.sort(key=lambda r: r[0])
    return out
