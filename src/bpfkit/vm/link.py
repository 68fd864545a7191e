"""Turn a program of an object into one flat instruction list the VM can run.

What libbpf does before loading, minus the kernel: bpf-to-bpf calls into other functions
(``.text`` subprograms, or static functions of the same section) are resolved by
appending the callees after the program and fixing each call's ``imm``; ``lddw`` of a map
becomes ``src=1`` with ``imm`` = the map's index in :attr:`Linked.maps`; ``lddw`` of
global data becomes ``src=2`` with ``imm`` = the data map's index and ``imm_hi`` = the
offset; ``lddw`` of a function's address becomes ``src=4`` relative to itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bpfkit.errors import VmError
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import lookup
from bpfkit.obj.spec import ObjectSpec, ProgramSpec, Relocation, RelocKind

LDDW = 0x18
CALL = 0x85


@dataclass
class Linked:
    """A linked program: its instructions and the names of the maps its ``imm`` fields index."""

    insns: list[Insn]
    maps: list[str] = field(default_factory=list)  # map or data-section names, by index

    def map_index(self, name: str) -> int:
        """The index of map ``name`` (added on first use)."""
        if name not in self.maps:
            self.maps.append(name)
        return self.maps.index(name)


def _slots(prog: ProgramSpec) -> list[int]:
    """Slot index of each instruction of ``prog``."""
    out, slot = [], 0
    for insn in prog.insns:
        out.append(slot)
        slot += insn.width
    return out


def _function_at(obj: ObjectSpec, section: str, byte: int) -> ProgramSpec:
    for p in obj.programs:
        if p.section == section and p.offset <= byte < p.offset + p.size:
            return p
    raise VmError(f"{obj.path}: no function at offset {byte} of section {section}")


def link(obj: ObjectSpec, prog: ProgramSpec, data_sections: set[str]) -> Linked:
    """Link ``prog`` with the functions it calls; see the module docstring.

    ``data_sections`` are the names of the global data sections the VM has maps for.
    """
    linked = Linked([])
    starts: dict[tuple[str, int], int] = {}  # (section, offset) of a function -> first slot
    order: list[ProgramSpec] = []
    total = 0

    def place(p: ProgramSpec) -> int:
        nonlocal total
        key = (p.section, p.offset)
        if key not in starts:
            starts[key] = total
            order.append(p)
            linked.insns.extend(p.insns)
            total += sum(i.width for i in p.insns)
        return starts[key]

    place(prog)
    done = 0
    index_base = 0
    while done < len(order):
        p = order[done]
        done += 1
        base_slot = starts[(p.section, p.offset)]
        slots = _slots(p)
        relocs: dict[int, Relocation] = {r.offset // 8: r for r in p.relocations}
        for i, insn in enumerate(p.insns):
            slot = slots[i]
            r = relocs.get(slot)
            fixed = _fix(obj, p, insn, slot, base_slot, r, place, linked, data_sections)
            if fixed is not None:
                linked.insns[index_base + i] = fixed
        index_base += len(p.insns)
    return linked


def _fix(
    obj: ObjectSpec,
    p: ProgramSpec,
    insn: Insn,
    slot: int,
    base_slot: int,
    r: Relocation | None,
    place: Callable[[ProgramSpec], int],
    linked: Linked,
    data_sections: set[str],
) -> Insn | None:
    """The instruction ``insn`` (at ``slot`` of ``p``) after relocation, or None if unchanged."""
    op = lookup(insn)
    is_local_call = op is not None and op.key == "local"
    if r is not None and r.kind is RelocKind.MAP and insn.opcode == LDDW:
        return Insn(LDDW, insn.dst, 1, 0, linked.map_index(r.symbol))
    if r is not None and r.kind is RelocKind.GLOBAL_DATA and insn.opcode == LDDW:
        section = r.symbol_section or r.symbol
        if section not in data_sections:
            raise VmError(f"{obj.path}: {p.name} refers to data section {section}, not found")
        offset = insn.imm + (r.symbol_value if r.symbol_type != "STT_SECTION" else 0)
        return Insn(LDDW, insn.dst, 2, 0, linked.map_index(section), offset)
    if r is not None and r.kind in (RelocKind.CALL, RelocKind.FUNC_ADDR):
        fsection = r.symbol_section
        if fsection is None:
            raise VmError(f"{obj.path}: {p.name} calls undefined function {r.symbol}")
        target_byte = r.symbol_value + (insn.imm + 1) * 8
        callee = _function_at(obj, fsection, target_byte)
        start = place(callee) + (target_byte - callee.offset) // 8
        rel = start - (base_slot + slot + 1)
        if insn.opcode == LDDW:
            return Insn(LDDW, insn.dst, 4, 0, rel)
        return Insn(insn.opcode, insn.dst, 1, insn.off, rel)
    if is_local_call and r is None:
        # A call inside the section without a relocation (a static function).
        target_byte = p.offset + (slot + 1 + insn.imm) * 8
        if p.offset <= target_byte < p.offset + p.size:
            return None  # inside this function: the relative imm already works
        callee = _function_at(obj, p.section, target_byte)
        start = place(callee) + (target_byte - callee.offset) // 8
        return Insn(insn.opcode, insn.dst, insn.src, insn.off, start - (base_slot + slot + 1))
    return None
