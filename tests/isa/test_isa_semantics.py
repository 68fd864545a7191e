"""The one definition of what instructions compute (isa/semantics.py): its backends agree,
and its rules are the kernel's (the conformance suite checks them end to end)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bpfkit.isa import semantics
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import OPS, Kind

_VALUE_ROWS = [
    op for op in OPS if op.kind in (Kind.ALU, Kind.NEG, Kind.MOVSX, Kind.ENDIAN, Kind.JCOND)
]
_EDGES = [0, 1, 2, 31, 32, 63, 64, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 2**63, 2**64 - 1]
_U64 = st.one_of(st.sampled_from(_EDGES), st.integers(0, 2**64 - 1))


def test_every_value_row_has_an_expression() -> None:
    for op in _VALUE_ROWS:
        e = semantics.expr(op)
        assert semantics.width(op) in (32, 64)
        assert semantics.count(e, "A") or semantics.count(e, "B"), op.mnemonic


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_VALUE_ROWS), _U64, _U64)
def test_python_source_computes_what_evaluate_does(op: object, a: int, b: int) -> None:
    from bpfkit.isa.table import Op

    assert isinstance(op, Op)
    w = semantics.width(op)
    m = semantics.mask(w)
    want = semantics.compute(op, a, b)
    e = semantics.expr(op)
    ns = dict(semantics.PY_NAMESPACE)
    named = eval(semantics.to_python(e, w, "x", "y"), ns, {"x": a & m, "y": b & m})  # noqa: S307
    assert int(named) == want
    # Known operands are folded to a literal; one known operand is folded where it appears.
    assert int(semantics.to_python(e, w, a, b)) == want
    half = eval(semantics.to_python(e, w, "x", b & m), ns, {"x": a & m})  # noqa: S307
    assert int(half) == want


def test_kernel_rules() -> None:
    def alu(mn: str, a: int, b: int) -> int:
        op = next(o for o in OPS if o.mnemonic == mn and o.source == "reg")
        regs = [a, b]
        return semantics.compute(op, *semantics.operands(op, Insn(op.opcode, 0, 1), regs))

    assert alu("div", 7, 0) == 0
    assert alu("mod32", 0x1_0000_0007, 0) == 7  # 32-bit mod by zero keeps dst's low half
    assert alu("sdiv", 2**63, 2**64 - 1) == 2**63  # INT_MIN / -1 wraps
    assert alu("smod", 2**63, 2**64 - 1) == 0
    assert alu("sdiv32", 2**32 - 7, 2) == 2**32 - 3  # truncates toward zero
    assert alu("lsh", 1, 65) == 2  # shift counts are masked
    assert alu("arsh32", 0x8000_0000, 31) == 0xFFFF_FFFF
    assert alu("jsgt", 1, 2**64 - 1) == 1
    assert alu("jset32", 2**32, 2**32) == 0  # 32-bit jumps compare the low halves
