"""The interpreter's fast path (vm/pysource.py: a program as one Python function) against its
closures: the same results, the same VmError, on random programs and the conformance suite."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfkit.asm.assemble import assemble_mnemonic
from bpfkit.errors import VmError
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import OPS, Kind, Op
from bpfkit.vm import Vm, pysource
from bpfkit.vm.conformance import load
from helpers import CONFORMANCE

SUITE = CONFORMANCE


def _outcome(vm: Vm) -> tuple[object, ...]:
    try:
        res = vm.run()
    except VmError as e:
        return ("error", str(e), e.pc, e.address, e.region)
    return ("ok", res.r0, res.packet, res.ctx, res.insns_executed)


def _both(insns: list[Insn], **kw: object) -> tuple[tuple[object, ...], tuple[object, ...], bool]:
    fast = Vm(insns, **kw)  # type: ignore[arg-type]
    slow = Vm(insns, **kw)  # type: ignore[arg-type]
    slow.interpreter.fast = False
    used = pysource.compiled(fast.code, fast.interpreter) is not None
    return _outcome(fast), _outcome(slow), used


@pytest.mark.requires("conformance")
def test_conformance_programs_agree_with_the_closures() -> None:
    translated = 0
    for f in sorted(SUITE.glob("*.data")):
        t = load(f)
        try:
            a, b, used = _both(t.program(), ctx=t.mem or None, maps=t.vm_maps())
        except VmError:
            continue  # refused up front (strict), the same for both
        translated += used
        assert a == b, f.name
    assert translated >= 250  # the common kinds: most of the suite runs the fast path


def _insn(op: Op, dst: int, src: int, off: int, imm: int) -> Insn:
    return Insn(
        op.opcode,
        dst,
        op.src if op.src is not None else src,
        op.off if op.off is not None else off,
        op.imm if op.imm is not None else imm,
        0,
    )


_ROWS = [
    op
    for op in OPS
    if op.kind
    in (Kind.ALU, Kind.NEG, Kind.MOVSX, Kind.ENDIAN, Kind.LOAD, Kind.LOAD_SX, Kind.STORE_IMM)
    or op.kind in (Kind.STORE_REG, Kind.JA, Kind.JCOND)
]
_rows = st.builds(
    _insn,
    st.sampled_from(_ROWS),
    st.integers(0, 10),
    st.integers(0, 10),
    st.one_of(st.integers(-16, 16), st.sampled_from([-512, -8, 60, 63, 2**15 - 1])),
    st.one_of(st.sampled_from([0, 1, -1, 31, 63, 2**31 - 1, -(2**31)]), st.integers(-99, 99)),
)
_starts = st.lists(
    st.builds(lambda d, v: Insn.lddw(d, v), st.integers(0, 9), st.integers(0, 2**64 - 1)),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(head=_starts, body=st.lists(_rows, min_size=1, max_size=30), mem=st.binary(max_size=64))
def test_random_programs_agree_with_the_closures(
    head: list[Insn], body: list[Insn], mem: bytes
) -> None:
    insns = [*head, *body, Insn(0x95)]
    a, b, _ = _both(insns, ctx=mem or None, budget=2_000, strict=False)
    assert a == b


def test_calls_budget_and_depth() -> None:
    calls = "mov %r6, 3\ncall local f\nadd %r0, %r6\nexit\nf:\nmov %r6, 40\nmov %r0, 2\nexit"
    a, b, used = _both(assemble_mnemonic(calls))
    assert used and a == b and a[1] == 5
    loop = "mov %r0, 0\nloop:\nadd %r0, 1\nja loop"
    a, b, used = _both(assemble_mnemonic(loop), budget=1001)
    assert used and a == b and "budget" in str(a[1])
    deep = "call local f\nexit\nf:\ncall local f\nexit"
    a, b, used = _both(assemble_mnemonic(deep))
    assert used and a == b and "call depth" in str(a[1])
