"""Ring buffer record decoding on synthetic buffers (no kernel)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpfkit.errors import KernelError
from bpfkit.events.ringbuf import BUSY_BIT, DISCARD_BIT, decode, encode


def _area(size: int, chunks: list[tuple[int, bytes]]) -> bytes:
    """A data area with ``chunks`` written at byte offsets, by hand (the layout of
    kernel/bpf/ringbuf.c: u32 len | flags, u32 pg_off, payload, padded to 8)."""
    area = bytearray(size)
    for off, raw in chunks:
        area[off : off + len(raw)] = raw
    return bytes(area)


def test_hand_built_records() -> None:
    area = _area(
        64,
        [
            (0, struct.pack("<II", 5, 0) + b"hello"),  # 8 + 5 -> next at 16
            (16, struct.pack("<II", 3 | DISCARD_BIT, 0) + b"bad"),  # discarded
            (32, struct.pack("<II", 8, 0) + b"12345678"),
            (48, struct.pack("<II", 4 | BUSY_BIT, 0) + b"wait"),  # not committed yet
        ],
    )
    out = decode(area, 64, 0, 64)
    assert out.records == [b"hello", b"12345678"]
    assert out.discarded == 1
    assert out.consumer == 48  # stops at the busy record, which a later call will read


def test_wrap_around_single_and_double_mapped() -> None:
    size = 32
    # Position 24 (offset 24): header at 24..31, payload wraps to offsets 0..9.
    area = bytearray(size)
    area[24:32] = struct.pack("<II", 10, 0)
    area[0:10] = b"0123456789"
    out = decode(bytes(area), size, 24 + 32 * 5, 24 + 32 * 5 + 24)  # positions keep growing
    assert out.records == [b"0123456789"]
    assert out.consumer == 24 + 32 * 5 + 24
    doubled = decode(bytes(area) * 2, size, 24, 48)  # how the kernel maps it
    assert doubled.records == [b"0123456789"]


def test_limit_and_empty() -> None:
    area, producer = encode([(b"a", False), (b"b", False), (b"c", False)], 64)
    first = decode(area, 64, 0, producer, limit=2)
    assert first.records == [b"a", b"b"] and first.consumer == 32
    rest = decode(area, 64, first.consumer, producer)
    assert rest.records == [b"c"] and rest.consumer == producer
    assert decode(area, 64, producer, producer).records == []


def test_bad_size_and_corrupt_length() -> None:
    with pytest.raises(KernelError, match="power of two"):
        decode(bytes(48), 48, 0, 8)
    area = _area(32, [(0, struct.pack("<II", 1000, 0))])
    with pytest.raises(KernelError, match="corrupt"):
        decode(area, 32, 0, 16)


@given(
    payloads=st.lists(st.tuples(st.binary(max_size=40), st.booleans()), max_size=20),
    start=st.integers(0, 10_000).map(lambda n: n * 8),
)
def test_encode_decode_round_trip(payloads: list[tuple[bytes, bool]], start: int) -> None:
    size = 1024  # holds 20 records of <= 48 bytes
    area, producer = encode(payloads, size, start)
    out = decode(area, size, start, producer)
    assert out.records == [p for p, dropped in payloads if not dropped]
    assert out.discarded == sum(dropped for _, dropped in payloads)
    assert out.consumer == producer
