"""The eBPF instruction set: one table (:mod:`bpfkit.isa.table`), what each row computes
(:mod:`bpfkit.isa.semantics`), instruction values and their encoding."""

from bpfkit.isa.encoding import (
    AluOp,
    AtomicOp,
    CallSrc,
    Class,
    JmpOp,
    Mode,
    PseudoSrc,
    Size,
    Source,
)
from bpfkit.isa.insn import (
    Insn,
    decode,
    decode_all,
    encode_all,
    iter_insns,
    pack_regs,
    unpack_regs,
)
from bpfkit.isa.table import BY_MNEMONIC, OPS, Kind, Op, forms, is_valid, lookup

__all__ = [
    "BY_MNEMONIC",
    "OPS",
    "AluOp",
    "AtomicOp",
    "CallSrc",
    "Class",
    "Insn",
    "JmpOp",
    "Kind",
    "Mode",
    "Op",
    "PseudoSrc",
    "Size",
    "Source",
    "decode",
    "decode_all",
    "encode_all",
    "forms",
    "is_valid",
    "iter_insns",
    "lookup",
    "pack_regs",
    "unpack_regs",
]
