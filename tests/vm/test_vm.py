"""The VM's interpreter: every ISA row handled, semantics edge cases, frames, and faults that
name the pc, the instruction, the address and the region."""

from __future__ import annotations

import pytest

from bpfkit.asm.assemble import assemble_mnemonic
from bpfkit.errors import VmError
from bpfkit.isa.insn import Insn
from bpfkit.isa.semantics import compute
from bpfkit.isa.table import BY_MNEMONIC, OPS, Kind
from bpfkit.vm import Vm
from bpfkit.vm.interp import handled_rows
from helpers import TESTS


def run(text: str, mem: bytes | None = None, **kw: object) -> int:
    return Vm(assemble_mnemonic(text), ctx=mem, **kw).run().r0  # type: ignore[arg-type]


def fault(text: str, mem: bytes | None = None, **kw: object) -> VmError:
    with pytest.raises(VmError) as e:
        run(text, mem, **kw)
    return e.value


# --- the table ------------------------------------------------------------------------


def test_every_row_of_the_isa_table_has_a_handler() -> None:
    assert handled_rows() == list(OPS)


def _instance(op: object) -> Insn:
    from bpfkit.isa.table import Op

    assert isinstance(op, Op)
    off = op.off if op.off is not None else 0
    imm = op.imm if op.imm is not None else 0
    src = op.src if op.src is not None else (2 if "src" in op.uses else 0)
    if op.kind is Kind.LDDW:
        return Insn(op.opcode, 3, src, off, imm)
    if op.kind in (Kind.LOAD, Kind.LOAD_SX, Kind.LOAD_ACQ):
        return Insn(op.opcode, 3, 10, -8, imm)
    if op.kind in (Kind.STORE_IMM, Kind.STORE_REG, Kind.STORE_REL, Kind.ATOMIC):
        return Insn(op.opcode, 10, 2, -8, imm)
    if op.kind is Kind.ENDIAN:
        return Insn(op.opcode, 3, 0, off, imm)
    if op.kind is Kind.CALL:
        return Insn(
            op.opcode, 0, src, off, 5 if op.key == "helper" else (0 if op.key == "local" else 1)
        )
    return Insn(op.opcode, 3, src, off, imm or (1 if op.kind is not Kind.ADDR_SPACE_CAST else 0))


@pytest.mark.parametrize("op", OPS, ids=lambda o: f"{o.mnemonic}/{o.key}/{o.opcode:#x}")
def test_every_row_runs_or_says_why_not(op: object) -> None:
    """Each row of the table executes; the only refusals are named, never 'unknown'."""
    insn = _instance(op)
    prog = [
        Insn(0xB7, 2, 0, 0, 7),
        Insn(0x7A, 10, 0, -8, 0),
        insn,
        Insn(0xB7, 0, 0, 0, 1),
        Insn(0x95),
    ]
    try:
        Vm(prog, packet=bytes(64), prog_type="socket_filter").run()
    except VmError as e:
        assert "unknown instruction" not in str(e)
        assert "internal error" not in str(e)
        assert e.pc is not None


# --- arithmetic edge cases (RFC 9669 and the kernel) ------------------------------------


@pytest.mark.parametrize(
    ("key", "width", "a", "b", "want"),
    [
        ("div", 64, 7, 0, 0),
        ("mod", 64, 7, 0, 7),
        ("mod", 32, 0x1_0000_0007, 0, 7),  # 32-bit mod by zero truncates dst
        ("div", 32, 0x1_0000_0007, 2, 3),
        ("sdiv", 64, -(2**63), -1, 2**63),  # INT_MIN / -1 wraps
        ("smod", 64, -(2**63), -1, 0),
        ("sdiv", 32, -7, 2, 0xFFFF_FFFD),  # truncates toward zero
        ("smod", 32, -7, 2, 0xFFFF_FFFF),  # sign of the dividend
        ("smod", 64, 7, -2, 1),
        ("sdiv", 32, -(2**31), -1, 0x8000_0000),
        ("lsh", 64, 1, 65, 2),  # shift counts are masked
        ("lsh", 32, 1, 33, 2),
        ("rsh", 32, 0xFFFF_FFFF_0000_0000, 0, 0),  # 32-bit ops read the low half only
        ("arsh", 32, 0x8000_0000, 31, 0xFFFF_FFFF),
        ("arsh", 64, 2**63, 63, 2**64 - 1),
        ("add", 32, 0xFFFF_FFFF, 1, 0),
        ("mul", 64, 2**63, 2, 0),
        ("mov", 32, 5, -1, 0xFFFF_FFFF),
    ],
)
def test_alu_semantics(key: str, width: int, a: int, b: int, want: int) -> None:
    # The one definition (isa.semantics) and the interpreter's code made from it, on r1/r2.
    mn = key + ("32" if width == 32 else "")
    op = next(o for o in BY_MNEMONIC[mn] if o.source == "reg")
    assert compute(op, a, b) == want
    insns = [Insn.lddw(0, a), Insn.lddw(2, b), Insn(op.opcode, 0, 2, op.off or 0), Insn(0x95)]
    assert Vm(insns).run().r0 == want


