"""Helpers several test modules share (tests/ is on sys.path via conftest: ``import helpers``).

API::

    valid_insn(op_index, dst, src, off, imm, hi) -> Insn  # a row of OPS, unused fields zero
    valid_insns                                         # hypothesis strategy of valid_insn
"""

from __future__ import annotations

from hypothesis import strategies as st

from bpfkit.isa import OPS, Insn
from bpfkit.isa.insn import LDDW_OPCODE


def valid_insn(op_index: int, dst: int, src: int, off: int, imm: int, hi: int) -> Insn:
    """An instruction of row ``OPS[op_index]``: its fixed fields, the rest from the arguments
    where the row uses them, zero where it does not."""
    op = OPS[op_index]
    if op.opcode == LDDW_OPCODE:
        return Insn(op.opcode, dst, op.src or 0, 0, imm, hi)
    return Insn(
        op.opcode,
        dst if "dst" in op.uses else 0,
        op.src if op.src is not None else (src if "src" in op.uses else 0),
        op.off if op.off is not None else (off if "off" in op.uses else 0),
        op.imm if op.imm is not None else (imm if "imm" in op.uses else 0),
    )


valid_insns = st.builds(
    valid_insn,
    st.integers(0, len(OPS) - 1),
    st.integers(0, 10),
    st.integers(0, 10),
    st.integers(-0x8000, 0x7FFF),
    st.integers(-0x80000000, 0x7FFFFFFF),
    st.integers(-0x80000000, 0x7FFFFFFF),
)
