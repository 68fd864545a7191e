"""The mnemonic (conformance-suite) syntax: every suite program assembles and round-trips."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfkit.asm.assemble import assemble_mnemonic, format_mnemonic
from bpfkit.errors import AsmError
from bpfkit.isa import OPS, Insn, encode_all, is_valid, lookup
from bpfkit.isa.table import Kind
from helpers import CONFORMANCE

FILES = sorted(CONFORMANCE.glob("*.data"))


def _section(text: str, name: str) -> str | None:
    m = re.search(rf"^-- {name}\n(.*?)(?=^-- |\Z)", text, re.S | re.M)
    return m.group(1) if m else None


@pytest.mark.requires("conformance")
def test_every_conformance_program_assembles_and_round_trips() -> None:
    assert len(FILES) == 313
    for path in FILES:
        text = path.read_text()
        asm = _section(text, "asm")
        assert asm is not None, path
        insns = assemble_mnemonic(asm, str(path))
        assert insns, path
        assert all(lookup(i) is not None for i in insns), path
        rendered = "\n".join(format_mnemonic(i) for i in insns)
        assert assemble_mnemonic(rendered) == insns, path
        raw = _section(text, "raw")
        if raw is not None:  # the suite's own encoding of the program
            slots = [int(x, 16) for x in raw.split()]
            assert encode_all(insns) == b"".join(s.to_bytes(8, "little") for s in slots)


def _hex(src: str) -> str:
    return encode_all(assemble_mnemonic(src)).hex()


@pytest.mark.parametrize(
    ("src", "expect"),
    [
        # Encodings the suite's raw sections and RFC 9669 fix.
        ("lddw %r0, 0x1122334455667788", "18000000887766550000000044332211"),
        ("mov %r1, -1", "b7010000ffffffff"),
        ("mov32 %r1, 0xffffffff", "b4010000ffffffff"),
        ("add32 %r0, %r1", "0c10000000000000"),
        ("ldxw %r0, [%r1+4]", "6110040000000000"),
        ("stxdw [%r10-8], %r0", "7b0af8ff00000000"),
        ("stw [%r1+2], 7", "6201020007000000"),
        ("lock fetch add [%r10-8], %r1", "db1af8ff01000000"),
        ("lock cmpxchg32 [%r10-8], %r1", "c31af8fff1000000"),
        ("lock xchg [%r1], %r2", "db210000e1000000"),
        ("call 5", "8500000005000000"),
        ("call %r2", "8d02000000000000"),
        ("be16 %r0", "dc00000010000000"),
        ("le64 %r3", "d403000040000000"),
        ("bswap32 %r0", "d700000020000000"),
        ("swap32 %r0", "d700000020000000"),
        ("movsx832 %r0, %r1", "bc10080000000000"),
        ("sdiv %r0, 3", "3700010003000000"),
        ("smod32 %r0, %r2", "9c20010000000000"),
        ("ldxsb %r0, [%r10-1]", "91a0ffff00000000"),
        ("neg %r0", "8700000000000000"),
        ("exit", "9500000000000000"),
        ("jne %r0, %r1, +3", "5d10030000000000"),
        ("jsle32 %r0, -1, -2", "d600feffffffffff"),
    ],
)
def test_encodings(src: str, expect: str) -> None:
    assert _hex(src) == expect


def test_labels_implicit_exit_and_relative_targets() -> None:
    insns = assemble_mnemonic(
        """
        # a comment line
        mov %r0, 0        # trailing comment
        jeq %r0, 0, skip
        lddw %r1, 1
    skip:
        ja32 done
        exit
    done:
        call local fn
        ja exit
    fn:
        exit
        """
    )
    assert insns[1].off == 2  # over the two slots of lddw
    assert insns[3].imm == 1  # ja32 keeps its target in imm
    assert insns[5].imm == 1  # call local fn
    assert insns[6].off == -3  # back to the first exit
    assert insns[5].src == 1


@pytest.mark.parametrize(
    ("src", "message", "column"),
    [
        ("mov %r0, 1\nfrob %r0, 1", "unknown mnemonic 'frob'", 1),
        ("mov %r11, 1", "bad register '%r11'", 5),
        ("add %r1, %rx", "bad register '%rx'", 10),
        ("mov %r0, 0x100000000", "immediate 0x100000000 out of range", 10),
        ("ldxw %r0, [%r1+40000]", "offset 40000 out of range", 11),
        ("ja nowhere", "undefined label 'nowhere'", 4),
        ("jeq %r0, 1", "'jeq' takes 3 operands, got 2", 1),
        ("stw %r1, 3", "expected a memory operand", 5),
        ("lddw %r0, 0x10000000000000000", "out of range (64 bits)", 11),
        ("ja +40000", "jump offset +40000 out of range", 4),
        ("a:\na:\nexit", "duplicate label 'a'", 1),
    ],
)
def test_errors_point_at_the_text(src: str, message: str, column: int) -> None:
    with pytest.raises(AsmError) as info:
        assemble_mnemonic(src, "t.s")
    e = info.value
    assert message in e.message
    assert e.file == "t.s"
    assert e.line == (2 if src.startswith(("mov %r0, 1\n", "a:")) else 1)
    assert e.column == column
    assert e.text and e.text in src
    assert f"t.s:{e.line}:{column}: error:" in str(e)


def test_jump_to_label_out_of_range() -> None:
    src = "ja far\n" + "mov %r0, 0\n" * 40000 + "far:\nexit\n"
    with pytest.raises(AsmError, match="jump to 'far' out of range") as info:
        assemble_mnemonic(src, "big.s")
    assert info.value.line == 1 and info.value.column == 4


def _insn_for(op_index: int, draw: st.DrawFn) -> Insn:
    op = OPS[op_index]
    reg = st.integers(0, 10)
    s32 = st.integers(-(1 << 31), (1 << 31) - 1)
    s16 = st.integers(-(1 << 15), (1 << 15) - 1)
    fields = {"dst": 0, "src": 0, "off": 0, "imm": 0}
    for name in op.uses:
        fields[name] = draw({"dst": reg, "src": reg, "off": s16, "imm": s32}[name])
    for name in ("off", "imm", "src"):
        if getattr(op, name) is not None:
            fields[name] = getattr(op, name)
    if op.kind is Kind.LDDW:
        return Insn.lddw(fields["dst"], draw(st.integers(0, (1 << 64) - 1)), op.src or 0)
    if op.kind is Kind.ADDR_SPACE_CAST:
        fields["imm"] = draw(st.integers(0, 0xFFFF)) << 16 | draw(st.integers(0, 0xFFFF))
        fields["imm"] -= (1 << 32) if fields["imm"] >= (1 << 31) else 0
    return Insn(op.opcode, **fields)


@st.composite
def _valid_insn(draw: st.DrawFn) -> Insn:
    return _insn_for(draw(st.integers(0, len(OPS) - 1)), draw)


@settings(max_examples=600, deadline=None)
@given(_valid_insn())
def test_random_valid_instructions_round_trip(insn: Insn) -> None:
    assert is_valid(insn), insn
    text = format_mnemonic(insn)
    assert assemble_mnemonic(text) == [insn], text


def test_every_table_row_has_a_mnemonic_form() -> None:
    for op in OPS:
        insn = Insn.lddw(1, 5, op.src or 0) if op.kind is Kind.LDDW else None
        if insn is None:
            insn = Insn(
                op.opcode,
                1 if "dst" in op.uses else 0,
                op.src if op.src is not None else (2 if "src" in op.uses else 0),
                op.off if op.off is not None else (3 if "off" in op.uses else 0),
                op.imm if op.imm is not None else (4 if "imm" in op.uses else 0),
            )
        assert lookup(insn) == op
        assert assemble_mnemonic(format_mnemonic(insn)) == [insn], op
