"""What the verifier knew at each instruction, over every path it walked.

The verifier (:mod:`bpfkit.verify.static`) walks paths one at a time; with a
:class:`Trace` attached it also records, per instruction, the registers and stack slots
of the running function before and after the instruction, joined over the paths that
reached it: a scalar's range becomes the smallest range holding every path's (tnum and
the four bounds), a pointer keeps its kind (a pointer on one path and NULL on another is
``*_or_null``), registers of different kinds on different paths are :class:`Mixed`.
explain shows these states (:mod:`bpfkit.explain.vlog`); they are the verifier's own, not
a second analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bpfkit.isa.insn import Insn
from bpfkit.isa.table import Kind, Op, lookup
from bpfkit.verify import scalar as sc
from bpfkit.verify.scalar import Scalar
from bpfkit.verify.source import ProgramView
from bpfkit.verify.static import LIMIT, Reg, Result, Slot, Verifier, map_infos


@dataclass(frozen=True, slots=True)
class Mixed:
    """A register (or stack slot) that holds different kinds of value on different paths:
    one joined value per kind (``?`` for paths where it was never written)."""

    values: tuple[Reg, ...]  # one per kind, in the order first seen

    def text(self) -> str:
        """``?|2048``, ``scalar(...)|ctx()``: each kind's value, in the verifier's notation."""
        return "|".join(v.text() for v in self.values)


def join_scalar(a: Scalar, b: Scalar) -> Scalar:
    """The smallest scalar holding every value of ``a`` and of ``b``."""
    if a == b:
        return a
    mask = a.mask | b.mask | (a.value ^ b.value)
    return Scalar(
        a.value & ~mask & sc.M64,
        mask,
        min(a.umin, b.umin),
        max(a.umax, b.umax),
        min(a.smin, b.smin),
        max(a.smax, b.smax),
        min(a.u32min, b.u32min),
        max(a.u32max, b.u32max),
        min(a.s32min, b.s32min),
        max(a.s32max, b.s32max),
    )


Value = Reg | Mixed  # a register over several paths


def _kind(v: Reg) -> tuple[object, ...]:
    return (v.t, v.null, v.mp, v.frame)  # values join_reg joins into one Reg


def _mixed(a: Value, b: Value) -> Value:
    if isinstance(a, Mixed) and b in a.values:
        return a  # the common case: a path like one already seen
    vals = list(a.values if isinstance(a, Mixed) else (a,))
    for v in b.values if isinstance(b, Mixed) else (b,):
        for i, old in enumerate(vals):
            if _kind(old) == _kind(v):
                j = join_reg(old, v)
                vals[i] = j if isinstance(j, Reg) else old
                break
        else:
            vals.append(v)
    return vals[0] if len(vals) == 1 else Mixed(tuple(vals))


def join_reg(a: Value, b: Value) -> Value:
    """Join two register values: see the module docstring."""
    if a is b or a == b:
        return a
    if isinstance(a, Mixed) or isinstance(b, Mixed):
        return _mixed(a, b)
    if a.t == "none" or b.t == "none":
        return _mixed(a, b)  # unreadable on some path: "?|..."
    if a.t != b.t:
        # NULL on one path, a pointer that may be NULL on the other: *_or_null
        for p, n in ((a, b), (b, a)):
            if n.t == "scalar" and n.s.const == 0 and p.t not in ("scalar", "fp", "ctx"):
                return replace(p, null=True) if p.id else p
        return _mixed(a, b)
    if a.t == "scalar":
        return Reg("scalar", join_scalar(a.s, b.s))
    if (a.mp, a.frame) != (b.mp, b.frame) or (a.null != b.null and not (a.id and a.id == b.id)):
        return _mixed(a, b)
    off = a.off if a.off == b.off else 0
    s = join_scalar(_shift(a.s, a.off - off), _shift(b.s, b.off - off))
    return Reg(
        a.t,
        s,
        off,
        a.id if a.id == b.id else 0,
        a.null or b.null,
        a.ref if a.ref == b.ref else 0,
        min(a.rng, b.rng),
        a.size if a.size == b.size else min(a.size, b.size),
        a.frame,
        a.mp,
    )


def _shift(s: Scalar, by: int) -> Scalar:
    """``s + by`` for a pointer's variable offset (cheap: the 32-bit bounds are dropped)."""
    if by == 0:
        return s
    if s.mask == 0:
        return sc.const(s.value + by)
    lo, hi = s.smin + by, s.smax + by
    if s.smin == sc.S64_MIN or s.smax == sc.S64_MAX or lo < sc.S64_MIN or hi > sc.S64_MAX:
        return sc.UNKNOWN
    value, mask = sc.t_add((s.value, s.mask), (by & sc.M64, 0), 64)
    ulo, uhi = (lo, hi) if lo >= 0 else (0, sc.M64)
    return Scalar(value, mask, ulo, uhi, lo, hi, 0, sc.M32, sc.S32_MIN, sc.S32_MAX)