def test_movsx_endian_and_sign_extending_loads() -> None:
    assert run("mov %r1, 0x80\nmovsx864 %r0, %r1\nexit") == 2**64 - 128
    assert run("mov %r1, 0x8000\nmovsx1632 %r0, %r1\nexit") == 0xFFFF_8000
    assert run("lddw %r0, 0x1122334455667788\nbe16 %r0\nexit") == 0x8877
    assert run("lddw %r0, 0x1122334455667788\nle32 %r0\nexit") == 0x55667788
    assert run("lddw %r0, 0x1122334455667788\nbswap64 %r0\nexit") == 0x8877665544332211
    assert run("ldxsb %r0, [%r1+1]\nexit", bytes([0, 0xFE])) == 2**64 - 2
    assert run("ldxsw %r0, [%r1]\nexit", bytes([0, 0, 0, 0x80])) == 2**64 - 2**31


def test_atomics_32_and_64() -> None:
    text = """
        stdw [%r10-8], 10
        mov %r1, 5
        lock fetch add [%r10-8], %r1
        mov %r0, %r1
        ldxdw %r2, [%r10-8]
        lsh %r2, 8
        or %r0, %r2
        exit
    """
    assert run(text) == (15 << 8) | 10
    text32 = """
        stw [%r10-8], 7
        mov %r0, 7
        lddw %r1, 0x1ffffffff
        lock cmpxchg32 [%r10-8], %r1
        ldxw %r2, [%r10-8]
        lsh %r2, 32
        or %r0, %r2
        exit
    """
    assert run(text32) == (0xFFFF_FFFF << 32) | 7


# --- calls and frames -----------------------------------------------------------------


def test_local_calls_have_their_own_stack() -> None:
    text = """
        stdw [%r10-8], 1
        call local f
        ldxdw %r0, [%r10-8]
        exit
    f:
        stdw [%r10-8], 99
        exit
    """
    assert run(text) == 1


def test_call_depth_is_limited_to_8_frames() -> None:
    e = fault("call local f\nexit\nf:\ncall local f\nexit")
    assert "call depth exceeds 8 frames" in str(e)


def test_callx_and_lddw_function_address() -> None:
    prog = [
        Insn(0x18, 2, 4, 0, 4),  # lddw r2, function at slot 0 + 4 + 1 = 5 (src=4)
        Insn(0x8D, 2),  # callx r2
        Insn(0x95),  # slot 3
        Insn(0xB7, 0, 0, 0, 0),  # slot 4: not reached
        Insn(0xB7, 0, 0, 0, 41),  # slot 5
        Insn(0x07, 0, 0, 0, 1),
        Insn(0x95),
    ]
    assert Vm(prog).run().r0 == 42


# --- faults ----------------------------------------------------------------------------


def test_out_of_bounds_read_names_pc_insn_address_region() -> None:
    e = fault("mov %r0, 0\nldxdw %r0, [%r10+0]\nexit")
    assert e.pc == 1
    assert "r10" in e.insn
    assert e.address is not None and "stack of frame 0" in e.region
    assert "out of bounds" in str(e)


def test_memory_past_its_end_faults() -> None:
    e = fault("ldxw %r0, [%r1+2]\nexit", bytes(4))
    assert "context" in e.region and e.pc == 0


