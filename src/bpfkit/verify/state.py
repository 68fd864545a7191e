"""The abstract state of bpfkit's verifier (:mod:`bpfkit.verify.static`): a register's value
(:class:`Reg`, numbers as :class:`~bpfkit.verify.scalar.Scalar`, pointers by kind), a
function's frame (registers and stack slots, spilled registers or per-byte states), a
path's :class:`State`, and the small operations on them the rules share."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from bpfkit.verify import scalar as sc
from bpfkit.verify.scalar import Scalar

LIMIT = 1_000_000
MAX_STATES = 12  # states remembered per instruction (the oldest are forgotten)
MAX_STACK = 512
BPF_MAX_VAR_OFF = 1 << 29
ZERO = sc.const(0)


class Reject(Exception):
    """A rule was broken at the current instruction."""


@dataclass(frozen=True, slots=True)
class MapInfo:
    """What the verifier knows of a map a ``lddw`` names."""

    type: int
    key_size: int
    value_size: int
    max_entries: int
    name: str
    readonly: bool = False


@dataclass(frozen=True, slots=True)
class Reg:
    """One register's abstract value."""

    t: str  # none, scalar, ctx, fp, map_ptr, map_value, pkt, pkt_end, pkt_meta, mem, sock, btf, func
    s: Scalar = ZERO  # the number (scalar) or the variable part of a pointer's offset
    off: int = 0  # fixed offset of a pointer
    id: int = 0  # NULL-check / packet-range group
    null: bool = False
    ref: int = 0  # reference this pointer holds (0: none)
    rng: int = 0  # packet: bytes proven readable from the pointer's base
    size: int = 0  # map value or memory size
    frame: int = 0  # stack pointers: the frame they point into
    mp: MapInfo | None = None

    def name(self) -> str:
        """The kernel's name of the type (``map_value_or_null``)."""
        n = {"fp": "fp", "mem": "ringbuf_mem", "sock": "sock", "btf": "ptr_"}.get(self.t, self.t)
        return n + ("_or_null" if self.null else "")

    def text(self) -> str:
        """The kernel verifier's notation (Linux 6.18, print_reg_state): ``17``,
        ``scalar(smin=0,...)``, ``fp-16``, ``pkt(r=14)``, ``map_value_or_null(id=1,
        map=counts,ks=4,vs=8)``; ``?`` for a register never written."""
        if self.t == "scalar":
            return self.s.text()
        if self.t == "none":
            return "?"
        if self.t == "fp" and not self.s.mask:
            return f"fp{self.off + s64(self.s.value)}" if self.off or self.s.value else "fp0"
        bits = []
        if self.id:
            bits.append(f"id={self.id}")
        if self.ref:
            bits.append(f"ref_obj_id={self.ref}")
        if self.mp is not None and self.t in ("map_ptr", "map_value"):
            bits.append(f"map={self.mp.name},ks={self.mp.key_size},vs={self.mp.value_size}")
        if self.off:
            bits.append(f"off={self.off}")
        if self.t in ("pkt", "pkt_meta"):
            bits.append(f"r={self.rng}")
        if self.t == "mem":
            bits.append(f"sz={self.size}")
        if self.s.mask:
            bits += sc.ranges_text(self.s)
            if self.s.mask != sc.M64:
                bits.append(f"var_off=({self.s.value:#x}; {self.s.mask:#x})")
        elif self.s.value:
            bits.append(f"imm={self.s.value:x}")
        return f"{self.name()}({','.join(bits)})"


NONE = Reg("none")
UNKNOWN = Reg("scalar", sc.UNKNOWN)


def scalar_reg(s: Scalar) -> Reg:
    return Reg("scalar", s)


Slot = Reg | str  # a spilled register, or 8 characters (lowest address first): ? m 0


@dataclass
class Frame:
    """One function's registers and stack."""

    regs: list[Reg]
    stack: dict[int, Slot]  # 8-byte aligned offset (negative) -> slot
    callsite: int = -1  # where to return in the caller
    depth: int = 0  # deepest stack byte used

    def copy(self) -> Frame:
        return Frame(list(self.regs), dict(self.stack), self.callsite, self.depth)


@dataclass
class State:
    """Everything the verifier knows at one instruction of one path."""

    frames: list[Frame]
    refs: dict[int, int] = field(default_factory=dict)  # ref id -> allocating insn

    def copy(self) -> State:
        return State([f.copy() for f in self.frames], dict(self.refs))

    @property
    def cur(self) -> Frame:
        return self.frames[-1]

    def key(self) -> tuple[object, ...]:
        """Hashable, for exact comparisons (loop detection)."""
        return (
            tuple(
                (tuple(f.regs), tuple(sorted(f.stack.items(), key=lambda kv: kv[0])), f.callsite)
                for f in self.frames
            ),
            tuple(sorted(self.refs.items())),
        )


def tname(v: Reg) -> str:
    return "scalar" if v.t == "scalar" else v.name()


def wmask(w: int) -> int:
    return sc.M64 if w == 64 else sc.M32


def s64(v: int) -> int:
    v &= sc.M64
    return v - (1 << 64) if v >> 63 else v


def stack_byte(frame: Frame, o: int) -> str:
    slot = (o // 8) * 8
    cur = frame.stack.get(slot)
    if cur is None:
        return "?"
    if isinstance(cur, Reg):
        return "m"
    return cur[o - slot]


def set_stack_byte(frame: Frame, o: int, ch: str) -> None:
    slot = (o // 8) * 8
    cur = frame.stack.get(slot)
    if isinstance(cur, Reg):
        cur = "mmmmmmmm"
    elif cur is None:
        cur = "????????"
    i = o - slot
    frame.stack[slot] = cur[:i] + ch + cur[i + 1 :]


def replace_scalar(f: Frame, r: int, old: Reg, s: Scalar) -> None:
    """Give register ``r`` (and equal copies of it? no: only r) the narrowed value."""
    if old.t == "scalar" and r != 10:
        f.regs[r] = Reg("scalar", s)


def mark_null(st: State, rid: int, *, is_null: bool) -> None:
    refs = {r.ref for fr in st.frames for r in fr.regs if r.null and r.id == rid and r.ref}
    for fr in st.frames:
        for i, r in enumerate(fr.regs):
            if r.null and r.id == rid:
                fr.regs[i] = scalar_reg(ZERO) if is_null else replace(r, null=False)
        for o, s in list(fr.stack.items()):
            if isinstance(s, Reg) and s.null and s.id == rid:
                fr.stack[o] = scalar_reg(ZERO) if is_null else replace(s, null=False)
    if is_null:
        for ref in refs:
            st.refs.pop(ref, None)
