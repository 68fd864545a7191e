"""State pruning in bpfkit's verifier (:mod:`bpfkit.verify.static`): the states remembered
at prune points and when an explored one covers a new one (range containment, registers
and stack bytes never read again), as the kernel's states_equal does."""

from __future__ import annotations

from dataclasses import dataclass

from bpfkit.verify import scalar as sc
from bpfkit.verify.scalar import Scalar
from bpfkit.verify.state import Reg, State


@dataclass
class Entry:
    """A state remembered at a prune point."""

    state: State
    key: tuple[object, ...]
    parent: Entry | None
    branches: int = 1


def is_ancestor(old: Entry, entry: Entry | None) -> bool:
    while entry is not None:
        if entry is old:
            return True
        entry = entry.parent
    return False


def scalar_covers(o: Scalar, n: Scalar) -> bool:
    return (
        o.umin <= n.umin
        and n.umax <= o.umax
        and o.smin <= n.smin
        and n.smax <= o.smax
        and o.u32min <= n.u32min
        and n.u32max <= o.u32max
        and o.s32min <= n.s32min
        and n.s32max <= o.s32max
        and (n.mask & ~o.mask) == 0
        and (n.value & ~o.mask) == (o.value & ~o.mask)
    )


def reg_covers(o: Reg, n: Reg) -> bool:
    if o.t == "none" or o is n:
        return True
    if o.t != n.t:
        return False
    if o.t == "scalar":
        return scalar_covers(o.s, n.s)
    if (o.off, o.null, o.ref != 0, o.size, o.frame, o.mp) != (
        n.off,
        n.null,
        n.ref != 0,
        n.size,
        n.frame,
        n.mp,
    ):
        return False
    if o.t == "pkt" and n.rng < o.rng:
        return False
    if o.null and o.id != n.id:
        return False
    return scalar_covers(o.s, n.s)


def covers(old: State, new: State, live: frozenset[int] | None = None) -> bool:
    """True if every path from ``new`` is safe because ``old``'s were (range containment;
    a register or stack byte ``old`` never had is never read on those paths; registers of
    the current function not in ``live`` are never read again)."""
    if len(old.frames) != len(new.frames) or set(old.refs) != set(new.refs):
        return False
    for fo, fn in zip(old.frames, new.frames, strict=True):
        if fo.callsite != fn.callsite:
            return False
        ro_regs, rn_regs = fo.regs, fn.regs
        for n in live if live is not None and fo is old.frames[-1] else range(11):
            ro, rn = ro_regs[n], rn_regs[n]
            if ro is rn or ro.t == "none":
                continue
            if ro.t != rn.t or not reg_covers(ro, rn):
                return False
        for o, so in fo.stack.items():
            sn = fn.stack.get(o)
            if so is sn or so == sn:
                continue
            if isinstance(so, Reg):
                if not isinstance(sn, Reg) or not reg_covers(so, sn):
                    if so.t == "scalar" and so.s.mask == sc.M64 and sn is not None:
                        continue
                    return False
            else:
                for i, ch in enumerate(so):
                    if ch == "?":
                        continue
                    cn = "?" if sn is None else ("m" if isinstance(sn, Reg) else sn[i])
                    if ch == "0" and cn != "0":
                        return False
                    if ch == "m" and cn == "?":
                        return False
    return True
