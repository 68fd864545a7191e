"""Field values of the eBPF opcode byte, as RFC 9669 (the kernel's instruction-set document) defines them.

The opcode byte is ``class`` (low 3 bits) plus, for ALU/JMP classes, ``source`` (bit 3)
and ``operation`` (high 4 bits), or, for load/store classes, ``size`` (bits 3-4) and
``mode`` (high 3 bits).
"""

from __future__ import annotations

from enum import IntEnum


class Class(IntEnum):
    """Instruction class: the low three bits of the opcode."""

    LD = 0x00
    LDX = 0x01
    ST = 0x02
    STX = 0x03
    ALU = 0x04
    JMP = 0x05
    JMP32 = 0x06
    ALU64 = 0x07


class Source(IntEnum):
    """Bit 3 of ALU/JMP opcodes: immediate (K) or register (X) operand; for END: to-LE or to-BE."""

    K = 0x00
    X = 0x08


class AluOp(IntEnum):
    """The operation nibble of ALU and ALU64 opcodes."""

    ADD = 0x00
    SUB = 0x10
    MUL = 0x20
    DIV = 0x30
    OR = 0x40
    AND = 0x50
    LSH = 0x60
    RSH = 0x70
    NEG = 0x80
    MOD = 0x90
    XOR = 0xA0
    MOV = 0xB0
    ARSH = 0xC0
    END = 0xD0


class JmpOp(IntEnum):
    """The operation nibble of JMP and JMP32 opcodes."""

    JA = 0x00
    JEQ = 0x10
    JGT = 0x20
    JGE = 0x30
    JSET = 0x40
    JNE = 0x50
    JSGT = 0x60
    JSGE = 0x70
    CALL = 0x80
    EXIT = 0x90
    JLT = 0xA0
    JLE = 0xB0
    JSLT = 0xC0
    JSLE = 0xD0
    JCOND = 0xE0


class Size(IntEnum):
    """Access size bits of load/store opcodes."""

    W = 0x00
    H = 0x08
    B = 0x10
    DW = 0x18


SIZE_BYTES = {Size.W: 4, Size.H: 2, Size.B: 1, Size.DW: 8}
SIZE_SUFFIX = {Size.W: "w", Size.H: "h", Size.B: "b", Size.DW: "dw"}


class Mode(IntEnum):
    """Mode bits of load/store opcodes."""

    IMM = 0x00
    ABS = 0x20
    IND = 0x40
    MEM = 0x60
    MEMSX = 0x80
    ATOMIC = 0xC0


class AtomicOp(IntEnum):
    """The ``imm`` of an atomic instruction (``BPF_STX | BPF_ATOMIC``)."""

    ADD = 0x00
    OR = 0x40
    AND = 0x50
    XOR = 0xA0
    FETCH = 0x01
    XCHG = 0xE0 | 0x01
    CMPXCHG = 0xF0 | 0x01
    LOAD_ACQ = 0x100
    STORE_REL = 0x110


class PseudoSrc(IntEnum):
    """``src`` of a ``lddw`` (BPF_LD | BPF_IMM | BPF_DW): what the 64-bit immediate means."""

    IMM64 = 0
    MAP_FD = 1
    MAP_VALUE = 2
    BTF_ID = 3
    FUNC = 4
    MAP_IDX = 5
    MAP_IDX_VALUE = 6


class CallSrc(IntEnum):
    """``src`` of a call: helper by id, local (bpf-to-bpf) call, or kfunc by BTF id."""

    HELPER = 0
    LOCAL = 1
    KFUNC = 2


CLASS_MASK = 0x07
SOURCE_MASK = 0x08
OP_MASK = 0xF0
SIZE_MASK = 0x18
MODE_MASK = 0xE0


def op_class(opcode: int) -> Class:
    """The class of an opcode byte."""
    return Class(opcode & CLASS_MASK)


def is_alu_or_jmp(opcode: int) -> bool:
    """True for ALU, ALU64, JMP and JMP32 opcodes (which have source and operation fields)."""
    return (opcode & CLASS_MASK) in (Class.ALU, Class.ALU64, Class.JMP, Class.JMP32)