def test_null_and_wild_pointers_fault() -> None:
    assert "null page" in fault("mov %r1, 0\nldxb %r0, [%r1]\nexit").region
    e = fault("lddw %r1, 0x4141414141414141\nstxb [%r1], %r1\nexit")
    assert "write" in str(e) and e.region == "unmapped"


def test_writes_to_read_only_data_fault() -> None:
    from bpfkit.vm import ArrayMap

    ro = ArrayMap(".rodata", 4, 8, 1, initial=b"abcdefgh", readonly=True)
    prog = [Insn.lddw(1, 0), Insn(0x72, 1, 0, 0, 1), Insn(0x95)]
    prog[0] = Insn(0x18, 1, 2, 0, 7, 0)  # lddw r1, map value of map "7"
    e = pytest.raises(VmError, Vm(prog, maps={7: ro}).run).value
    assert "read-only" in str(e)
    ok = [Insn(0x18, 1, 2, 0, 7, 2), Insn(0x71, 0, 1, 0, 0), Insn(0x95)]
    assert Vm(ok, maps={7: ro}).run().r0 == ord("c")


def test_jumps_outside_the_program_and_falling_off_the_end() -> None:
    bad = [Insn(0x05, off=5), Insn(0x95)]
    e = pytest.raises(VmError, Vm, bad).value  # refused up front, as a loader does
    assert "invalid program: jump outside the program" in str(e) and e.pc == 0
    e = pytest.raises(VmError, Vm(bad, strict=False).run).value  # or when reached
    assert "outside the program" in str(e) and "to pc 6" in str(e) and e.pc == 0
    e = pytest.raises(VmError, Vm([Insn(0xB7, 0, 0, 0, 1)]).run).value
    assert "fell off the end" in str(e)
    e = pytest.raises(VmError, Vm, [Insn(0x05, off=-2), Insn(0x95)]).value
    assert "outside the program" in str(e)


def test_jump_into_lddw_second_half() -> None:
    prog = [Insn(0x05, off=1), Insn.lddw(0, 5), Insn(0x95)]
    e = pytest.raises(VmError, Vm(prog, strict=False).run).value
    assert "second half" in str(e)
    assert "second half" in str(pytest.raises(VmError, Vm, prog).value)


def test_unreached_bad_instructions_only_matter_when_strict() -> None:
    prog = [Insn(0xB7, 0, 0, 0, 3), Insn(0x95), Insn(0xFF)]
    assert Vm(prog, strict=False).run().r0 == 3
    e = pytest.raises(VmError, Vm, prog).value
    assert "unknown instruction" in str(e) and e.pc == 2


def test_reserved_fields_must_be_zero() -> None:
    # add64 r0, 1 with src=1: the conformance suite's negative tests and the kernel refuse it
    prog = [Insn(0x07, 0, 1, 0, 1), Insn(0x95)]
    e = pytest.raises(VmError, Vm, prog).value
    assert "reserved fields: src" in str(e) and e.pc == 0
    assert Vm(prog, strict=False).run().r0 == 1


def test_budget_is_enforced_and_configurable() -> None:
    prog = [Insn(0x05, off=-1)]
    e = pytest.raises(VmError, Vm(prog, budget=1000).run).value
    assert "budget of 1000" in str(e)
    vm = Vm(assemble_mnemonic("mov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, 100, loop\nexit"))
    res = vm.run()
    assert res.r0 == 100 and res.insns_executed == 1 + 2 * 100 + 1


def test_unknown_opcode_and_unemulated_helper() -> None:
    e = pytest.raises(VmError, Vm(strict=False, program=[Insn(0xFF), Insn(0x95)]).run).value
    assert "unknown instruction" in str(e) and e.pc == 0
    e = fault("call 9\nexit")  # bpf_skb_store_bytes
    assert "bpf_skb_store_bytes" in str(e) and "not emulated" in str(e)
    e = fault("call 99999\nexit")
    assert "unknown helper id 99999" in str(e)


def test_registers_above_r10_are_refused() -> None:
    e = pytest.raises(VmError, Vm, [Insn(0xB7, 11, 0, 0, 1), Insn(0x95)]).value
    assert "invalid register" in str(e)


