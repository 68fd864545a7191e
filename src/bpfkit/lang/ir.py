"""The compiler's intermediate form: a linear list of typed-free 64-bit operations on virtual
registers, stack slots and symbols.

Types are settled by the lowering (:mod:`bpfkit.lang.lower`): every value is held in a
64-bit virtual register, already wrapped to its type's width (zero-extended when unsigned,
sign-extended when signed), so the IR needs only the width of each ALU operation
(``w32``) and the extension after it (:class:`Ext`).  Register allocation
(:mod:`bpfkit.lang.regalloc`) maps virtual registers to r6-r9 or stack spill slots; the
emitter (:mod:`bpfkit.lang.emit`) uses r0-r5 as scratch and for helper-call arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(eq=False)
class VReg:
    """A virtual register (64 bits)."""

    id: int
    name: str = ""

    def __repr__(self) -> str:
        return f"v{self.id}" + (f"({self.name})" if self.name else "")


@dataclass(eq=False)
class Slot:
    """Stack memory: ``size`` bytes at an offset below r10, settled by :class:`Frame`.

    ``temp`` slots live only during one statement (map keys, values) and share space.
    """

    size: int
    align: int = 8
    temp_offset: int | None = None  # offset inside the temporaries' area
    offset: int = 0  # from r10 (negative), once laid out


@dataclass(frozen=True)
class MapRef:
    """The address of a map (``lddw rN, map``)."""

    name: str


@dataclass(frozen=True)
class DataRef:
    """The address of a global variable or string (``lddw rN, symbol``)."""

    symbol: str


@dataclass(frozen=True)
class FuncRef:
    """The address of a BPF function in .text (a callback)."""

    name: str


@dataclass(frozen=True)
class FrameAddr:
    """r10 + the slot's offset + ``off``."""

    slot: Slot
    off: int = 0


Operand = VReg | int
Arg = VReg | int | MapRef | DataRef | FuncRef | FrameAddr
Base = VReg | Slot  # memory operands: a pointer register or a stack slot


class Insn:
    """An IR instruction."""


@dataclass
class Mov(Insn):
    dst: VReg
    src: Arg


@dataclass
class Alu(Insn):
    op: str  # add sub mul div sdiv mod smod or and xor lsh rsh arsh
    dst: VReg
    a: Operand
    b: Operand
    w32: bool = False


@dataclass
class Neg(Insn):
    dst: VReg
    a: Operand
    w32: bool = False


@dataclass
class Ext(Insn):
    """Wrap ``src`` to a width: ``u8 u16 u32`` zero-extend, ``s8 s16 s32`` sign-extend."""

    dst: VReg
    src: Operand
    how: str


@dataclass
class Swap(Insn):
    """``dst = be16/be32/be64(src)``: host to network byte order (and back)."""

    dst: VReg
    src: Operand
    bits: int


@dataclass
class Load(Insn):
    dst: VReg
    base: Base
    off: int
    size: int


@dataclass
class Store(Insn):
    base: Base
    off: int
    size: int
    src: Operand


@dataclass
class Atomic(Insn):
    """``lock *(size *)(base + off) op= src`` (op: add, or, and, xor)."""

    op: str
    base: VReg
    off: int
    size: int
    src: Operand


@dataclass
class Call(Insn):
    dst: VReg | None
    helper: int
    args: list[Arg]


@dataclass
class CallLocal(Insn):
    """A call of a BPF function of the object (``call name``, pc-relative)."""

    dst: VReg | None
    name: str
    args: list[Operand]


@dataclass
class Label(Insn):
    name: str


@dataclass
class Jmp(Insn):
    label: str


@dataclass
class Br(Insn):
    """Jump to ``label`` if ``a op b`` (op: eq ne gt ge lt le sgt sge slt sle)."""

    op: str
    a: Operand
    b: Operand
    label: str


@dataclass
class Ret(Insn):
    value: Operand


@dataclass
class Loc(Insn):
    """The Python source position of what follows (line info)."""

    line: int
    column: int


@dataclass
class CoreImm(Insn):
    """``dst = offset`` with a CO-RE field relocation (``access`` of local type ``type_id``)."""

    dst: VReg
    value: int
    type_id: int
    access: str
    kind: int = 0  # FIELD_BYTE_OFFSET


@dataclass
class Function:
    """A compiled function: its IR and frame."""

    name: str
    section: str
    insns: list[Insn] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    ctx: VReg | None = None
    params: list[VReg] = field(default_factory=list)


def uses(insn: Insn) -> list[VReg]:
    """The virtual registers ``insn`` reads."""
    vals: list[object] = []
    if isinstance(insn, Mov):
        vals = [insn.src]
    elif isinstance(insn, Alu):
        vals = [insn.a, insn.b]
    elif isinstance(insn, (Neg,)):
        vals = [insn.a]
    elif isinstance(insn, (Ext, Swap)):
        vals = [insn.src]
    elif isinstance(insn, Load):
        vals = [insn.base]
    elif isinstance(insn, Store):
        vals = [insn.base, insn.src]
    elif isinstance(insn, Atomic):
        vals = [insn.base, insn.src]
    elif isinstance(insn, (Call, CallLocal)):
        vals = list(insn.args)
    elif isinstance(insn, Br):
        vals = [insn.a, insn.b]
    elif isinstance(insn, Ret):
        vals = [insn.value]
    return [v for v in vals if isinstance(v, VReg)]


def defs(insn: Insn) -> list[VReg]:
    """The virtual registers ``insn`` writes."""
    d = getattr(insn, "dst", None)
    return [d] if isinstance(d, VReg) else []
