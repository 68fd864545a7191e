"""The compiling engine (vm/jit.py) against the interpreter and the conformance suite: the same
answers, the same VmError (pc, instruction, address, region), never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfkit.asm.assemble import assemble_mnemonic
from bpfkit.errors import VmError
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import OPS, Kind, Op
from bpfkit.vm import ArrayMap, Vm
from bpfkit.vm.conformance import load, run_test
from helpers import CONFORMANCE

pytestmark = pytest.mark.requires("llvmlite")

SUITE = CONFORMANCE


@pytest.mark.requires("conformance")
def test_conformance_suite_through_the_jit() -> None:
    files = sorted(SUITE.glob("*.data"))
    assert len(files) >= 313
    failed = [str(o) for o in (run_test(load(f), engine="jit") for f in files) if not o.passed]
    assert not failed, "\n".join(failed)


@pytest.mark.requires("conformance")
def test_conformance_plugin_engine_jit() -> None:
    import shutil
    import subprocess
    import sys

    from bpfkit.isa.insn import encode_all

    plugin = shutil.which("bpfkit-conformance-plugin") or str(
        Path(sys.executable).parent / "bpfkit-conformance-plugin"
    )
    for name in ("alu64-arith.data", "call_local.data", "callx.data", "lock_cmpxchg.data"):
        t = load(SUITE / name)
        code = " ".join(f"{b:02x}" for b in encode_all(t.program()))
        mem = [" ".join(f"{b:02x}" for b in t.mem)] if t.mem else []
        out = subprocess.run(
            [plugin, *mem, "--engine", "jit", "--debug", "--program", code],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert int(out.stdout.strip(), 16) == t.result


def _outcome(vm: Vm) -> tuple[object, ...]:
    try:
        res = vm.run()
    except VmError as e:
        return ("error", str(e), e.pc, e.address, e.region)
    return ("ok", res.r0, res.packet, res.ctx, res.insns_executed)


def _optimized(vm: Vm) -> Vm:
    """``vm`` running the JIT's optimizing tier (inline checks, region guesses) from the start."""
    assert vm._jit is not None
    vm._jit.prepare(vm.code, optimize=True)
    return vm


def _both(insns: list[Insn], **kw: object) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """The interpreter's outcome and the JIT's, the same in both of its tiers."""
    a = Vm(insns, engine="interp", **kw)  # type: ignore[arg-type]
    b = Vm(insns, engine="jit", **kw)  # type: ignore[arg-type]
    assert b.engine == "jit"
    fast = _outcome(b)
    assert _outcome(_optimized(Vm(insns, engine="jit", **kw))) == fast  # type: ignore[arg-type]
    return _outcome(a), fast


