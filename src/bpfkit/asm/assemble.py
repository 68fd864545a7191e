"""The assembler's public entry points: both syntaxes.

- :func:`assemble_mnemonic`: the conformance suite's mnemonic syntax (``mov %r0, 1``) to a
  list of :class:`~bpfkit.isa.insn.Insn` (a raw instruction stream, no object file).
"""

from __future__ import annotations

from bpfkit.asm.mnemonic import assemble_mnemonic, format_mnemonic

__all__ = ["assemble_mnemonic", "format_mnemonic"]
