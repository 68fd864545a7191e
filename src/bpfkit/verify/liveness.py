"""Which registers may still be read: live registers before each instruction of a linked
program, as the kernel computes them to prune states (Linux 6.15+, compute_live_registers).

A register is live before an instruction if some path from there reads it before writing
it.  The analysis is per function: a call reads r1-r5 and writes r0-r5 (the callee's own
instructions are a function of their own), exit reads r0.  Two states at an instruction
differ only in dead registers are the same to every path that follows, so the verifier
compares only live ones when it prunes.
"""

from __future__ import annotations

from collections.abc import Mapping

from bpfkit.isa.insn import Insn
from bpfkit.isa.table import Kind, Op

_ARGS = frozenset(range(1, 6))
_CLOBBERED = frozenset(range(0, 6))


def _use_def(insn: Insn, op: Op) -> tuple[frozenset[int], frozenset[int]]:
    k = op.kind
    d, s = insn.dst, insn.src
    reg_src = op.source == "reg"
    if k is Kind.ALU:
        if op.key == "mov":
            return (frozenset({s}) if reg_src else frozenset()), frozenset({d})
        return frozenset({d, s} if reg_src else {d}), frozenset({d})
    if k in (Kind.MOVSX,):
        return frozenset({s}), frozenset({d})
    if k in (Kind.NEG, Kind.ENDIAN):
        return frozenset({d}), frozenset({d})
    if k is Kind.LDDW:
        return frozenset(), frozenset({d})
    if k in (Kind.LOAD, Kind.LOAD_SX, Kind.LOAD_ACQ):
        return frozenset({s}), frozenset({d})
    if k is Kind.STORE_IMM:
        return frozenset({d}), frozenset()
    if k in (Kind.STORE_REG, Kind.STORE_REL):
        return frozenset({d, s}), frozenset()
    if k is Kind.ATOMIC:
        if op.key == "cmpxchg":
            return frozenset({d, s, 0}), frozenset({0})
        fetch = op.key.startswith("fetch") or "fetch" in op.key or op.key == "xchg"
        return frozenset({d, s}), frozenset({s} if fetch else set())
    if k in (Kind.LD_ABS, Kind.LD_IND):
        return frozenset({6, s} if k is Kind.LD_IND else {6}), _CLOBBERED
    if k is Kind.JCOND:
        return frozenset({d, s} if reg_src else {d}), frozenset()
    if k in (Kind.CALL, Kind.CALLX):
        extra = {d} if k is Kind.CALLX else set()
        return _ARGS | extra, _CLOBBERED
    if k is Kind.EXIT:
        return frozenset({0}), frozenset()
    return frozenset(), frozenset()


def live_registers(
    insns: Mapping[int, Insn], ops: Mapping[int, Op | None]
) -> dict[int, frozenset[int]]:
    """Slot index -> registers live before it (r10 always: it is never written)."""
    succ: dict[int, list[int]] = {}
    use: dict[int, frozenset[int]] = {}
    dfn: dict[int, frozenset[int]] = {}
    for i, insn in insns.items():
        op = ops.get(i)
        if op is None:
            use[i], dfn[i], succ[i] = frozenset(range(11)), frozenset(), []
            continue
        use[i], dfn[i] = _use_def(insn, op)
        nxt = i + insn.width
        if op.kind is Kind.EXIT:
            succ[i] = []
        elif op.kind is Kind.JA:
            succ[i] = [i + 1 + (insn.imm if op.width == 32 else insn.off)]
        elif op.kind in (Kind.JCOND, Kind.MAY_GOTO):
            succ[i] = [nxt, i + 1 + insn.off]
        else:
            succ[i] = [nxt]
    live: dict[int, frozenset[int]] = {i: frozenset() for i in insns}
    changed = True
    order = sorted(insns, reverse=True)
    while changed:
        changed = False
        for i in order:
            out: frozenset[int] = frozenset().union(*(live.get(j, frozenset()) for j in succ[i]))
            new = use[i] | (out - dfn[i]) | {10}
            if new != live[i]:
                live[i] = new
                changed = True
    return live
