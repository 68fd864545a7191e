"""BPF perf buffers (``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` + ``bpf_perf_event_output``):
pure record decoding and a per-CPU mmap/epoll reader.

Each CPU has a ``PERF_COUNT_SW_BPF_OUTPUT`` perf event whose fd is stored in the map at
that CPU's index; the event's mmap is one metadata page (``struct perf_event_mmap_page``:
``data_head`` at byte 1024, ``data_tail`` at 1032, ``data_offset``/``data_size`` at
1040/1048 since Linux 4.1) and a data area of 2^n pages.  Records start with
``struct perf_event_header {u32 type; u16 misc; u16 size}`` and may wrap around the end of
the area.  ``PERF_RECORD_SAMPLE`` (9) with ``PERF_SAMPLE_RAW`` holds ``u32 size`` and the
bytes the program sent (padded to 8 with the header); ``PERF_RECORD_LOST`` (2) holds
``u64 id, u64 lost``.
"""

from __future__ import annotations

import ctypes
import mmap
import select
import struct
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from bpfkit.errors import KernelError
from bpfkit.events.polled import PolledReader
from bpfkit.syscalls import Cmd, Fd, attrs, bpf
from bpfkit.syscalls import perf as perfsys

PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
_HEADER = struct.Struct("<IHH")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
DATA_HEAD, DATA_TAIL, DATA_OFFSET, DATA_SIZE = 1024, 1032, 1040, 1048


@dataclass(frozen=True, slots=True)
class PerfDecoded:
    """Samples' raw payloads, events the kernel reported lost, and the new tail."""

    samples: list[bytes]
    lost: int
    tail: int
    other: int = 0  # records of other types, skipped


def _read(data: bytes | memoryview | mmap.mmap, offset: int, size: int, ring: int) -> bytes:
    end = offset + size
    if end <= ring:
        return bytes(data[offset:end])
    first = bytes(data[offset:ring])
    return first + bytes(data[: size - len(first)])


def decode(data: bytes | memoryview | mmap.mmap, size: int, tail: int, head: int) -> PerfDecoded:
    """Decode the records between ``tail`` and ``head`` of a data area of ``size`` bytes."""
    if size <= 0 or size & (size - 1):
        raise KernelError(f"perf buffer size {size} is not a power of two")
    samples: list[bytes] = []
    lost = other = 0
    pos = tail
    while head - pos >= _HEADER.size:
        rtype, _misc, rsize = _HEADER.unpack(_read(data, pos % size, _HEADER.size, size))
        if rsize < _HEADER.size or rsize > head - pos:
            raise KernelError(f"corrupt perf record at position {pos}: size {rsize}")
        body = _read(data, (pos + _HEADER.size) % size, rsize - _HEADER.size, size)
        if rtype == PERF_RECORD_SAMPLE and len(body) >= 4:
            (raw_size,) = _U32.unpack_from(body, 0)
            samples.append(body[4 : 4 + raw_size])
        elif rtype == PERF_RECORD_LOST and len(body) >= 16:
            lost += _U64.unpack_from(body, 8)[0]
        else:
            other += 1
        pos += rsize
    return PerfDecoded(samples, lost, pos, other)


def encode_sample(payload: bytes) -> bytes:
    """A ``PERF_RECORD_SAMPLE`` record with a raw payload, as the kernel lays it out (the
    raw size counts the padding that aligns the record to 8 bytes).  For tests."""
    raw_size = len(payload) + (-(len(payload) + 4 + _HEADER.size) % 8)
    body = _U32.pack(raw_size) + payload.ljust(raw_size, b"\0")
    return _HEADER.pack(PERF_RECORD_SAMPLE, 0, _HEADER.size + len(body)) + body


def encode_lost(count: int, event_id: int = 0) -> bytes:
    """A ``PERF_RECORD_LOST`` record.  For tests."""
    return (
        _HEADER.pack(PERF_RECORD_LOST, 0, _HEADER.size + 16)
        + _U64.pack(event_id)
        + _U64.pack(count)
    )


