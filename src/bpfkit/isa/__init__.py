"""The eBPF instruction set: one table (:mod:`bpfkit.isa.table`), what each row computes
(:mod:`bpfkit.isa.semantics`), instruction values and their encoding."""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at start-up
if TYPE_CHECKING:
    from typing import Any

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

# name -> the module that owns it, imported on first use: reading an object needs
# bpfkit.isa.insn, not the opcode table (bpfkit.isa.table) that the disassembler, the
# assembler and the VM use.
_LAZY = {
    **dict.fromkeys(
        ("AluOp", "AtomicOp", "CallSrc", "Class", "JmpOp", "Mode", "PseudoSrc", "Size", "Source"),
        "bpfkit.isa.encoding",
    ),
    **dict.fromkeys(
        ("Insn", "decode", "decode_all", "encode_all", "iter_insns", "pack_regs", "unpack_regs"),
        "bpfkit.isa.insn",
    ),
    **dict.fromkeys(
        ("BY_MNEMONIC", "OPS", "Kind", "Op", "forms", "is_valid", "lookup"), "bpfkit.isa.table"
    ),
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
