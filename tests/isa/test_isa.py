"""The instruction-set table and the instruction encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpfkit.errors import IsaError
from bpfkit.isa import OPS, Insn, decode, decode_all, encode_all, is_valid, lookup
from helpers import valid_insns


def test_every_row_is_distinct() -> None:
    keys = [(o.opcode, o.off, o.imm, o.src) for o in OPS]
    assert len(keys) == len(set(keys))


def test_seed_store_decodes() -> None:
    insn = decode(bytes.fromhex("7b1ae8ff00000000"))
    assert (insn.opcode, insn.dst, insn.src, insn.off, insn.imm) == (0x7B, 10, 1, -24, 0)
    op = lookup(insn)
    assert op is not None and op.mnemonic == "stxdw"


def test_seed_lddw() -> None:
    raw = bytes.fromhex("180100006f6d2072000000007573740a")
    insn = decode(raw)
    assert insn.width == 2
    assert insn.imm64 == 0x0A74737572206D6F
    assert insn.encode() == raw


def test_big_endian_swaps_register_nibbles() -> None:
    insn = Insn(0x7B, dst=10, src=1, off=-24)
    be = insn.encode(big_endian=True)
    assert be == bytes.fromhex("7ba1ffe800000000")
    assert decode(be, big_endian=True) == insn


def test_truncated() -> None:
    with pytest.raises(IsaError):
        decode(b"\x18\x01\x00\x00\x00\x00\x00\x00")
    with pytest.raises(IsaError):
        decode_all(b"\x95" + bytes(6))


@given(valid_insns, st.booleans())
def test_roundtrip_valid(insn: Insn, big: bool) -> None:
    assert is_valid(insn), insn
    assert decode(insn.encode(big), big_endian=big) == insn
    assert lookup(insn) is not None


@given(st.binary(min_size=0, max_size=64), st.booleans())
def test_decoding_random_bytes_raises_only_isa_error(data: bytes, big: bool) -> None:
    try:
        insns = decode_all(data, big)
    except IsaError:
        return
    assert encode_all(insns, big) == data
