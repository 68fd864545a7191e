"""Decode bytes of a BTF-typed value (a map key or value, a global variable) into Python data.

``decode_value(btf, type_id, data)`` follows what ``bpftool map dump`` shows for BTF maps:

* integers as ``int`` (signed by their encoding), ``_Bool`` as ``bool``, floats as ``float``;
* pointers as ``int`` addresses;
* enums as the enumerator's name when the value has one, else the ``int``;
* ``char`` arrays as ``str`` (up to the first NUL) when printable, else a list of ints;
* other arrays as lists; structs and unions as :class:`Record` (a dict of member name to
  value whose members are attributes too: ``r["pid"] == r.pid``; anonymous struct/union
  members are merged into their parent, as C lets you name them); bitfields extracted and
  sign-extended;
* a DATASEC as a dict of variable name to value (offsets as recorded in the BTF).
"""

from __future__ import annotations

import struct
from typing import Any

from bpfkit.btf import types as T
from bpfkit.btf.btf import MAX_RESOLVE_DEPTH, Btf
from bpfkit.errors import BtfError


class Record(dict[str, Any]):
    """A struct or union value: a dict of its members that reads and writes them as
    attributes too (``event.pid``, ``event.pid = 7``)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            members = ", ".join(self) or "none"
            raise AttributeError(f"no member {name!r} (members: {members})") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self:
            raise AttributeError(f"no member {name!r} (members: {', '.join(self) or 'none'})")
        self[name] = value


class FrozenRecord(Record):
    """A :class:`Record` that cannot change and so can be a dict key (struct map keys)."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self.items()))

    def _frozen(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a struct key cannot be changed: make a dict (dict(key)) to change it")

    __setitem__ = __delitem__ = __setattr__ = _frozen
    clear = pop = popitem = setdefault = update = _frozen  # type: ignore[assignment]


def frozen(value: Any) -> Any:
    """``value`` made hashable: records frozen, lists as tuples (for map keys)."""
    if isinstance(value, dict):
        out = FrozenRecord()
        for k, v in value.items():
            dict.__setitem__(out, k, frozen(v))
        return out
    if isinstance(value, list):
        return tuple(frozen(v) for v in value)
    return value


class EnumName(str):
    """An enum value shown by its enumerator's name (a ``str``, so it compares with
    ``"BLUE"``); ``.value`` is the number."""

    value: int

    def __new__(cls, name: str, value: int) -> EnumName:
        self = super().__new__(cls, name)
        self.value = value
        return self


def decode_value(
    btf: Btf, type_id: int, data: bytes | bytearray | memoryview, *, big_endian: bool | None = None
) -> Any:
    """The Python value of ``data`` read as type ``type_id`` (byte order: the BTF's, unless
    ``big_endian`` says otherwise)."""
    big = btf.big_endian if big_endian is None else big_endian
    size = btf.size_of(type_id)
    if len(data) < size:
        raise BtfError(
            f"{btf.what}: a value of {btf.format(type_id)} needs {size} bytes, got {len(data)}"
        )
    return _Decoder(btf, big).value(type_id, bytes(data[:size]), 0)


class _Decoder:
    def __init__(self, btf: Btf, big: bool) -> None:
        self.btf = btf
        self.big = big
        self.order: Any = "big" if big else "little"
        # Unions of unions can revisit the same bytes exponentially often in corrupt BTF.
        self.budget = 1_000_000

    def value(self, type_id: int, data: bytes, depth: int) -> Any:
        self.budget -= 1
        if depth > MAX_RESOLVE_DEPTH or self.budget < 0:
            raise BtfError(f"{self.btf.what}: type {type_id} nests too deeply (a loop?)")
        t = self.btf.resolve(type_id)
        if isinstance(t, T.Int):
            return self.integer(t, data)
        if isinstance(t, T.Ptr):
            return int.from_bytes(data[:8], self.order)
        if isinstance(t, T.Enum):
            v = int.from_bytes(data[: t.size], self.order, signed=t.signed)
            return next((EnumName(e.name, v) for e in t.values if e.value == v), v)
        if isinstance(t, T.Float):
            fmt = {4: "f", 8: "d"}.get(t.size)
            if fmt is None:
                return data[: t.size].hex()
            return struct.unpack((">" if self.big else "<") + fmt, data[: t.size])[0]
        if isinstance(t, T.Array):
            return self.array(t, data, depth)
        if isinstance(t, T.Struct):
            return self.aggregate(t, data, depth)
        if isinstance(t, T.Var):
            return self.value(t.type, data, depth + 1)
        if isinstance(t, T.Datasec):
            out = {}
            for sv in t.vars:
                var = self.btf.type(sv.type)
                chunk = self.part(data, sv.offset, sv.type, f"variable {var.name!r}")
                out[var.name] = self.value(sv.type, chunk, depth + 1)
            return out
        raise BtfError(
            f"{self.btf.what}: cannot decode a value of {self.btf.format(type_id)} "
            f"({t.kind.name} has no storage)"
        )

    def part(self, data: bytes, start: int, type_id: int, what: str) -> bytes:
        """The bytes of a member or variable, checked against the enclosing value."""
        size = self.btf.size_of(type_id)
        if start + size > len(data):
            raise BtfError(
                f"{self.btf.what}: {what} ({self.btf.format(type_id)}) at byte {start} runs "
                f"past the end of its container ({len(data)} bytes)"
            )
        return data[start : start + size]

    def integer(self, t: T.Int, data: bytes) -> int | bool:
        v = int.from_bytes(data[: t.size], self.order)
        if t.bits != t.size * 8 or t.bit_offset:
            v = (v >> t.bit_offset) & ((1 << t.bits) - 1)
        if t.encoding & T.INT_BOOL:
            return bool(v)
        if t.signed and t.bits and v >= 1 << (t.bits - 1):
            v -= 1 << t.bits
        return v

    def array(self, t: T.Array, data: bytes, depth: int) -> Any:
        elem = self.btf.resolve(t.type)
        esize = self.btf.size_of(t.type)
        if esize == 0:
            return []  # elements without storage: nothing to show, however many
        # Compilers mark char as SIGNED (or nothing), rarely as CHAR: go by name too.
        if (
            isinstance(elem, T.Int)
            and esize == 1
            and not elem.encoding & T.INT_BOOL
            and (
                elem.encoding & T.INT_CHAR or elem.name in ("char", "signed char", "unsigned char")
            )
        ):
            raw = data[: t.nelems]
            text = raw.split(b"\0", 1)[0]
            if all(32 <= b < 127 or b in (9, 10) for b in text):
                return text.decode("ascii")
            return list(raw)
        return [
            self.value(t.type, data[i * esize : (i + 1) * esize], depth + 1)
            for i in range(t.nelems)
        ]

    def aggregate(self, t: T.Struct, data: bytes, depth: int) -> Record:
        out = Record()
        for m in t.members:
            if m.bitfield_size:
                v: Any = self.bitfield(m, data)
            else:
                chunk = self.part(data, m.bit_offset // 8, m.type, f"member {m.name!r}")
                v = self.value(m.type, chunk, depth + 1)
            if not m.name and isinstance(v, dict):
                out.update(v)  # anonymous struct/union: its members are the parent's
            else:
                out[m.name] = v
        return out

    def bitfield(self, m: T.Member, data: bytes) -> int:
        first = m.bit_offset // 8
        last = (m.bit_offset + m.bitfield_size + 7) // 8
        if last > len(data):
            raise BtfError(
                f"{self.btf.what}: bitfield {m.name!r} at bit {m.bit_offset} runs past the end "
                f"of its container ({len(data)} bytes)"
            )
        chunk = int.from_bytes(data[first:last], self.order)
        nbits = (last - first) * 8
        # Bits are numbered from the low end in little-endian storage, from the high end in
        # big-endian storage.
        shift = m.bit_offset % 8 if not self.big else nbits - m.bit_offset % 8 - m.bitfield_size
        v = (chunk >> shift) & ((1 << m.bitfield_size) - 1)
        base = self.btf.resolve(m.type)
        signed = (isinstance(base, T.Int) and base.signed) or (
            isinstance(base, T.Enum) and base.signed
        )
        if signed and v >= 1 << (m.bitfield_size - 1):
            v -= 1 << m.bitfield_size
        return v


def encode_value(btf: Btf, type_id: int, value: Any, *, big_endian: bool | None = None) -> bytes:
    """The bytes of the Python ``value`` as type ``type_id``: the inverse of
    :func:`decode_value` (ints, bools, enum names, lists, ``str``/``bytes`` for char arrays,
    dicts for structs and unions, members left out being zero, or tuples of the members in
    order).  ``bytes`` of the type's
    exact size are taken as they are.  A value that does not fit is a :class:`BtfError`
    naming the type and the value."""
    big = btf.big_endian if big_endian is None else big_endian
    size = btf.size_of(type_id)
    if isinstance(value, (bytes, bytearray)) and len(value) == size:
        return bytes(value)
    out = bytearray(size)
    _Encoder(btf, "big" if big else "little").put(type_id, value, out, 0, 0)
    return bytes(out)


class _Encoder:
    def __init__(self, btf: Btf, order: Any) -> None:
        self.btf = btf
        self.order = order

    def bad(self, type_id: int, value: Any, why: str) -> BtfError:
        return BtfError(
            f"{self.btf.what}: cannot store {value!r} as {self.btf.format(type_id)}: {why}"
        )

    def int_into(
        self, type_id: int, v: int, size: int, signed: bool, out: bytearray, at: int
    ) -> None:
        lo = -(1 << (size * 8 - 1)) if signed else 0
        hi = (1 << (size * 8 - (1 if signed else 0))) - 1
        if not lo <= v <= hi:
            raise self.bad(type_id, v, f"out of range ({lo}..{hi}, {size} bytes)")
        out[at : at + size] = (v % (1 << (size * 8))).to_bytes(size, self.order)

    def put(self, type_id: int, value: Any, out: bytearray, at: int, depth: int) -> None:
        if depth > MAX_RESOLVE_DEPTH:
            raise BtfError(f"{self.btf.what}: type {type_id} nests too deeply (a loop?)")
        t = self.btf.resolve(type_id)
        size = self.btf.size_of(type_id)
        if isinstance(value, (bytes, bytearray)) and len(value) == size:
            out[at : at + size] = value
            return
        if isinstance(t, (T.Int, T.Ptr)):
            if not isinstance(value, int) or isinstance(value, EnumName):
                raise self.bad(type_id, value, "not an integer")
            signed = isinstance(t, T.Int) and t.signed
            if isinstance(t, T.Int) and t.encoding & T.INT_BOOL and value not in (0, 1):
                raise self.bad(type_id, value, "a _Bool is 0 or 1 (False or True)")
            self.int_into(type_id, int(value), size, signed, out, at)
        elif isinstance(t, T.Float):
            fmt = {4: "f", 8: "d"}.get(t.size)
            if fmt is None or not isinstance(value, (int, float)):
                raise self.bad(type_id, value, "give a float (4- and 8-byte floats only)")
            try:
                packed = struct.pack((">" if self.order == "big" else "<") + fmt, value)
            except OverflowError:
                raise self.bad(type_id, value, "out of range for a 4-byte float") from None
            out[at : at + size] = packed
        elif isinstance(t, T.Enum):
            if isinstance(value, str):
                found = [e.value for e in t.values if e.name == value]
                if not found:
                    raise self.bad(type_id, value, "no such enumerator")
                value = found[0]
            if not isinstance(value, int):
                raise self.bad(type_id, value, "not an enumerator or integer")
            self.int_into(type_id, value, t.size, t.signed or value < 0, out, at)
        elif isinstance(t, T.Array):
            esize = self.btf.size_of(t.type)
            if isinstance(value, str):
                try:
                    value = value.encode("ascii")
                except UnicodeEncodeError:
                    raise self.bad(type_id, value, "not ASCII (give bytes)") from None
            if isinstance(value, (bytes, bytearray)) and esize == 1:
                if len(value) > t.nelems:
                    raise self.bad(type_id, value, f"{len(value)} bytes, room for {t.nelems}")
                out[at : at + len(value)] = value
                return
            items = list(value)
            if len(items) > t.nelems:
                raise self.bad(type_id, value, f"{len(items)} elements, room for {t.nelems}")
            for i, item in enumerate(items):
                self.put(t.type, item, out, at + i * esize, depth + 1)
        elif isinstance(t, T.Struct):
            if isinstance(value, tuple):  # members in order (hashable: map keys)
                named = [m.name for m in t.members]
                if len(value) > len(named):
                    raise self.bad(type_id, value, f"{len(value)} values for {len(named)} members")
                value = dict(zip(named[: len(value)], value, strict=True))
            if not isinstance(value, dict):
                members = ", ".join(m.name for m in t.members if m.name)
                raise self.bad(
                    type_id, value, f"give a dict (or tuple) of member values ({members})"
                )
            names = {m.name: m for m in t.members if m.name}
            unknown = set(value) - set(names)
            if unknown:
                raise self.bad(type_id, value, f"no member {sorted(unknown)[0]!r}")
            for name, v in value.items():
                m = names[name]
                if m.bitfield_size:
                    self.bitfield_into(type_id, m, v, out, at)
                    continue
                self.put(m.type, v, out, at + m.bit_offset // 8, depth + 1)
        else:
            raise self.bad(type_id, value, f"{t.kind.name} values are not supported")

    def bitfield_into(self, type_id: int, m: T.Member, v: Any, out: bytearray, at: int) -> None:
        """Store ``v`` in bitfield ``m`` (the inverse of :meth:`_Decoder.bitfield`)."""
        if isinstance(v, str):
            base = self.btf.resolve(m.type)
            found = [e.value for e in getattr(base, "values", ()) if e.name == v]
            if not found:
                raise self.bad(type_id, v, f"member {m.name!r}: no such enumerator")
            v = found[0]
        if not isinstance(v, int):
            raise self.bad(type_id, v, f"member {m.name!r} is a bitfield: give an integer")
        n = m.bitfield_size
        lo = -(1 << (n - 1)) if v < 0 else 0
        if not lo <= v < 1 << n:
            raise self.bad(type_id, v, f"member {m.name!r}: out of range for {n} bits")
        first, last = m.bit_offset // 8, (m.bit_offset + n + 7) // 8
        nbits = (last - first) * 8
        shift = m.bit_offset % 8 if self.order != "big" else nbits - m.bit_offset % 8 - n
        mask = ((1 << n) - 1) << shift
        chunk = int.from_bytes(out[at + first : at + last], self.order)
        chunk = (chunk & ~mask) | ((v % (1 << n)) << shift)
        out[at + first : at + last] = chunk.to_bytes(last - first, self.order)
