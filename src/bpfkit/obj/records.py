"""Which BTF type a ring buffer's or perf event array's records have.

BTF gives a ring buffer no value type (its records are whatever the program sends), so the
type is read from the code, as a person would: the size a program passes to
``bpf_ringbuf_reserve`` / ``bpf_ringbuf_output`` / ``bpf_perf_event_output`` for that map
(a constant: ``sizeof(struct event)``), matched against the object's structs.  A map whose
programs send one size gets the struct of that size that a global variable points to
(cilium/ebpf's convention to put a record type in BTF: ``const struct event *unused
__attribute__((unused));``), else the one named struct or union of that size, programs'
contexts and maps' keys and values left out; otherwise none (callers then take a type
name from the user).  Clang emits no BTF for types only local variables use, so without
that convention the record type is often not in the object at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpfkit.btf import types as T
from bpfkit.isa.insn import LDDW_OPCODE
from bpfkit.obj.spec import RelocKind
from bpfkit.uapi._generated import CTX_FIELDS

if TYPE_CHECKING:
    from bpfkit.btf.btf import Btf
    from bpfkit.obj.spec import ObjectSpec, ProgramSpec

_CALL = 0x85
_MOV64_IMM, _MOV32_IMM, _MOV64_REG = 0xB7, 0xB4, 0xBF
# helper name -> (register holding the map, register holding the size)
_SENDERS = {
    "bpf_ringbuf_reserve": (1, 2),
    "bpf_ringbuf_output": (1, 3),
    "bpf_perf_event_output": (2, 5),
}


def _sizes(prog: ProgramSpec, out: dict[str, set[int]]) -> None:
    """Add the (map, constant size) pairs of ``prog``'s sending calls to ``out``."""
    from bpfkit.uapi.helpers import by_name

    ids = {}
    for name, regs in _SENDERS.items():
        h = by_name(name)
        if h is not None:
            ids[h.id] = regs
    maps_at = {r.offset: r.symbol for r in prog.relocations if r.kind is RelocKind.MAP}
    maps: dict[int, str] = {}  # register -> the map it points to
    imms: dict[int, int] = {}  # register -> the constant it holds
    offset = 0
    for insn in prog.insns:
        op, dst = insn.opcode, insn.dst
        if op == _CALL:
            found = ids.get(insn.imm) if insn.src == 0 else None
            if found is not None and found[0] in maps:
                out.setdefault(maps[found[0]], set()).add(imms.get(found[1], -1))
            for r in range(6):  # r0-r5 do not survive a call
                maps.pop(r, None)
                imms.pop(r, None)
        elif op & 0x07 in (0x00, 0x01, 0x04, 0x07):  # LD, LDX, ALU, ALU64 write dst
            maps.pop(dst, None)
            imms.pop(dst, None)
            if op == LDDW_OPCODE and offset in maps_at:
                maps[dst] = maps_at[offset]
            elif op in (_MOV64_IMM, _MOV32_IMM):
                imms[dst] = insn.imm
            elif op == _MOV64_REG:
                if insn.src in maps:
                    maps[dst] = maps[insn.src]
                if insn.src in imms:
                    imms[dst] = imms[insn.src]
        # A branch target may hold other values: this straight-line view is a heuristic
        # that a wrong guess cannot make worse than "no type" (sizes must all agree).
        offset += 8 * insn.width


def record_types(obj: ObjectSpec, btf: Btf) -> dict[str, int]:
    """``{map name: type id}`` for the ring buffers and perf event arrays of ``obj`` whose
    record type the code shows (see the module docstring)."""
    sizes: dict[str, set[int]] = {}
    for prog in obj.programs:
        _sizes(prog, sizes)
    # Not records: programs' contexts, and the keys and values of maps.
    skip = {
        t.id for t in btf.types if t.name in CTX_FIELDS or t.name.startswith("trace_event_raw_")
    }
    for m in obj.maps:
        for tid in (m.key_type_id, m.value_type_id):
            if tid:
                skip.add(btf.resolve_id(tid))
    by_size: dict[int, list[int]] = {}
    for t in btf.types:
        if isinstance(t, T.Struct) and t.name and t.size and t.id not in skip:
            by_size.setdefault(t.size, []).append(t.id)
    # cilium/ebpf's convention to put a record type in BTF: a global pointer to it
    # (`const struct event *unused __attribute__((unused));`).
    forced: set[int] = set()
    for t in btf.types:
        if isinstance(t, T.Var):
            target = btf.resolve(t.type)
            if isinstance(target, T.Ptr):
                target = btf.resolve(target.type)
            forced.add(target.id)
    out: dict[str, int] = {}
    for name, found in sizes.items():
        if len(found) != 1:
            continue
        candidates = by_size.get(next(iter(found)), [])
        marked = [c for c in candidates if c in forced]
        if len(marked) == 1:
            out[name] = marked[0]
        elif len(candidates) == 1:
            out[name] = candidates[0]
    return out
