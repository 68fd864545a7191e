"""The assembler's public entry points, for both syntaxes.

- :func:`assemble`: LLVM's BPF assembly (``r0 = *(u32 *)(r1 + 4)``, directives, labels) as
  ``llc``, ``clang -S`` and ``rustc --emit=asm`` write it, to an ELF64 relocatable object.
- :func:`assemble_file`: the same for a file.
- :func:`assemble_mnemonic`: the conformance suite's mnemonic syntax (``mov %r0, 1``) to a
  list of :class:`~bpfkit.isa.insn.Insn` (a raw instruction stream, no object file).

All raise :class:`~bpfkit.errors.AsmError` pointing at file:line:column.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from bpfkit.asm.llvm_asm import assemble_llvm
from bpfkit.errors import AsmError

if TYPE_CHECKING:
    from bpfkit.isa.insn import Insn

__all__ = ["assemble", "assemble_file", "assemble_mnemonic", "format_mnemonic"]


def assemble(text: str, filename: str = "<input>", *, big_endian: bool = False) -> bytes:
    """Assemble LLVM-syntax BPF assembly into an ELF relocatable object (its bytes).

    ``big_endian`` writes a ``bpfeb`` object (like ``llvm-mc -triple bpfeb``).
    """
    return assemble_llvm(text, filename, big_endian=big_endian)


def assemble_file(path: str | os.PathLike[str], *, big_endian: bool = False) -> bytes:
    """Assemble the LLVM-syntax file at ``path`` into an ELF relocatable object."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise AsmError(f"cannot read {name}: {e.strerror}", file=name) from None
    except UnicodeDecodeError as e:
        raise AsmError(f"{name} is not UTF-8 text (byte {e.start})", file=name) from None
    return assemble_llvm(text, name, big_endian=big_endian)


def assemble_mnemonic(text: str, filename: str = "<input>") -> list[Insn]:
    """The conformance suite's mnemonic syntax to instructions (see :mod:`bpfkit.asm.mnemonic`)."""
    from bpfkit.asm import mnemonic  # imported on use: ``bpfkit asm`` of LLVM syntax skips it

    return mnemonic.assemble_mnemonic(text, filename)


def format_mnemonic(insn: Insn) -> str:
    """One instruction in the mnemonic syntax (see :mod:`bpfkit.asm.mnemonic`)."""
    from bpfkit.asm import mnemonic

    return mnemonic.format_mnemonic(insn)
