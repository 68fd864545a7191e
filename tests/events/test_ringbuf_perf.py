"""Perf buffer record decoding on synthetic buffers (no kernel)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpfkit.errors import KernelError
from bpfkit.events.perf import decode, encode_lost, encode_sample


def _ring(records: bytes, size: int, start: int) -> bytes:
    """A data area of ``size`` bytes holding ``records`` from position ``start`` (wrapping)."""
    area = bytearray(size)
    for i, b in enumerate(records):
        area[(start + i) % size] = b
    return bytes(area)


def test_hand_built_sample_and_lost() -> None:
    # struct perf_event_header {u32 type = 9; u16 misc; u16 size = 24}, u32 raw size = 12,
    # 12 bytes of payload (8 bytes of data + the kernel's 4 bytes of padding).
    sample = struct.pack("<IHHI", 9, 0, 24, 12) + b"abcdefgh" + bytes(4)
    lost = struct.pack("<IHHQQ", 2, 0, 24, 7, 3)
    mmap2 = struct.pack("<IHH", 10, 0, 16) + bytes(8)  # another record type: skipped
    area = _ring(sample + lost + mmap2, 128, 0)
    out = decode(area, 128, 0, 64)
    assert out.samples == [b"abcdefgh" + bytes(4)]
    assert (out.lost, out.other, out.tail) == (3, 1, 64)


def test_encoders_match_the_kernel_layout() -> None:
    assert encode_sample(b"abcdefgh") == struct.pack("<IHHI", 9, 0, 24, 12) + b"abcdefgh" + bytes(4)
    assert encode_lost(3, 7) == struct.pack("<IHHQQ", 2, 0, 24, 7, 3)


def test_wrapping_record_and_partial_header() -> None:
    rec = encode_sample(b"0123456789abcdef")  # 32 bytes
    area = _ring(rec, 64, 48)  # starts at offset 48, wraps after 16 bytes
    out = decode(area, 64, 48 + 640, 48 + 640 + len(rec))
    assert out.samples[0][:16] == b"0123456789abcdef"
    # Fewer than 8 bytes published: nothing to decode yet.
    assert decode(area, 64, 48, 52).samples == []


def test_corrupt_size() -> None:
    area = _ring(struct.pack("<IHH", 9, 0, 4), 64, 0)
    with pytest.raises(KernelError, match="corrupt perf record"):
        decode(area, 64, 0, 32)
    with pytest.raises(KernelError, match="power of two"):
        decode(bytes(96), 96, 0, 0)


@given(
    items=st.lists(st.one_of(st.binary(max_size=50), st.integers(0, 1000)), max_size=15),
    start=st.integers(0, 4096),
)
def test_round_trip(items: list[bytes | int], start: int) -> None:
    records = b"".join(encode_sample(i) if isinstance(i, bytes) else encode_lost(i) for i in items)
    size = 2048
    out = decode(_ring(records, size, start), size, start, start + len(records))
    payloads = [i for i in items if isinstance(i, bytes)]
    assert [s[: len(p)] for s, p in zip(out.samples, payloads, strict=True)] == payloads
    assert all(
        len(s) % 8 == 4 and not any(s[len(p) :]) for s, p in zip(out.samples, payloads, strict=True)
    )
    assert out.lost == sum(i for i in items if isinstance(i, int))
    assert out.tail == start + len(records)
