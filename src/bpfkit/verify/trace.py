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

from dataclasses import dataclass, field, replace

from bpfkit.verify import scalar as sc
from bpfkit.verify.scalar import Scalar
from bpfkit.verify.source import ProgramView
from bpfkit.verify.static import LIMIT, NONE, Reg, Result, Slot, Verifier, map_infos


@dataclass(frozen=True, slots=True)
class Mixed:
    """A register (or stack slot) that holds different kinds of value on different paths."""

    kinds: tuple[str, ...]  # the kinds, sorted: ("ctx", "scalar")

    def text(self) -> str:
        """``scalar|ctx()``: the kinds, in the verifier's names."""
        return "|".join(self.kinds)


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


def _mixed(*vals: Value) -> Mixed:
    kinds: set[str] = set()
    for v in vals:
        if isinstance(v, Mixed):
            kinds.update(v.kinds)
        else:
            kinds.add("scalar" if v.t == "scalar" else f"{v.name()}()")
    return Mixed(tuple(sorted(kinds)))


def join_reg(a: Value, b: Value) -> Value:
    """Join two register values: see the module docstring."""
    if a is b or a == b:
        return a
    if isinstance(a, Mixed) or isinstance(b, Mixed):
        return _mixed(a, b)
    if a.t == "none" or b.t == "none":
        return NONE  # unreadable on some path
    if a.t != b.t:
        # NULL on one path, a pointer that may be NULL on the other: *_or_null
        for p, n in ((a, b), (b, a)):
            if n.t == "scalar" and n.s.const == 0 and p.t not in ("scalar", "fp", "ctx"):
                return replace(p, null=True) if p.id else p
        return _mixed(a, b)
    if a.t == "scalar":
        return Reg("scalar", join_scalar(a.s, b.s))
    if (a.mp, a.frame) != (b.mp, b.frame):
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
    if by == 0:
        return s
    try:
        return sc.alu("add", s, sc.const(by), 64)
    except sc.Empty:
        return sc.UNKNOWN


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
    """The joined registers and stack slots of one function at one instruction."""

    regs: list[Value]  # r0-r10
    stack: dict[int, Slot]  # 8-byte aligned offset -> spilled register or byte marks
    visits: int = 1

    def add(self, regs: list[Reg], stack: dict[int, Slot]) -> None:
        self.visits += 1
        self.regs = [join_reg(x, y) for x, y in zip(self.regs, regs, strict=True)]
        for o in set(self.stack) | set(stack):
            self.stack[o] = join_slot(self.stack.get(o, "????????"), stack.get(o, "????????"))


@dataclass
class Trace:
    """Per instruction (slot index of the linked program): the state before and after it."""

    before: dict[int, Seen] = field(default_factory=dict)
    after: dict[int, Seen] = field(default_factory=dict)

    def record(self, after: bool, pc: int, regs: list[Reg], stack: dict[int, Slot]) -> None:
        """Join one path's registers and stack before (or ``after``) instruction ``pc``."""
        where = self.after if after else self.before
        seen = where.get(pc)
        if seen is None:
            where[pc] = Seen(list[Value](regs), dict(stack))
        else:
            seen.add(regs, stack)


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
    trace = v.trace = Trace()
    return trace, v.run()