def test_ld_abs_out_of_bounds_returns_zero() -> None:
    prog = assemble_mnemonic("mov %r6, %r1\nmov %r0, 5\nldabsw 200\nexit")
    pkt = bytes(range(64))
    assert Vm(prog, packet=pkt, prog_type="socket_filter").run().r0 == 0
    prog = assemble_mnemonic("mov %r6, %r1\nldabsh 2\nexit")
    # socket filters see the packet from the network header (after 14 bytes of Ethernet)
    assert Vm(prog, packet=pkt, prog_type="socket_filter").run().r0 == 0x1011


def test_xdp_context_points_at_the_packet() -> None:
    text = """
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r4, %r2
        add %r4, 4
        jgt %r4, %r3, out
        ldxw %r0, [%r2+0]
        stw [%r2+0], 0x41424344
        exit
    out:
        mov %r0, 0
        exit
    """
    pkt = b"\x01\x02\x03\x04rest of the frame"
    res = Vm(assemble_mnemonic(text), packet=pkt, prog_type="xdp").run()
    assert res.r0 == 0x04030201 and res.packet == b"DCBA" + pkt[4:]


@pytest.mark.parametrize("prog_type", ["xdp", "socket_filter", "sched_cls"])
def test_packets_the_kernel_refuses_are_refused(prog_type: str) -> None:
    """BPF_PROG_TEST_RUN answers EINVAL for a packet shorter than an Ethernet header."""
    prog = assemble_mnemonic("mov %r0, 2\nexit")
    with pytest.raises(VmError, match="at least 14 bytes"):
        Vm(prog, packet=b"12345", prog_type=prog_type).run()
    assert Vm(prog, packet=bytes(14), prog_type=prog_type).run().r0 == 2


@pytest.mark.parametrize(
    ("imm", "index"),
    [(-0x100000, 14), (-0x100000 + 3, 17), (-0x200000, 0), (-0x200000 + 13, 13), (0, 14), (2, 16)],
)
def test_ld_abs_header_offsets(imm: int, index: int) -> None:
    """SKF_NET_OFF / SKF_LL_OFF: offsets from the network and link-layer headers
    (values checked against the kernel's BPF_PROG_TEST_RUN on Linux 6.18)."""
    pkt = bytes(range(100, 164))
    prog = assemble_mnemonic(f"mov %r6, %r1\nldabsb {imm}\nexit")
    assert Vm(prog, packet=pkt, prog_type="socket_filter").run().r0 == pkt[index]


def test_may_goto_falls_through_until_the_budget_is_gone() -> None:
    # may_goto +1 skips `ja -3` only once the frame's 2**23 rounds are used up: a small VM
    # budget runs out long before.
    prog = [Insn(0x07, 0, 0, 0, 1), Insn(0xE5, off=1), Insn(0x05, off=-3), Insn(0x95)]
    e = pytest.raises(VmError, Vm(prog, budget=10_000).run).value
    assert "budget" in str(e)


def test_may_goto_budget_per_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    import bpfkit.vm.handlers as handlers

    monkeypatch.setattr(handlers, "BPF_MAX_LOOPS", 5)
    prog = [Insn(0x07, 0, 0, 0, 1), Insn(0xE5, off=1), Insn(0x05, off=-3), Insn(0x95)]
    vm = Vm(prog)
    assert vm.run().r0 == 6  # five rounds fall through, the sixth jumps out
    assert vm.run().r0 == 6  # a new run, a new budget


@pytest.mark.requires("bpf")
def test_packet_sizes_refused_as_the_kernel_refuses_them() -> None:
    """The kernel is the oracle: BPF_PROG_TEST_RUN refuses 13 bytes for XDP, takes 14."""
    from bpfkit.errors import KernelError
    from bpfkit.kernel.collection import load_collection
    from bpfkit.obj import read_object

    obj = read_object(str(TESTS / "corpus" / "obj" / "xdp_count_v3_g.o"))
    prog = obj.programs[0]
    with load_collection(obj) as coll:
        kprog = coll.programs[prog.name]
        for n in (0, 5, 13, 14, 60):
            try:
                kernel: object = kprog.test_run(bytes(n)).retval
            except KernelError:
                kernel = "refused"
            try:
                vm: object = Vm(prog, obj=obj, packet=bytes(n)).run().r0
            except VmError:
                vm = "refused"
            assert vm == kernel, n
