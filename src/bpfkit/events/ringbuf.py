"""BPF ring buffer (``BPF_MAP_TYPE_RINGBUF``, Linux 5.8+): pure decoding and an mmap reader.

Layout (kernel/bpf/ringbuf.c): the map fd mmaps as one writable page holding
``consumer_pos``, then (read-only) one page holding ``producer_pos`` followed by the data
area of ``max_entries`` bytes (a power of two), mapped twice in a row so a record that
wraps around the end reads as contiguous bytes.  Each record starts with an 8-byte
header: ``u32 len`` whose bit 31 (BUSY) means "still being written" and bit 30 (DISCARD)
"dropped by the program", then ``u32 pg_off``; the next record starts at the header plus
``len`` rounded up to 8 bytes.  Positions only grow; ``pos & (size - 1)`` is the offset.

:func:`decode` works on bytes (unit tests feed it synthetic buffers); :class:`RingBufReader`
adds the mmap and epoll around it.
"""

from __future__ import annotations

import mmap
import select
import struct
import weakref
from dataclasses import dataclass

from bpfkit.errors import KernelError
from bpfkit.events.polled import PolledReader

BUSY_BIT = 1 << 31
DISCARD_BIT = 1 << 30
HDR_SIZE = 8
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


@dataclass(frozen=True, slots=True)
class Decoded:
    """What :func:`decode` found: the records' payloads, how many were discarded by the
    program, and the consumer position to store back."""

    records: list[bytes]
    discarded: int
    consumer: int


def _read(data: bytes | memoryview | mmap.mmap, offset: int, size: int, ring: int) -> bytes:
    """``size`` bytes at ``offset`` of a ring of ``ring`` bytes (wrapping if ``data`` is
    mapped only once)."""
    end = offset + size
    if end <= len(data):
        return bytes(data[offset:end])
    first = bytes(data[offset:ring])
    return first + bytes(data[: size - len(first)])


def decode(
    data: bytes | memoryview | mmap.mmap,
    size: int,
    consumer: int,
    producer: int,
    *,
    limit: int | None = None,
) -> Decoded:
    """Decode the records between ``consumer`` and ``producer`` of a ring of ``size`` bytes.

    ``data`` is the data area (``size`` bytes, or ``2 * size`` when double-mapped).
    Decoding stops at a BUSY record (not committed yet: a later call sees it), at
    ``producer`` or after ``limit`` records.
    """
    if size <= 0 or size & (size - 1):
        raise KernelError(f"ring buffer size {size} is not a power of two")
    mask = size - 1
    records: list[bytes] = []
    discarded = 0
    pos = consumer
    while pos < producer and (limit is None or len(records) < limit):
        (length,) = _U32.unpack(_read(data, pos & mask, 4, size))
        if length & BUSY_BIT:
            break
        payload = length & ~(BUSY_BIT | DISCARD_BIT)
        if payload > size:
            raise KernelError(
                f"corrupt ring buffer record at position {pos}: length {payload} > {size}"
            )
        if length & DISCARD_BIT:
            discarded += 1
        else:
            records.append(_read(data, (pos + HDR_SIZE) & mask, payload, size))
        pos += (payload + HDR_SIZE + 7) & ~7
    return Decoded(records, discarded, pos)


def encode(records: list[tuple[bytes, bool]], size: int, start: int = 0) -> tuple[bytes, int]:
    """Build a ring's data area holding ``records`` (payload, discarded) from position
    ``start``; return the area (``size`` bytes) and the producer position.  For tests and
    for the VM's emulated ring buffer."""
    area = bytearray(size)
    mask = size - 1
    pos = start
    for payload, dropped in records:
        header = _U32.pack(len(payload) | (DISCARD_BIT if dropped else 0)) + bytes(4)
        for i, b in enumerate(header + payload):
            area[(pos + i) & mask] = b
        pos += (len(payload) + HDR_SIZE + 7) & ~7
    return bytes(area), pos


class RingBufReader(PolledReader[bytes]):
    """Read records from a ring buffer map fd (``max_entries`` is the data size).

    ``poll(timeout)`` waits up to ``timeout`` seconds (None: forever) and returns the
    records available; ``close()`` unmaps (the map fd stays the caller's).
    """

    def __init__(self, map_fd: int, max_entries: int) -> None:
        page = mmap.PAGESIZE
        self.size = max_entries
        try:
            self._cons = mmap.mmap(map_fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as e:
            raise KernelError(f"mmap of ring buffer consumer page failed: {e.strerror}") from None
        try:
            self._prod = mmap.mmap(
                map_fd, page + 2 * max_entries, mmap.MAP_SHARED, mmap.PROT_READ, offset=page
            )
        except OSError as e:
            self._cons.close()
            raise KernelError(f"mmap of ring buffer data failed: {e.strerror}") from None
        self._data = memoryview(self._prod)[page:]
        self._epoll = select.epoll()
        self._epoll.register(map_fd, select.EPOLLIN)
        self.discarded = 0
        self._finalizer = weakref.finalize(
            self, _close, self._epoll, self._data, self._prod, self._cons
        )

    def available(self) -> int:
        """Bytes between the consumer and producer positions."""
        return self._producer() - self._consumer()

    def _consumer(self) -> int:
        return int(_U64.unpack_from(self._cons, 0)[0])

    def _producer(self) -> int:
        return int(_U64.unpack_from(self._prod, 0)[0])

    def read(self) -> list[bytes]:
        """The records committed now (without waiting), consuming them."""
        out = decode(self._data, self.size, self._consumer(), self._producer())
        self.discarded += out.discarded
        _U64.pack_into(self._cons, 0, out.consumer)
        return out.records


def _close(ep: select.epoll, view: memoryview, prod: mmap.mmap, cons: mmap.mmap) -> None:
    ep.close()
    view.release()
    prod.close()
    cons.close()