def join_slot(a: Slot, b: Slot) -> Slot:
    """Join two stack slots: spilled registers, or 8 byte marks (``?`` ``m`` ``0``)."""
    if a is b or a == b:
        return a
    if isinstance(a, Reg) and isinstance(b, Reg):
        j = join_reg(a, b)
        return "mmmmmmmm" if isinstance(j, Mixed) else j
    sa = a if isinstance(a, str) else "mmmmmmmm"
    sb = b if isinstance(b, str) else "mmmmmmmm"
    return "".join(
        x if x == y else ("?" if "?" in (x, y) else "m") for x, y in zip(sa, sb, strict=True)
    )


@dataclass
class Seen:
    """The joined registers and stack slots of one function at one instruction (only the
    registers shown there: those the instruction reads or writes, r10, and at jump
    targets all)."""

    regs: dict[int, Value]  # register number -> value
    stack: dict[int, Slot]  # 8-byte aligned offset -> spilled register or byte marks
    visits: int = 1

    def reg(self, n: int) -> Value | None:
        """Register ``n``'s joined value, if recorded here."""
        return self.regs.get(n)

    def add(self, regs: dict[int, Value], stack: dict[int, Slot] | None) -> None:
        self.visits += 1
        mine = self.regs
        for n, v in regs.items():
            old = mine.get(n)
            mine[n] = v if old is None else join_reg(old, v)
        if stack is not None:
            for o in set(self.stack) | set(stack):
                self.stack[o] = join_slot(self.stack.get(o, "????????"), stack.get(o, "????????"))


_MEMORY = frozenset(
    (Kind.LOAD, Kind.LOAD_SX, Kind.LOAD_ACQ, Kind.STORE_IMM, Kind.STORE_REG, Kind.STORE_REL)
) | {Kind.ATOMIC}


def scratched(op: Op, insn: Insn) -> list[int]:
    """The registers the kernel prints after ``insn`` (log level 2): those it reads or
    writes."""
    regs = set()
    if op.kind is Kind.CALL or op.kind is Kind.CALLX or op.kind in (Kind.LD_ABS, Kind.LD_IND):
        regs.add(0)
    if op.kind in (Kind.LD_ABS, Kind.LD_IND):
        regs.add(6)  # legacy packet loads read the skb from r6
    if op.key == "cmpxchg":
        regs.add(0)
    if "dst" in op.uses:
        regs.add(insn.dst)
    if "src" in op.uses and op.kind is not Kind.LDDW:
        regs.add(insn.src)
    return sorted(r for r in regs if r <= 10)


class Trace:
    """Per instruction (slot index of the linked program): the state before and after it.

    ``insns`` tells which registers each instruction shows (the rest are not joined: that
    is most of the cost); at the instructions in ``full`` (jump targets) the whole state
    before is kept."""

    def __init__(self, insns: dict[int, Insn] | None = None, full: set[int] | None = None):
        self.before: dict[int, Seen] = {}
        self.after: dict[int, Seen] = {}
        self.insns = insns
        self.full = full if full is not None else set()
        self._shown: dict[int, tuple[tuple[int, ...], bool]] = {}

    def _which(self, pc: int) -> tuple[tuple[int, ...], bool]:
        got = self._shown.get(pc)
        if got is None:
            insn = self.insns.get(pc) if self.insns is not None else None
            op = lookup(insn) if insn is not None else None
            if insn is None or op is None:
                got = (tuple(range(11)), True)
            else:
                regs = set(scratched(op, insn)) | {10}
                got = (tuple(sorted(regs)), op.kind in _MEMORY)
            self._shown[pc] = got
        return got

    def record(self, after: bool, pc: int, regs: list[Reg], stack: dict[int, Slot]) -> None:
        """Join one path's registers and stack before (or ``after``) instruction ``pc``."""
        where = self.after if after else self.before
        which, mem = self._which(pc)
        if not after and pc in self.full:
            which, mem = tuple(range(11)), True
        shown: dict[int, Value] = {n: regs[n] for n in which}
        seen = where.get(pc)
        if seen is None:
            where[pc] = Seen(shown, dict(stack) if mem else {})
        else:
            seen.add(shown, stack if mem else None)


def trace_program(
    view: ProgramView,
    prog_type: str,
    attach_type: str = "",
    *,
    limit: int = LIMIT,
) -> tuple[Trace, Result]:
    """Verify ``view`` (as :func:`~bpfkit.verify.static.verify_program`) recording the
    states; the walk stops after ``limit`` processed instructions (then the states are
    those of the paths walked so far and the result says the program is too large)."""
    v = Verifier(view, prog_type, map_infos(view), attach_type)
    v.limit = limit
    trace = v.trace = Trace(view.insns, v.prune_points)
    return trace, v.run()
