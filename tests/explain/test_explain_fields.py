"""Every field value explain states agrees with the ISA encoder: re-encoding the explained
fields of random instructions (valid forms from the ISA table, and arbitrary bytes) gives
back the original bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfkit.errors import BpfkitError
from bpfkit.explain.explain import explain_object
from bpfkit.explain.fields import decode_fields, reencode
from bpfkit.explain.render import to_dict
from bpfkit.isa.insn import Insn, decode
from bpfkit.isa.table import OPS, Kind, lookup
from bpfkit.obj.spec import ObjectSpec, ProgramSpec
from bpfkit.vm.conformance import load
from helpers import CONFORMANCE

_S16 = st.integers(-0x8000, 0x7FFF)
_S32 = st.integers(-0x80000000, 0x7FFFFFFF)
_REG = st.integers(0, 10)


@st.composite
def valid_insns(draw: st.DrawFn) -> Insn:
    """A random instruction of a random ISA table row, its unused fields zero."""
    op = draw(st.sampled_from(OPS))

    def pick(name: str, strategy: st.SearchStrategy[int]) -> int:
        fixed = getattr(op, name, None)
        if fixed is not None:
            return int(fixed)
        return draw(strategy) if name in op.uses else 0

    insn = Insn(
        op.opcode, pick("dst", _REG), pick("src", _REG), pick("off", _S16), pick("imm", _S32)
    )
    if op.kind is Kind.LDDW:
        insn = Insn(insn.opcode, insn.dst, insn.src, insn.off, insn.imm, draw(_S32))
    assert lookup(insn) is op or lookup(insn) is not None
    return insn


def _obj(insns: list[Insn]) -> ObjectSpec:
    prog = ProgramSpec("f", "socket", 1, 0, tuple(insns), (), False)
    return ObjectSpec("<test>", False, (prog,), (), (), "GPL", None, (), (), {})


@settings(max_examples=400, deadline=None)
@given(valid_insns())
def test_explained_fields_reencode_valid_insns(insn: Insn) -> None:
    fields = {f.name: f.value for f in decode_fields(insn, lookup(insn))}
    assert reencode(fields).encode() == insn.encode()


@settings(max_examples=60, deadline=None)
@given(st.lists(valid_insns(), min_size=1, max_size=12))
def test_json_fields_reencode(insns: list[Insn]) -> None:
    # Through the whole pipeline: the analysis runs over arbitrary code without failing,
    # and the JSON's field values rebuild each instruction's bytes.
    doc = to_dict(explain_object(_obj(insns)))
    got = doc["programs"][0]["instructions"]
    assert len(got) == len(insns)
    for insn, j in zip(insns, got, strict=True):
        fields = {k: v["value"] for k, v in j["fields"].items()}
        assert reencode(fields).encode() == insn.encode()
        assert bytes.fromhex(j["bytes"]) == insn.encode()


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=8, max_size=8).filter(lambda b: b[0] != 0x18))
def test_arbitrary_bytes_decode_fully(raw: bytes) -> None:
    insn = decode(raw)
    fields = {f.name: f.value for f in decode_fields(insn, lookup(insn))}
    assert reencode(fields).encode() == raw
    (e,) = explain_object(_obj([insn])).programs[0].instructions
    if lookup(insn) is None:
        assert e.unknown and "not an instruction" in e.unknown
        assert e.kernel.startswith(f"({raw[0]:02x}) unknown")
    assert e.fields and e.text


SUITE = CONFORMANCE


@pytest.mark.requires("conformance")
def test_every_conformance_program_explains() -> None:
    # The suite's programs use every instruction form (and some invalid ones on purpose).
    n = 0
    for path in sorted(SUITE.glob("*.data")):
        try:
            prog = load(path).program()
        except BpfkitError:
            continue
        x = explain_object(_obj(prog))
        for e, insn in zip(x.programs[0].instructions, prog, strict=True):
            assert e.raw == insn.encode() and e.text and e.kernel.startswith("(")
            fields = {f.name: f.value for f in e.fields}
            assert reencode(fields).encode() == e.raw
        n += 1
    assert n > 300
