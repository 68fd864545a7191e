"""Safety: whatever the program and the memory, the VM ends with a result or a VmError,
never another exception, never past its budget.

Two drivers share each check: a seeded random corpus (thousands of cases, cheap to make:
``BPFKIT_SAFETY_SEED`` / ``BPFKIT_SAFETY_COUNT`` change it) and hypothesis (fewer cases,
which it shrinks to a small example when one fails)."""

from __future__ import annotations

import os
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bpfkit.errors import VmError
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import OPS, Op
from bpfkit.vm import ArrayMap, HashMap, RingBuf, Vm
from bpfkit.vm.helpers import helpers_by_id

BUDGET = 5_000
SEED = int(os.environ.get("BPFKIT_SAFETY_SEED", "20261203"))
COUNT = int(os.environ.get("BPFKIT_SAFETY_COUNT", "2000"))


def _check(vm: Vm) -> None:
    try:
        res = vm.run()
    except VmError as e:
        assert "internal error" not in str(e), str(e)
        if "at least 14 bytes" in str(e):  # refused before running, as the kernel does
            return
        assert e.pc is not None
        assert vm.interpreter.executed <= BUDGET
        return
    assert res.insns_executed <= BUDGET
    assert 0 <= res.r0 < 2**64


def _bytes_case(code: bytes, mem: bytes) -> None:
    try:
        vm = Vm(code, ctx=mem or None, budget=BUDGET, strict=False)
    except VmError as e:
        assert "cannot decode" in str(e)  # a truncated lddw
        return
    _check(vm)


@settings(max_examples=200, deadline=None)
@given(
    code=st.binary(min_size=0, max_size=400).map(lambda b: b[: len(b) - len(b) % 8]),
    mem=st.binary(max_size=64),
)
def test_random_bytes_only_vmerror(code: bytes, mem: bytes) -> None:
    _bytes_case(code, mem)


def test_seeded_random_bytes_only_vmerror() -> None:
    rng = random.Random(SEED)
    for _ in range(COUNT):
        code = rng.randbytes(rng.randrange(0, 401) // 8 * 8)
        _bytes_case(code, rng.randbytes(rng.randrange(0, 65)))


def _insn(op: Op, dst: int, src: int, off: int, imm: int, hi: int) -> Insn:
    return Insn(
        op.opcode,
        dst,
        op.src if op.src is not None else src,
        op.off if op.off is not None else off,
        op.imm if op.imm is not None else imm,
        hi if op.opcode == 0x18 else 0,
    )


any_row = st.builds(
    _insn,
    st.sampled_from(OPS),
    st.integers(0, 11),
    st.integers(0, 11),
    st.one_of(st.integers(-8, 8), st.integers(-(2**15), 2**15 - 1)),
    st.one_of(
        st.sampled_from([0, 1, -1, 8, 64, 2**31 - 1, -(2**31)]), st.integers(-(2**31), 2**31 - 1)
    ),
    st.integers(-(2**31), 2**31 - 1),
)


_EMULATED_IDS = sorted(helpers_by_id())
helper_calls = st.builds(lambda h: Insn(0x85, 0, 0, 0, h), st.sampled_from(_EMULATED_IDS))
map_loads = st.builds(
    lambda d, src, fd, off: Insn(0x18, d, src, 0, fd, off),
    st.integers(0, 5),
    st.sampled_from([1, 2]),
    st.integers(0, 3),
    st.integers(0, 20),
)
small_movs = st.builds(lambda d, v: Insn(0xB7, d, 0, 0, v), st.integers(1, 5), st.integers(-4, 300))
insns = st.one_of(any_row, any_row, helper_calls, map_loads, small_movs)


KINDS = ["", "xdp", "socket_filter", "kprobe"]


def _program_case(prog: list[Insn], mem: bytes, packet: bytes | None, kind: str) -> None:
    maps = {
        0: ArrayMap("a", 4, 16, 4),
        1: HashMap("h", 8, 8, 4),
        2: RingBuf("r", 256),
    }
    for strict in (True, False):
        try:
            vm = Vm(
                prog,
                ctx=mem or None,
                packet=packet,
                prog_type=kind,
                maps=maps,
                budget=BUDGET,
                strict=strict,
            )
        except VmError as e:
            assert strict and e.pc is not None and "invalid program" in str(e)
            continue
        _check(vm)


@settings(max_examples=200, deadline=None)
@given(
    prog=st.lists(insns, min_size=1, max_size=40),
    mem=st.binary(max_size=64),
    packet=st.one_of(st.none(), st.binary(max_size=80)),
    kind=st.sampled_from(KINDS),
)
def test_random_valid_instructions_only_vmerror(
    prog: list[Insn], mem: bytes, packet: bytes | None, kind: str
) -> None:
    _program_case(prog, mem, packet, kind)


_SPECIAL_IMMS = [0, 1, -1, 8, 64, 2**31 - 1, -(2**31)]


def _random_insn(rng: random.Random) -> Insn:
    """One instruction drawn as the strategy ``insns`` draws it (rows twice as often)."""
    pick = rng.randrange(5)
    if pick < 2:  # any row of the table, fields anywhere in range
        off = rng.randint(-8, 8) if rng.random() < 0.5 else rng.randint(-(2**15), 2**15 - 1)
        imm = rng.choice(_SPECIAL_IMMS) if rng.random() < 0.5 else rng.randint(-(2**31), 2**31 - 1)
        return _insn(
            rng.choice(OPS),
            rng.randint(0, 11),
            rng.randint(0, 11),
            off,
            imm,
            rng.randint(-(2**31), 2**31 - 1),
        )
    if pick == 2:
        return Insn(0x85, 0, 0, 0, rng.choice(_EMULATED_IDS))
    if pick == 3:
        return Insn(
            0x18, rng.randint(0, 5), rng.choice([1, 2]), 0, rng.randint(0, 3), rng.randint(0, 20)
        )
    return Insn(0xB7, rng.randint(1, 5), 0, 0, rng.randint(-4, 300))


def test_seeded_random_valid_instructions_only_vmerror() -> None:
    rng = random.Random(SEED)
    for _ in range(COUNT):
        prog = [_random_insn(rng) for _ in range(rng.randint(1, 40))]
        mem = rng.randbytes(rng.randrange(0, 65))
        packet = None if rng.random() < 0.5 else rng.randbytes(rng.randrange(0, 81))
        _program_case(prog, mem, packet, rng.choice(KINDS))
