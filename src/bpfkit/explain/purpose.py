"""Why an instruction is there: the call argument or return value a register write feeds.

A backward walk from each helper call (and each ``exit`` and register store) over the straight-line code
before it finds the last instruction that wrote each argument register (r0 for ``exit``).
The walk stops at jumps, jump targets, calls and exits, so it only claims what holds on
every path into the call.
"""

from __future__ import annotations

from collections.abc import Sequence

from bpfkit.isa.insn import Insn
from bpfkit.isa.table import Kind, Op, lookup
from bpfkit.uapi.helpers import by_id

_WRITERS = (Kind.ALU, Kind.NEG, Kind.MOVSX, Kind.ENDIAN, Kind.LDDW, Kind.LOAD, Kind.LOAD_SX)
_BARRIERS = (Kind.JA, Kind.JCOND, Kind.MAY_GOTO, Kind.GOTOX, Kind.CALL, Kind.CALLX, Kind.EXIT)


def _jump_targets(insns: Sequence[Insn], slots: Sequence[int]) -> set[int]:
    targets = set()
    for i, insn in enumerate(insns):
        op = lookup(insn)
        if op is not None and op.kind in (Kind.JA, Kind.JCOND, Kind.MAY_GOTO):
            dist = insn.imm if (op.kind is Kind.JA and op.width == 32) else insn.off
            targets.add(slots[i] + insn.width + dist)
    return targets


def _other_writes(op: Op, insn: Insn) -> tuple[int, ...]:
    """Registers an atomic or legacy packet load writes (besides plain dst writes)."""
    if op.kind is Kind.ATOMIC:
        if op.key == "cmpxchg":
            return (0,)
        if op.key.startswith("fetch_") or op.key == "xchg":
            return (insn.src,)
    if op.kind is Kind.LOAD_ACQ:
        return (insn.dst,)
    if op.kind in (Kind.LD_ABS, Kind.LD_IND):
        return (0, 1, 2, 3, 4, 5)
    return ()


def purposes(insns: Sequence[Insn], slots: Sequence[int]) -> dict[int, list[str]]:
    """Sentences to add, by instruction list index: ``r2 is argument 2 (fmt_size) of ...``."""
    out: dict[int, list[str]] = {}
    targets = _jump_targets(insns, slots)
    for c, insn in enumerate(insns):
        op = lookup(insn)
        if op is None:
            continue
        if op.kind is Kind.CALL and op.key == "helper":
            h = by_id(insn.imm)
            if h is None:
                continue
            wanted = {
                n: f"argument {n} ({a.name}, {a.ctype}) of the call to {h.name} at "
                f"instruction {slots[c]}"
                for n, a in enumerate(h.args, start=1)
            }
        elif op.kind is Kind.EXIT:
            wanted = {0: f"the return value (exit at instruction {slots[c]})"}
        elif op.kind is Kind.STORE_REG and insn.src != insn.dst:
            wanted = {insn.src: f"what instruction {slots[c]} stores to memory"}
        else:
            continue
        i = c
        while wanted and slots[i] not in targets and i > 0:
            i -= 1
            prev = lookup(insns[i])
            if prev is None or prev.kind in _BARRIERS:
                break
            if prev.kind in _WRITERS and insns[i].dst in wanted:
                what = wanted.pop(insns[i].dst)
                out.setdefault(i, []).append(f"r{insns[i].dst} is {what}.")
            for r in _other_writes(prev, insns[i]):
                wanted.pop(r, None)  # written here in a way not worth a sentence: stop
    return out
