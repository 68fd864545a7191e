"""The kernel's BTF read on demand: only the types a caller asks for are decoded.

``/sys/kernel/btf/vmlinux`` holds some 100,000 types in 5 MB; decoding them all takes about
a second, while a CO-RE relocation needs a few dozen (the candidates of a name, their
members, the types those refer to).  :class:`LazyBtf` walks the type section once,
noting where each record starts and which name it has (no types built), and decodes a
type the first time its id is asked for, with :func:`bpfkit.btf.parse.parse_types`, the one
decoder.  Looking types up by name searches the string section and the names noted.
Iterating over all types decodes them all at once, as :func:`~bpfkit.btf.parse_btf` would.

The walk's result (two arrays of 4-byte numbers) is kept in bpfkit's cache directory
(:mod:`bpfkit.cachedir`, ``btf/``), found by the size and checksum of the BTF bytes, so
that a later process only reads it back.
"""

from __future__ import annotations

import array
import marshal
import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import overload

from bpfkit import cachedir
from bpfkit.btf import types as T
from bpfkit.btf.btf import Btf, _kinds
from bpfkit.btf.parse import Header, Strings, iter_records, parse_header, parse_types
from bpfkit.errors import BtfError

_LAST_KIND = T.Kind.ENUM64.value
CACHE_KIND = "btf"  # entries under this directory of bpfkit.cachedir


class LazyTypes(Sequence[T.Type]):
    """The types of one (base) BTF blob by id, each decoded the first time it is read."""

    def __init__(
        self, data: bytes, hdr: Header, strings: Strings, offsets: array.array[int], what: str
    ) -> None:
        self._data, self._hdr, self._strings, self._what = data, hdr, strings, what
        self._offsets = offsets  # byte offset of the record of type id i + 1
        self._end = hdr.hdr_len + hdr.type_off + hdr.type_len
        self._cache: dict[int, T.Type] = {0: T.Void(0, "")}
        self._all: list[T.Type] | None = None

    def __len__(self) -> int:
        return len(self._offsets) + 1

    @overload
    def __getitem__(self, i: int) -> T.Type: ...

    @overload
    def __getitem__(self, i: slice) -> list[T.Type]: ...

    def __getitem__(self, i: int | slice) -> T.Type | list[T.Type]:
        if isinstance(i, slice):  # many types (a dump of all of them): decode them all at once
            return list(self)[i]
        if self._all is not None:
            return self._all[i]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"type id {i} out of range")
        t = self._cache.get(i)
        if t is None:
            start = self._offsets[i - 1]
            stop = self._offsets[i] if i < n - 1 else self._end
            one = self._hdr._replace(type_off=start - self._hdr.hdr_len, type_len=stop - start)
            t = parse_types(self._data, one, self._strings, i, self._what)[0]
            self._cache[i] = t
        return t

    def __iter__(self) -> Iterator[T.Type]:
        if self._all is None:
            own = parse_types(self._data, self._hdr, self._strings, 1, self._what)
            self._all = [self._cache[0], *own]
        return iter(self._all)


class LazyBtf(Btf):
    """A base BTF blob (the kernel's) whose types are decoded on demand."""

    def __init__(self, data: bytes, what: str = "vmlinux BTF") -> None:
        hdr = parse_header(data, what)
        s0 = hdr.hdr_len + hdr.str_off
        strings = Strings(data[s0 : s0 + hdr.str_len], None, what)
        offsets, names = _index(data, hdr, strings, what)
        super().__init__(LazyTypes(data, hdr, strings, offsets, what), strings, hdr, None, what)
        self._names = names.tobytes()  # name_off of type id i + 1 at bytes 4i..4i+4

    def _ids_at(self, off: int) -> list[int]:
        """Ids of the types whose name is the string at offset ``off``."""
        pattern = struct.pack("=I", off)
        out = []
        i = self._names.find(pattern)
        while i >= 0:
            if i % 4 == 0:
                out.append(i // 4 + 1)
                i = self._names.find(pattern, i + 4)
            else:
                i = self._names.find(pattern, i + 1)
        return out

    def named_like(self, prefix: str) -> list[tuple[str, int]]:
        """``(name, id)`` of every type whose name starts with ``prefix``, by id."""
        if not prefix:
            return [(t.name, t.id) for t in self.types if t.name]
        data = self.strings.data
        want = prefix.encode()
        out = []
        i = data.find(want)
        while i >= 0:
            ids = self._ids_at(i)
            if ids:
                name = self.strings.get(i)
                out += [(name, tid) for tid in ids]
            i = data.find(want, i + 1)
        return sorted(out, key=lambda x: x[1])

    def find_all(self, name: str, kind: T.Kind | str | None = None) -> list[T.Type]:
        """All types called ``name`` (optionally of ``kind``), as :meth:`Btf.find_all`."""
        want = _kinds(kind)
        found = [self.types[i] for n, i in self.named_like(name) if n == name]
        return [t for t in found if want is None or t.kind in want]


def _index(
    data: bytes, hdr: Header, strings: Strings, what: str
) -> tuple[array.array[int], array.array[int]]:
    """Where each type record starts and its name's offset, by type id - 1: from bpfkit's
    cache when it holds the index of these very bytes (the kernel's BTF changes only with
    the kernel), else by walking the type section (and then stored there)."""
    key = (len(data), zlib.crc32(data))
    name = f"index-{key[1]:08x}-{key[0]:x}"
    offsets: array.array[int] = array.array("I")
    names: array.array[int] = array.array("I")
    cached = cachedir.read(CACHE_KIND, name)
    if cached is not None:
        try:
            stored, raw_offsets, raw_names = marshal.loads(cached)
            if stored == key and len(raw_offsets) == len(raw_names):
                offsets.frombytes(raw_offsets)
                names.frombytes(raw_names)
                return offsets, names
        except Exception:  # noqa: BLE001 - a damaged entry: walk again
            pass
        del offsets[:], names[:]
    t0 = hdr.hdr_len + hdr.type_off
    stop = t0
    for pos, size, name_off, info in iter_records(
        data, t0, hdr.type_len, big_endian=hdr.big_endian
    ):
        kind = (info >> 24) & 0x1F
        if not 0 < kind <= _LAST_KIND:
            # The decoder's own message (unknown kind, or void where only id 0 may be).
            one = hdr._replace(type_off=pos - hdr.hdr_len, type_len=size)
            parse_types(data, one, strings, len(offsets) + 1, what)
        offsets.append(pos)
        names.append(name_off)
        stop = pos + size
    if stop != t0 + hdr.type_len:  # the last record runs past the end, or a piece is left
        last = offsets.pop() if stop > t0 + hdr.type_len else stop
        rest = hdr._replace(type_off=last - hdr.hdr_len, type_len=t0 + hdr.type_len - last)
        parse_types(data, rest, strings, len(offsets) + 1, what)  # raises the decoder's error
        raise BtfError(f"{what}: the type section ends inside type {len(offsets) + 1}")
    body = marshal.dumps((key, offsets.tobytes(), names.tobytes()))
    cachedir.write(CACHE_KIND, name, body, replaces="index-")  # one kernel's: the last read
    return offsets, names


__all__ = ["LazyBtf", "LazyTypes"]
