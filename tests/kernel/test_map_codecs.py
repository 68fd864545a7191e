"""Map key/value codecs without a kernel: every value round-trips through its bytes."""

from __future__ import annotations

import ctypes
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpfkit.kernel.maps import Codec, CType, Int, make_codec


class Rec(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_int16), ("c", ctypes.c_uint8)]


@given(st.sampled_from([1, 2, 4, 8, 16]), st.data())
def test_unsigned_ints_round_trip(size: int, data: st.DataObject) -> None:
    v = data.draw(st.integers(0, (1 << (8 * size)) - 1))
    codec = Int(size)
    raw = codec.encode(v)
    assert len(raw) == size and raw == v.to_bytes(size, sys.byteorder)
    assert codec.decode(raw) == v


@given(st.sampled_from([1, 2, 4, 8]), st.data())
def test_signed_ints_round_trip(size: int, data: st.DataObject) -> None:
    v = data.draw(st.integers(-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1))
    codec = Int(size, signed=True)
    assert codec.decode(codec.encode(v)) == v


@given(st.integers(0, 2**32 - 1), st.integers(-(2**15), 2**15 - 1), st.integers(0, 255))
def test_structures_round_trip(a: int, b: int, c: int) -> None:
    codec = make_codec(Rec, ctypes.sizeof(Rec))
    got = codec.decode(codec.encode(Rec(a, b, c)))
    assert isinstance(got, Rec) and (got.a, got.b, got.c) == (a, b, c)


@given(st.binary(min_size=8, max_size=8))
def test_bytes_pass_through(raw: bytes) -> None:
    codec = make_codec(None, 8)
    assert codec.decode(codec.encode(raw)) == raw
    assert make_codec(int, 8).encode(raw) == raw  # bytes of the right size are accepted


def test_wrong_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="expected 4 bytes"):
        Codec(4).encode(b"abc")
    with pytest.raises(ValueError, match="does not fit"):
        Int(1).encode(256)
    with pytest.raises(ValueError, match="is 8 bytes"):
        CType(ctypes.c_uint64, 4)
    with pytest.raises(TypeError):
        make_codec(float, 8)
    assert make_codec(ctypes.c_uint16, 2).decode(b"\x01\x02") == int.from_bytes(
        b"\x01\x02", sys.byteorder
    )