ADVERSARIAL = {
    "out of bounds": "ldxdw %r0, [%r1+60]\nexit",
    "negative offset": "ldxb %r0, [%r1-1]\nexit",
    "wrap-around": "lddw %r2, 0xffffffffffffffff\nldxb %r0, [%r2+2]\nexit",
    "forged pointer": "lddw %r2, 0x2000000010\nstxdw [%r2], %r1\nmov %r0, 0\nexit",
    "stack below": "stdw [%r10-520], 1\nmov %r0, 0\nexit",
    "stack above": "ldxw %r0, [%r10]\nexit",
    "frame pointer of the caller": (
        "mov %r6, %r10\ncall local f\nexit\nf:\nldxdw %r0, [%r6-8]\nstxdw [%r6-8], %r0\nexit"
    ),
    "deep calls": "call local f\nexit\nf:\ncall local f\nexit",
    "infinite loop": "mov %r0, 0\nloop:\nadd %r0, 1\nja loop",
    "null": "mov %r2, 0\nldxw %r0, [%r2]\nexit",
    "code address": "lddw %r2, 0xfffff00000000000\nldxw %r0, [%r2]\nexit",
    "fall off the end": "mov %r0, 1",
    # r10 written: r10-relative accesses are no longer proven in bounds
    "r10 moved": "mov %r10, %r1\nstdw [%r10-8], 1\nldxdw %r0, [%r10-8]\nexit",
    "r10 moved up": "add %r10, 8\nstdw [%r10-8], 1\nmov %r0, 0\nexit",
    # a stack pointer in a register: the stack guess misses, the table lookup decides
    "stack pointer past the top": "mov %r2, %r10\nadd %r2, -4\nstxdw [%r2+0], %r1\nexit",
    "stack pointer below": "mov %r2, %r10\nadd %r2, -520\nldxb %r0, [%r2+0]\nexit",
    "stack pointer to the context": (
        "mov %r2, %r10\nsub %r2, %r10\nadd %r2, %r1\nldxdw %r0, [%r2+56]\nexit"
    ),
    "callee's stack through a pointer": (
        "call local f\nexit\nf:\nmov %r2, %r10\nadd %r2, -16\nstxdw [%r2+8], %r10\n"
        "ldxdw %r0, [%r2+8]\nldxdw %r0, [%r2+9]\nexit"
    ),
    "read-only region": "lddw %r2, 0xfffff00000000000\nstw [%r2], 1\nexit",
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_programs_fault_the_same_way(name: str) -> None:
    insns = assemble_mnemonic(ADVERSARIAL[name])
    a, b = _both(insns, ctx=bytes(range(64)), budget=10_000, strict=False)
    assert a == b
    works = ("forged pointer", "frame pointer of the caller", "stack pointer to the context")
    assert a[0] == "error" or name in works, a


def _insn(op: Op, dst: int, src: int, off: int, imm: int) -> Insn:
    return Insn(
        op.opcode,
        dst,
        op.src if op.src is not None else src,
        op.off if op.off is not None else off,
        op.imm if op.imm is not None else imm,
        0,
    )


_NATIVE_ROWS = [
    op
    for op in OPS
    if op.kind
    in (Kind.ALU, Kind.NEG, Kind.MOVSX, Kind.ENDIAN, Kind.LOAD, Kind.LOAD_SX, Kind.STORE_IMM)
    or op.kind in (Kind.STORE_REG, Kind.ATOMIC, Kind.JA, Kind.JCOND)
]
_rows = st.builds(
    _insn,
    st.sampled_from(_NATIVE_ROWS),
    st.integers(0, 10),
    st.integers(0, 10),
    st.one_of(st.integers(-16, 16), st.sampled_from([-512, -8, 60, 63, 2**15 - 1])),
    st.one_of(st.sampled_from([0, 1, -1, 31, 63, 2**31 - 1, -(2**31)]), st.integers(-99, 99)),
)
_starts = st.lists(
    st.builds(lambda d, v: Insn.lddw(d, v), st.integers(0, 9), st.integers(0, 2**64 - 1)),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(
    head=_starts,
    body=st.lists(_rows, min_size=1, max_size=30),
    mem=st.binary(min_size=0, max_size=64),
)
def test_engines_agree_on_random_programs(head: list[Insn], body: list[Insn], mem: bytes) -> None:
    insns = [*head, *body, Insn(0x95)]
    a, b = _both(insns, ctx=mem or None, budget=2_000, strict=False)
    assert a == b


def test_local_calls_helpers_and_maps_agree() -> None:
    text = """
        mov %r6, 0
    loop:
        stw [%r10-4], 0
        mov %r2, %r10
        add %r2, -4
        lddw %r1, map_by_fd(0)
        call 1
        jeq %r0, 0, out
        ldxdw %r3, [%r0]
        add %r3, %r6
        stxdw [%r0], %r3
        mov %r1, %r6
        call local double
        add %r6, 1
        jlt %r6, 10, loop
    out:
        mov %r0, %r6
        exit
    double:
        mov %r0, %r1
        lsh %r0, 1
        stxdw [%r10-8], %r0
        ldxdw %r0, [%r10-8]
        exit
    """
    insns = assemble_mnemonic(text.replace("map_by_fd(0)", "0"))
    insns = [Insn(0x18, i.dst, 1, 0, 0) if i.opcode == 0x18 else i for i in insns]
    results = []
    for engine in ("interp", "jit"):
        arr = ArrayMap("a", 4, 8, 1)
        vm = Vm(insns, maps={0: arr}, engine=engine)
        res = vm.run()
        results.append((res.r0, res.insns_executed, arr.get(0)))
    assert results[0] == results[1]
    assert results[0][0] == 10 and int.from_bytes(results[0][2], "little") == 45


def test_auto_falls_back_and_says_why_once(capsys: pytest.CaptureFixture[str]) -> None:
    insns = assemble_mnemonic("mov %r0, 0\nmay_goto +0\nexit")
    assert Vm(insns, engine="auto").engine == "interp"
    assert Vm(insns, engine="auto").run().r0 == 0
    err = capsys.readouterr().err
    assert err.count("runs the interpreter") <= 1
    with pytest.raises(VmError, match="JIT cannot run"):
        Vm(insns, engine="jit")
    assert Vm(assemble_mnemonic("mov %r0, 3\nexit"), engine="auto").engine == "jit"


def test_run_many_gives_each_runs_r0_in_both_forms() -> None:
    text = """
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r4, %r2
        add %r4, 20
        jgt %r4, %r3, short
        ldxw %r0, [%r2+0]
        exit
    short:
        mov %r0, 7
        exit
    """
    insns = assemble_mnemonic(text)
    packets = [bytes([i, i + 1, i + 2, i + 3]) + bytes(16) for i in range(50)] + [bytes(14)]
    want = [Vm(insns, prog_type="xdp").run(packet=p).r0 for p in packets]
    jit = Vm(insns, prog_type="xdp", engine="jit")
    assert jit.run_many(packets) == want
    assert Vm(insns, prog_type="xdp").run_many(packets) == want
    same = [bytes([i, 0, 0, 0]) + bytes(16) for i in range(20)]
    assert jit.run_many(b"".join(same), size=20) == [i for i in range(20)]


def test_run_many_raises_the_faulting_runs_error() -> None:
    insns = assemble_mnemonic("ldxw %r2, [%r1+0]\nldxb %r0, [%r2+30]\nexit")
    packets = [bytes(40), bytes(40), bytes(20)]
    errors = []
    for engine in ("interp", "jit"):
        with pytest.raises(VmError) as e:
            Vm(insns, prog_type="xdp", engine=engine).run_many(packets)
        errors.append(str(e.value))
    assert errors[0] == errors[1] and "out of bounds" in errors[0]


XDP_PROGRAMS = {
    "read in bounds": "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 8\n"
    "jgt %r4, %r3, out\nldxdw %r0, [%r2+0]\nexit\nout:\nmov %r0, 1\nexit",
    "read past data_end": "ldxw %r2, [%r1+0]\nldxh %r0, [%r2+13]\nexit",
    "read before data": "ldxw %r2, [%r1+0]\nldxb %r0, [%r2-1]\nexit",
    "write and read back": "ldxw %r2, [%r1+0]\nstw [%r2+2], 0x1234\nldxw %r0, [%r2+2]\nexit",
    "context through the packet guess": "mov %r2, %r1\nldxw %r0, [%r2+12]\nexit",
}


@pytest.mark.parametrize("name", sorted(XDP_PROGRAMS))
@pytest.mark.parametrize("size", [14, 21, 64])
def test_packet_accesses_agree_in_both_tiers(name: str, size: int) -> None:
    insns = assemble_mnemonic(XDP_PROGRAMS[name])
    packet = bytes(range(size))
    a, b = _both(insns, prog_type="xdp", packet=packet)
    assert a == b
    runs = [bytes(range(n)) for n in (14, 15, 20, 64)]
    want = [_outcome(Vm(insns, prog_type="xdp", packet=p)) for p in runs]
    vm = _optimized(Vm(insns, prog_type="xdp", engine="jit"))
    assert [_outcome(Vm(insns, prog_type="xdp", packet=p, engine="jit")) for p in runs] == want
    if all(w[0] == "ok" for w in want):  # a batch in the optimizing tier: the same r0s
        assert vm.run_many(runs) == [w[1] for w in want]


def test_repeat_runs_natively_and_stops_at_a_fault() -> None:
    from bpfkit.vm.jit import repeat

    insns = assemble_mnemonic("ldxdw %r0, [%r10-8]\nadd %r0, 1\nstxdw [%r10-8], %r0\nexit")
    vm = _optimized(Vm(insns, engine="jit"))
    assert vm._jit is not None
    s = vm._setup()
    assert repeat(vm._jit, vm.code, s.r1, s.r2, 1000) == (1, 1000)  # the stack starts zeroed
    assert vm.interpreter.executed == 4
    bad = _optimized(Vm(assemble_mnemonic("ldxdw %r0, [%r1+8]\nexit"), ctx=bytes(8), engine="jit"))
    assert bad._jit is not None
    s = bad._setup()
    assert repeat(bad._jit, bad.code, s.r1, s.r2, 5)[1] == 0
    with pytest.raises(VmError, match="out of bounds"):
        bad.run()


def test_run_many_takes_any_bytes_like_packets_and_refuses_others() -> None:
    insns = assemble_mnemonic("ldxw %r2, [%r1+0]\nldxh %r0, [%r2+12]\nexit")
    packets = [bytes([0] * 12 + [i, 0]) + bytes(i) for i in range(30)]
    want = [i for i in range(30)]
    for engine in ("interp", "jit"):
        vm = Vm(insns, prog_type="xdp", engine=engine)
        assert vm.run_many(packets) == want
        assert vm.run_many(p for p in packets) == want  # type: ignore[arg-type]
        views = [memoryview(bytearray(p)) for p in packets]
        assert vm.run_many(views) == want  # type: ignore[arg-type]
        with pytest.raises(VmError, match="size=N"):
            vm.run_many(b"".join(packets))
        with pytest.raises(VmError, match="as bytes"):
            vm.run_many(["not bytes"])  # type: ignore[list-item]
        with pytest.raises(VmError, match="as bytes"):
            vm.run_many([5])  # type: ignore[list-item]
