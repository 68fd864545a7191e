"""Register allocation: linear scan of live intervals over r6-r9, the rest spilled to the stack.

r6-r9 survive helper calls, so a value kept there needs no saving around calls; r0-r5 are
left to the emitter (scratch, helper arguments, return value).  A virtual register's
interval runs from its first to its last mention in the linear order; an interval that
overlaps a loop (a backward jump) is stretched over the whole loop, since a value live
at the loop's end is live again at its start.  When the four registers are taken, the
interval ending last is spilled (Poletto and Sarkar's linear scan): it lives in an 8-byte
stack slot, which keeps pointer types for the verifier.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpfkit.lang.ir import Br, Function, Jmp, Label, Slot, VReg, defs, uses

REGS = (6, 7, 8, 9)


@dataclass
class Allocation:
    """Where each virtual register lives: a register number or a stack slot."""

    where: dict[int, int | Slot]
    spills: list[Slot]


def intervals(fn: Function) -> dict[int, tuple[int, int, VReg]]:
    """vreg id -> (start, end, vreg) positions in ``fn.insns``."""
    spans: dict[int, list[int]] = {}
    regs: dict[int, VReg] = {}
    for pos, insn in enumerate(fn.insns):
        for v in [*uses(insn), *defs(insn)]:
            regs[v.id] = v
            s = spans.setdefault(v.id, [pos, pos])
            s[0], s[1] = min(s[0], pos), max(s[1], pos)
    for p in fn.params + ([fn.ctx] if fn.ctx is not None else []):
        regs[p.id] = p
        s = spans.setdefault(p.id, [0, 0])
        s[0] = 0
    labels = {i.name: pos for pos, i in enumerate(fn.insns) if isinstance(i, Label)}
    loops = [
        (labels[i.label], pos)
        for pos, i in enumerate(fn.insns)
        if isinstance(i, (Jmp, Br)) and labels.get(i.label, pos + 1) <= pos
    ]
    changed = True
    while changed:
        changed = False
        for head, tail in loops:
            for k, s in spans.items():
                # A variable (named) may carry a value around the loop; a temporary only
                # when its interval crosses the loop's bounds.
                crosses = s[0] < head or s[1] > tail or bool(regs[k].name)
                if s[0] <= tail and s[1] >= head and crosses:
                    # Live somewhere in the loop: live throughout it.
                    lo, hi = min(s[0], head), max(s[1], tail)
                    if (lo, hi) != (s[0], s[1]):
                        s[0], s[1] = lo, hi
                        changed = True
    return {k: (s[0], s[1], regs[k]) for k, s in spans.items()}


def allocate(fn: Function) -> Allocation:
    """Linear scan over :func:`intervals`."""
    ivs = sorted(intervals(fn).values(), key=lambda t: (t[0], t[1]))
    where: dict[int, int | Slot] = {}
    spills: list[Slot] = []
    active: list[tuple[int, int, VReg]] = []  # (end, reg, vreg)
    free = list(REGS)
    for start, end, v in ivs:
        for item in list(active):
            if item[0] < start:
                active.remove(item)
                free.append(item[1])
        if free:
            free.sort()
            reg = free.pop(0)
            where[v.id] = reg
            active.append((end, reg, v))
            continue
        last = max(active, key=lambda t: t[0])
        if last[0] > end:
            # Spill the one that lives longest; ``v`` takes its register.
            slot = Slot(8)
            spills.append(slot)
            where[last[2].id] = slot
            active.remove(last)
            where[v.id] = last[1]
            active.append((end, last[1], v))
        else:
            slot = Slot(8)
            spills.append(slot)
            where[v.id] = slot
    return Allocation(where, spills)
