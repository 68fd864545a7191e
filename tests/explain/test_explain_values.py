"""The abstract interpreter (explain/values.py): constants it claims agree with a real
execution (the userspace VM), stack bytes are kept in memory order, branches join."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfkit.errors import BpfkitError
from bpfkit.explain.purpose import purposes
from bpfkit.explain.values import State, Value, analyze, join, slot_indices
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import OPS, Kind
from bpfkit.vm import run_program
from bpfkit.vm.conformance import load
from helpers import CONFORMANCE

_ALU_OPS = [op for op in OPS if op.kind in (Kind.ALU, Kind.NEG, Kind.MOVSX, Kind.ENDIAN)]
_JCOND = [op for op in OPS if op.kind is Kind.JCOND]
_REG = st.integers(0, 5)


@st.composite
def programs(draw: st.DrawFn) -> list[Insn]:
    """Registers r0-r5 set to random constants, random ALU ops and short forward
    conditional jumps among them, then ``r0 = rN; exit``."""
    insns = [Insn.lddw(r, draw(st.integers(0, 2**64 - 1))) for r in range(6)]
    body: list[Insn] = []
    for _ in range(draw(st.integers(1, 12))):
        if draw(st.integers(0, 4)) == 0:
            op = draw(st.sampled_from(_JCOND))
            skip = draw(st.integers(0, 2))
            src = draw(_REG) if op.source == "reg" else 0
            imm = draw(st.integers(-20, 20)) if op.source == "imm" else 0
            body.append(Insn(op.opcode, draw(_REG), src, skip, imm))
            continue
        op = draw(st.sampled_from(_ALU_OPS))
        src = op.src if op.src is not None else (draw(_REG) if "src" in op.uses else 0)
        off = op.off if op.off is not None else 0
        imm = (
            op.imm
            if op.imm is not None
            else (draw(st.integers(-(2**31), 2**31 - 1)) if "imm" in op.uses else 0)
        )
        if op.key in ("lsh", "rsh", "arsh") and op.source == "imm":
            imm &= op.width - 1  # the verifier rejects larger constant shifts
        body.append(Insn(op.opcode, draw(_REG), src, off, imm))
    # Jumps may skip at most to the end of the body.
    fixed = []
    for i, insn in enumerate(body):
        if insn.opcode & 0x07 in (0x05, 0x06):
            insn = Insn(insn.opcode, insn.dst, insn.src, min(insn.off, len(body) - 1 - i), insn.imm)
        fixed.append(insn)
    out = draw(_REG)
    return insns + fixed + [Insn(0xBF, 0, out), Insn(0x95)]


@settings(max_examples=300, deadline=None)
@given(programs())
def test_constants_agree_with_the_vm(insns: list[Insn]) -> None:
    a = analyze(insns)
    exit_state = a.before[-1]
    assert exit_state is not None
    r0 = exit_state.reg(0)
    vm = run_program(insns).r0
    # All inputs are known and branches on constants are decided, so r0 must be known.
    assert r0.is_const, r0
    assert r0.const == vm & 0xFFFFFFFFFFFFFFFF


def test_stack_bytes_in_memory_order() -> None:
    insns = [
        Insn.lddw(1, 0x0A74737572206D6F),
        Insn(0x7B, 10, 1, -24),  # *(u64 *)(r10 - 24) = r1
        Insn(0x62, 10, 0, -28, 0x6C6C6568),  # *(u32 *)(r10 - 28) = "hell"
        Insn(0x61, 2, 10, -24),  # w2 = *(u32 *)(r10 - 24)
        Insn(0x95),
    ]
    a = analyze(insns)
    after = a.after[2]
    assert after is not None
    assert after.stack_bytes(-28, 12) == b"hellom rust\n"
    assert after.stack_runs() == [(-28, b"hellom rust\n", 12)]
    st3 = a.after[3]
    assert st3 is not None and st3.reg(2) == Value.scalar(0x72206D6F)


def test_spilled_pointer_reloads() -> None:
    insns = [
        Insn(0xBF, 6, 10),  # r6 = r10
        Insn(0x07, 6, 0, 0, -16),  # r6 += -16
        Insn(0x7B, 10, 6, -8),  # *(u64 *)(r10 - 8) = r6
        Insn(0x79, 7, 10, -8),  # r7 = *(u64 *)(r10 - 8)
        Insn(0x79, 8, 1, 0),  # r8 = *(u64 *)(r1 + 0): a context field
        Insn(0x95),
    ]
    a = analyze(insns)
    st = a.after[4]
    assert st is not None
    assert st.reg(7) == Value.ptr("stack", -16) and st.reg(7).describe() == "fp-16"
    assert st.reg(8) == Value.scalar()
    assert st.reg(1).describe() == "ctx"


def test_branches_join_and_null_checks() -> None:
    insns = [
        Insn.lddw(1, 0, src=1),  # r1 = map (pseudo map fd)
        Insn(0xBF, 2, 10),  # r2 = r10
        Insn(0x07, 2, 0, 0, -4),  # r2 += -4
        Insn(0x85, 0, 0, 0, 1),  # call bpf_map_lookup_elem
        Insn(0x15, 0, 0, 2, 0),  # if r0 == 0 goto +2
        Insn(0xB7, 3, 0, 0, 7),  # r3 = 7
        Insn(0x05, 0, 0, 1, 0),  # goto +1
        Insn(0xB7, 3, 0, 0, 7),  # r3 = 7   (other path, same value)
        Insn(0xB7, 4, 0, 0, 1),  # r4 = 1   (merge point)
        Insn(0x95),
    ]
    a = analyze(insns)
    call_after = a.after[3]
    assert call_after is not None
    r0 = call_after.reg(0)
    assert r0.base == "map value" and r0.maybe_null
    assert call_after.reg(1) == Value.uninit()  # helpers clobber r1-r5
    not_null = a.before[5]
    assert not_null is not None and not not_null.reg(0).maybe_null
    null = a.before[7]
    assert null is not None and null.reg(0) == Value.scalar(0)
    merged = a.before[8]
    assert merged is not None
    assert merged.reg(3) == Value.scalar(7)  # both paths agree
    assert merged.reg(0) == Value.scalar()  # pointer on one path, 0 on the other


def test_loops_reach_a_fixed_point() -> None:
    insns = [
        Insn(0xB7, 1, 0, 0, 0),  # r1 = 0
        Insn(0x07, 1, 0, 0, 1),  # r1 += 1
        Insn(0xA5, 1, 0, -2, 10),  # if r1 < 10 goto -2
        Insn(0xBF, 0, 1),
        Insn(0x95),
    ]
    a = analyze(insns)
    st = a.before[4]
    assert st is not None and st.reg(0) == Value.scalar()  # joined: not one constant
    assert all(s is not None for s in a.before)


def test_unreached_code_has_no_state() -> None:
    insns = [Insn(0x05, off=1), Insn(0xB7, 0, 0, 0, 1), Insn(0x95)]
    a = analyze(insns)
    assert a.before[1] is None and a.before[2] is not None


def test_join() -> None:
    assert join(Value.scalar(1), Value.scalar(1)) == Value.scalar(1)
    assert join(Value.scalar(1), Value.scalar(2)) == Value.scalar()
    assert join(Value.ptr("stack", -8), Value.ptr("stack", -16)) == Value.ptr("stack", None)
    assert join(Value.ptr("stack", -8), Value.uninit()) == Value.uninit()
    assert State.entry().reg(10).describe() == "fp"


SUITE = CONFORMANCE


@pytest.mark.requires("conformance")
def test_known_results_agree_with_the_conformance_suite() -> None:
    # An external oracle: wherever the analysis claims r0 is a constant at every reachable
    # exit, the suite's expected result must be one of those constants.  The memory the
    # suite passes in r1 is treated as unknown (the program may write it).
    claimed = 0
    for path in sorted(SUITE.glob("*.data")):
        test = load(path)
        if test.result is None:
            continue
        try:
            prog = test.program()
        except BpfkitError:
            continue
        r1 = Value.ptr("mem", 0) if test.mem else Value.scalar()
        entry = State.entry(r1).set(r2=Value.scalar(len(test.mem)))
        a = analyze(prog, entry)
        exits = [a.before[i] for i, insn in enumerate(prog) if insn.opcode == 0x95]
        r0s = [s.reg(0) for s in exits if s is not None]
        if r0s and all(v.is_const for v in r0s):
            claimed += 1
            assert test.result in {v.const for v in r0s}, path.name
    assert claimed > 200  # 253 of the 313 files on the suite of 2025


def test_store_at_unknown_stack_offset_forgets_bytes() -> None:
    insns = [
        Insn(0x7A, 10, 0, -8, 0x41),  # *(u64 *)(r10 - 8) = 0x41
        Insn(0x79, 2, 1, 0),  # r2 = *(u64 *)(r1 + 0): unknown
        Insn(0xBF, 3, 10),  # r3 = r10
        Insn(0x0F, 3, 2),  # r3 += r2: fp + unknown
        Insn(0x72, 3, 0, -1, 0),  # *(u8 *)(r3 - 1) = 0
        Insn(0x95),
    ]
    a = analyze(insns)
    st0, st4 = a.after[0], a.after[4]
    assert st0 is not None and st0.stack_bytes(-8, 8) == b"A" + bytes(7)
    assert st4 is not None and st4.stack_bytes(-8, 1) is None
    assert st4.reg(3).describe() == "fp + unknown offset"


def test_purposes_name_call_arguments_and_stop_at_other_writes() -> None:
    insns = [
        Insn(0xB7, 0, 0, 0, 7),  # 0: r0 = 7          (cmpxchg's compare value, not stored)
        Insn(0xB7, 1, 0, 0, 9),  # 1: r1 = 9
        Insn(0xDB, 10, 1, -8, 0xF1),  # 2: r0 = cmpxchg_64(r10 - 8, r0, r1)
        Insn(0x7B, 10, 0, -16),  # 3: *(u64 *)(r10 - 16) = r0
        Insn(0xBF, 1, 10),  # 4: r1 = r10
        Insn(0x07, 1, 0, 0, -16),  # 5: r1 += -16
        Insn(0xB7, 2, 0, 0, 8),  # 6: r2 = 8
        Insn(0x85, 0, 0, 0, 6),  # 7: call bpf_trace_printk
        Insn(0xB7, 0, 0, 0, 0),  # 8: r0 = 0
        Insn(0x95),  # 9: exit
    ]
    why = purposes(insns, slot_indices(insns))
    assert 0 not in why  # the cmpxchg at 2 rewrites r0 before the store at 3 reads it
    assert why[5] == [
        "r1 is argument 1 (fmt, const char *) of the call to bpf_trace_printk at instruction 7."
    ]
    assert why[6][0].startswith("r2 is argument 2 (fmt_size, __u32)")
    assert why[8] == ["r0 is the return value (exit at instruction 9)."]
    assert 4 not in why  # r1 = r10 is overwritten by the add before the call reads it