def online_cpus() -> list[int]:
    """The CPUs listed in ``/sys/devices/system/cpu/online`` (``0-3,6``)."""
    text = Path("/sys/devices/system/cpu/online").read_text().strip()
    cpus: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
    return cpus


@dataclass
class _Ring:
    cpu: int
    fd: Fd
    mem: mmap.mmap
    data_offset: int
    data_size: int
    closed: bool = field(default=False)


class PerfBufferReader(PolledReader[tuple[int, bytes]]):
    """Read ``bpf_perf_event_output`` records of a perf event array map.

    Opens one BPF output event per online CPU, stores its fd in the map at the CPU's
    index and mmaps ``pages`` data pages (a power of two).  ``poll(timeout)`` returns
    ``(cpu, payload)`` pairs; ``lost`` counts records the kernel dropped.  ``close()``
    closes the events and unmaps; the map's slots then point nowhere.
    """

    def __init__(self, map_fd: int, *, pages: int = 8) -> None:
        if pages <= 0 or pages & (pages - 1):
            raise KernelError(f"perf buffer pages must be a power of two, not {pages}")
        self.lost = 0
        self._rings: list[_Ring] = []
        self._epoll = select.epoll()
        self._finalizer = weakref.finalize(self, _close_rings, self._rings, self._epoll)
        try:
            for cpu in online_cpus():
                self._rings.append(self._open(map_fd, cpu, pages))
        except BaseException:
            self.close()
            raise

    def _open(self, map_fd: int, cpu: int, pages: int) -> _Ring:
        fd = Fd(perfsys.perf_event_open(perfsys.bpf_output_attr(), pid=-1, cpu=cpu), "perf event")
        try:
            mem = mmap.mmap(fd.fd, (pages + 1) * mmap.PAGESIZE, mmap.MAP_SHARED)
        except OSError as e:
            fd.close()
            raise KernelError(
                f"mmap of the perf buffer of CPU {cpu} failed: {e.strerror}"
            ) from None
        ring = _Ring(cpu, fd, mem, mmap.PAGESIZE, pages * mmap.PAGESIZE)
        offset, size = _U64.unpack_from(mem, DATA_OFFSET)[0], _U64.unpack_from(mem, DATA_SIZE)[0]
        if size:  # Linux >= 4.1 says where the data is
            ring.data_offset, ring.data_size = offset, size
        key = ctypes.create_string_buffer(_U32.pack(cpu), 4)
        value = ctypes.create_string_buffer(_U32.pack(fd.fd), 4)
        try:
            attr = attrs.MapElemAttr(
                map_fd=map_fd, key=ctypes.addressof(key), value=ctypes.addressof(value)
            )
            bpf(Cmd.MAP_UPDATE_ELEM, attr, f"perf event array slot of CPU {cpu}")
            perfsys.enable(fd.fd)
            self._epoll.register(fd.fd, select.EPOLLIN)
        except BaseException:
            mem.close()
            fd.close()
            raise
        return ring

    def read(self) -> list[tuple[int, bytes]]:
        """Records available now, consumed."""
        out: list[tuple[int, bytes]] = []
        for ring in self._rings:
            head = _U64.unpack_from(ring.mem, DATA_HEAD)[0]
            tail = _U64.unpack_from(ring.mem, DATA_TAIL)[0]
            if head == tail:
                continue
            view = memoryview(ring.mem)[ring.data_offset : ring.data_offset + ring.data_size]
            try:
                got = decode(view, ring.data_size, tail, head)
            finally:
                view.release()
            self.lost += got.lost
            out += [(ring.cpu, s) for s in got.samples]
            _U64.pack_into(ring.mem, DATA_TAIL, got.tail)
        return out


def _close_rings(rings: list[_Ring], ep: select.epoll) -> None:
    ep.close()
    for ring in rings:
        ring.mem.close()
        ring.fd.close()
    rings.clear()
