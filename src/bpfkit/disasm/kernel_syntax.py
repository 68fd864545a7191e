"""Instructions as the kernel prints them: the verifier log and ``bpftool prog dump xlated``.

Both come from the kernel's ``kernel/bpf/disasm.c`` (bpftool compiles the same file): every
line starts with the opcode byte in hex, ``(b7) r1 = 0``; immediates are signed decimal
except in conditional jumps (``if r1 == 0x0 goto pc+3``) and ``lddw`` (``r1 = 0x...``);
memory offsets are printed ``%+d`` (``*(u64 *)(r10 -24) = r1``); jumps are relative
(``goto pc+3``); helper calls are ``call bpf_trace_printk#6``.

The text is derived from the ISA table row of each instruction (:mod:`bpfkit.isa.table`):
its kind, semantics key and access size, and the operator of its LLVM template.
"""

from __future__ import annotations

from collections.abc import Callable

from bpfkit.isa.insn import Insn
from bpfkit.isa.table import Kind, Op, lookup
from bpfkit.uapi.helpers import by_id

_CTYPE = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}
# disasm.c's bpf_atomic_alu_string, indexed by the ISA table's semantics key.
_ATOMIC_NAME = {"add": "add", "or": "or", "and": "and", "xor": "xor"}


def _operator(op: Op) -> str:
    """The operator token of an ALU or conditional-jump row's LLVM template (``+=``, ``s<``)."""
    tokens = op.llvm.split()
    return tokens[2] if op.kind is Kind.JCOND else tokens[1]


def _pc(off: int) -> str:
    return f"pc{off:+d}"


def _mem(size: int, reg: int, off: int, signed: bool = False) -> str:
    ctype = f"s{size * 8}" if signed else _CTYPE[size]
    return f"*({ctype} *)(r{reg} {off:+d})"


def format_kernel(
    insn: Insn,
    *,
    imm_name: Callable[[Insn], str | None] | None = None,
) -> str:
    """One instruction in kernel syntax, ``(b7) r1 = 0``.

    ``imm_name`` may name an ``lddw`` immediate (bpftool prints ``map[id:5]`` for a map;
    pass a function returning the text to use, or ``None`` to print the number).
    Unknown instructions print as the kernel does: ``(ff) BUG_ff``-style, here
    ``(ff) unknown opcode``.
    """
    head = f"({insn.opcode:02x}) "
    op = lookup(insn)
    if op is None:
        return head + f"unknown instruction (opcode {insn.opcode:#04x}, src {insn.src})"
    return head + _body(insn, op, imm_name)


def _body(insn: Insn, op: Op, imm_name: Callable[[Insn], str | None] | None) -> str:
    k = op.kind
    d, s = insn.dst, insn.src
    w = "w" if op.width == 32 else "r"
    if k is Kind.ALU:
        rhs = f"{w}{s}" if op.source == "reg" else str(insn.imm)
        return f"{w}{d} {_operator(op)} {rhs}"
    if k is Kind.NEG:
        return f"{w}{d} = -{w}{d}"
    if k is Kind.MOVSX:
        return f"{w}{d} = (s{insn.off}){w}{s}"
    if k is Kind.ADDR_SPACE_CAST:
        return f"r{d} = addr_space_cast(r{s}, {(insn.imm >> 16) & 0xFFFF}, {insn.imm & 0xFFFF})"
    if k is Kind.ENDIAN:
        return f"r{d} = {op.key}{insn.imm} r{d}"
    if k is Kind.LDDW:
        named = imm_name(insn) if imm_name else None
        return f"r{d} = {named if named is not None else hex(insn.imm64)}"
    if k is Kind.LD_ABS:
        return f"r0 = *({_CTYPE[op.size]} *)skb[{insn.imm}]"
    if k is Kind.LD_IND:
        return f"r0 = *({_CTYPE[op.size]} *)skb[r{s} + {insn.imm}]"
    if k is Kind.LOAD:
        return f"r{d} = {_mem(op.size, s, insn.off)}"
    if k is Kind.LOAD_SX:
        return f"r{d} = {_mem(op.size, s, insn.off, signed=True)}"
    if k is Kind.STORE_IMM:
        return f"{_mem(op.size, d, insn.off)} = {insn.imm}"
    if k is Kind.STORE_REG:
        return f"{_mem(op.size, d, insn.off)} = r{s}"
    if k in (Kind.ATOMIC, Kind.LOAD_ACQ, Kind.STORE_REL):
        return _atomic(insn, op)
    if k is Kind.JA:
        return f"gotol {_pc(insn.imm)}" if op.width == 32 else f"goto {_pc(insn.off)}"
    if k is Kind.JCOND:
        rhs = f"{w}{s}" if op.source == "reg" else f"{insn.imm & 0xFFFFFFFF:#x}"
        return f"if {w}{d} {_operator(op)} {rhs} goto {_pc(insn.off)}"
    if k is Kind.MAY_GOTO:
        return f"may_goto {_pc(insn.off)}"
    if k is Kind.GOTOX:
        return f"gotox r{d}"
    if k is Kind.CALL:
        if op.key == "local":
            return f"call {_pc(insn.imm)}"
        if op.key == "kfunc":
            return "call kernel-function"
        h = by_id(insn.imm)
        return f"call {h.name}#{insn.imm}" if h else f"call unknown#{insn.imm}"
    if k is Kind.CALLX:
        return f"call r{d}"
    return "exit"


def _atomic(insn: Insn, op: Op) -> str:
    d, s, size = insn.dst, insn.src, op.size
    where = f"({_CTYPE[size]} *)(r{d} {insn.off:+d})"
    bits = "64" if size == 8 else ""
    if op.kind is Kind.LOAD_ACQ:
        return f"r{d} = load_acquire({where})"
    if op.kind is Kind.STORE_REL:
        return f"store_release({where}, r{s})"
    if op.key in _ATOMIC_NAME:
        return f"lock *{where} {_atomic_op(op)} r{s}"
    if op.key.startswith("fetch_"):
        return f"r{s} = atomic{bits}_fetch_{op.key.removeprefix('fetch_')}({where}, r{s})"
    if op.key == "xchg":
        return f"r{s} = atomic{bits}_xchg({where}, r{s})"
    return f"r0 = atomic{bits}_cmpxchg({where}, r0, r{s})"


def _atomic_op(op: Op) -> str:
    # The LLVM template is "lock *(u64 *)({rd} {off}) += {rs}": the operator is 2nd from the end.
    return op.llvm.split()[-2]
