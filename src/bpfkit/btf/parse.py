"""Decoding the ``.BTF`` blob: header, type section, string section (uapi ``linux/btf.h``).

Layout::

    struct btf_header { u16 magic (0xeB9F); u8 version (1); u8 flags; u32 hdr_len;
                        u32 type_off, type_len, str_off, str_len; }  -- offsets after hdr_len
    struct btf_type   { u32 name_off; u32 info; u32 size_or_type; }  -- then kind-specific data
    info: vlen (bits 0-15), kind (bits 24-28), kind_flag (bit 31)

The byte order is the one of the magic (libbpf does the same), so both ``bpfel`` and
``bpfeb`` objects parse.  Split BTF (module BTF on top of vmlinux) continues the type ids
and string offsets of its base.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from bpfkit.btf import types as T
from bpfkit.btf.types import Kind
from bpfkit.errors import BtfError

MAGIC = 0xEB9F
# Plain ints: comparing IntEnum members is several times slower in the parse loop.
_INT, _PTR, _ARRAY, _STRUCT, _UNION, _ENUM, _FWD, _TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
_VOLATILE, _CONST, _RESTRICT, _FUNC, _FUNC_PROTO, _VAR, _DATASEC = 9, 10, 11, 12, 13, 14, 15
_FLOAT, _DECL_TAG, _TYPE_TAG, _ENUM64 = 16, 17, 18, 19
HDR_MIN = 24


class Header(NamedTuple):
    """The decoded ``struct btf_header``."""

    big_endian: bool
    version: int
    flags: int
    hdr_len: int
    type_off: int
    type_len: int
    str_off: int
    str_len: int


def parse_header(data: bytes, what: str = ".BTF") -> Header:
    """Decode and check the header; the byte order comes from the magic."""
    if len(data) < HDR_MIN:
        raise BtfError(f"{what}: {len(data)} bytes, too short for the 24-byte BTF header")
    if data[:2] == b"\x9f\xeb":
        big = False
    elif data[:2] == b"\xeb\x9f":
        big = True
    else:
        raise BtfError(f"{what}: bad magic {data[:2].hex()} (expected 0xeb9f in either byte order)")
    e = ">" if big else "<"
    _, version, flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        e + "HBBIIIII", data
    )
    if version != 1:
        raise BtfError(f"{what}: unsupported BTF version {version} (only version 1 exists)")
    if hdr_len < HDR_MIN or hdr_len > len(data):
        raise BtfError(f"{what}: header length {hdr_len} is invalid ({len(data)} bytes of data)")
    # A longer header than we know must be zero-filled (as the kernel requires).
    if any(data[HDR_MIN:hdr_len]):
        raise BtfError(f"{what}: header has {hdr_len} bytes with unknown non-zero fields")
    end = len(data) - hdr_len
    for name, off, ln in (("type", type_off, type_len), ("string", str_off, str_len)):
        if off + ln > end:
            raise BtfError(
                f"{what}: {name} section (offset {off}, {ln} bytes) runs past the end of the "
                f"data ({end} bytes after the header)"
            )
    if type_off % 4:
        raise BtfError(f"{what}: type section offset {type_off} is not 4-byte aligned")
    return Header(big, version, flags, hdr_len, type_off, type_len, str_off, str_len)


class Strings:
    """The string section, with base BTF strings first for split BTF."""

    def __init__(self, data: bytes, base: Strings | None, what: str) -> None:
        if data and data[-1] != 0:
            raise BtfError(f"{what}: string section does not end with a NUL byte")
        if base is None and data and data[0] != 0:
            raise BtfError(f"{what}: string section must start with an empty string")
        self.data = data
        self.base = base
        self.start: int = base.end if base else 0
        self.end: int = self.start + len(data)
        self.what = what
        self._cache: dict[int, str] = {0: ""}

    def get(self, off: int) -> str:
        """The NUL-terminated string at ``off``."""
        s = self._cache.get(off)
        if s is not None:
            return s
        if off < self.start:
            assert self.base is not None
            return self.base.get(off)
        rel = off - self.start
        if rel >= len(self.data):
            raise BtfError(
                f"{self.what}: string offset {off} is outside the string section ({self.end} bytes)"
            )
        end = self.data.index(b"\0", rel)
        s = self.data[rel:end].decode("utf-8", errors="replace")
        self._cache[off] = s
        return s


def parse_types(
    data: bytes, hdr: Header, strings: Strings, first_id: int, what: str
) -> list[T.Type]:
    """Decode the type section into types numbered from ``first_id``."""
    e = ">" if hdr.big_endian else "<"
    u32 = struct.Struct(e + "I")
    head = struct.Struct(e + "III")
    three = struct.Struct(e + "III")
    two = struct.Struct(e + "II")
    enum32 = struct.Struct(e + "Ii")
    get = strings.get
    start = hdr.hdr_len + hdr.type_off
    end = start + hdr.type_len
    pos = start
    out: list[T.Type] = []
    tid = first_id
    while pos < end:
        if pos + 12 > end:
            raise BtfError(
                f"{what}: type {tid} at byte {pos - start} of the type section is cut short"
            )
        name_off, info, size_or_type = head.unpack_from(data, pos)
        pos += 12
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        kflag = info >> 31
        layout = _EXTRA.get(kind)
        if layout is None:
            raise BtfError(f"{what}: type {tid} has unknown kind {kind}")
        extra = layout[0] + layout[1] * vlen
        if pos + extra > end:
            raise BtfError(
                f"{what}: type {tid} ({Kind(kind).name}) needs {extra} more bytes at byte "
                f"{pos - start} of the type section; only {end - pos} are left"
            )
        name = get(name_off)
        t: T.Type
        if kind == _INT:
            (enc,) = u32.unpack_from(data, pos)
            t = T.Int(tid, name, size_or_type, (enc >> 24) & 0xF, (enc >> 16) & 0xFF, enc & 0xFF)
        elif kind == _PTR:
            t = T.Ptr(tid, name, size_or_type)
        elif kind == _ARRAY:
            elem, index, n = three.unpack_from(data, pos)
            t = T.Array(tid, name, elem, index, n)
        elif kind == _STRUCT or kind == _UNION:
            members = []
            for m_name, m_type, m_off in three.iter_unpack(data[pos : pos + extra]):
                if kflag:
                    members.append(T.Member(get(m_name), m_type, m_off & 0xFFFFFF, m_off >> 24))
                else:
                    members.append(T.Member(get(m_name), m_type, m_off))
            cls = T.Struct if kind == _STRUCT else T.Union
            t = cls(tid, name, size_or_type, tuple(members))
        elif kind == _ENUM:
            vals = tuple(
                T.EnumValue(get(n_off), v if kflag else v & 0xFFFFFFFF)
                for n_off, v in enum32.iter_unpack(data[pos : pos + extra])
            )
            t = T.Enum(tid, name, size_or_type, vals, bool(kflag))
        elif kind == _ENUM64:
            vals64 = []
            for n_off, lo, hi in three.iter_unpack(data[pos : pos + extra]):
                v = (hi << 32) | lo
                if kflag and v >= 1 << 63:
                    v -= 1 << 64
                vals64.append(T.EnumValue(get(n_off), v))
            t = T.Enum64(tid, name, size_or_type, tuple(vals64), bool(kflag))
        elif kind == _FWD:
            t = T.Fwd(tid, name, bool(kflag))
        elif kind == _TYPEDEF:
            t = T.Typedef(tid, name, size_or_type)
        elif kind == _VOLATILE:
            t = T.Volatile(tid, name, size_or_type)
        elif kind == _CONST:
            t = T.Const(tid, name, size_or_type)
        elif kind == _RESTRICT:
            t = T.Restrict(tid, name, size_or_type)
        elif kind == _TYPE_TAG:
            t = T.TypeTag(tid, name, size_or_type, bool(kflag))
        elif kind == _FUNC:
            t = T.Func(tid, name, size_or_type, vlen)
        elif kind == _FUNC_PROTO:
            params = tuple(
                T.Param(get(p_name), p_type)
                for p_name, p_type in two.iter_unpack(data[pos : pos + extra])
            )
            t = T.FuncProto(tid, name, size_or_type, params)
        elif kind == _VAR:
            (linkage,) = u32.unpack_from(data, pos)
            t = T.Var(tid, name, size_or_type, linkage)
        elif kind == _DATASEC:
            secinfo = tuple(
                T.VarSecinfo(v_type, v_off, v_size)
                for v_type, v_off, v_size in three.iter_unpack(data[pos : pos + extra])
            )
            t = T.Datasec(tid, name, size_or_type, secinfo)
        elif kind == _FLOAT:
            t = T.Float(tid, name, size_or_type)
        elif kind == _DECL_TAG:
            (comp,) = struct.unpack_from(e + "i", data, pos)
            t = T.DeclTag(tid, name, size_or_type, comp, bool(kflag))
        else:
            raise BtfError(f"{what}: type {tid} has kind 0 (void), which only type id 0 may be")
        out.append(t)
        pos += extra
        tid += 1
    return out


# Bytes of kind-specific data after struct btf_type: (fixed, per vlen item), by kind number.
_EXTRA: dict[int, tuple[int, int]] = {
    Kind.VOID.value: (0, 0),
    Kind.INT.value: (4, 0),
    Kind.PTR.value: (0, 0),
    Kind.ARRAY.value: (12, 0),
    Kind.STRUCT.value: (0, 12),
    Kind.UNION.value: (0, 12),
    Kind.ENUM.value: (0, 8),
    Kind.FWD.value: (0, 0),
    Kind.TYPEDEF.value: (0, 0),
    Kind.VOLATILE.value: (0, 0),
    Kind.CONST.value: (0, 0),
    Kind.RESTRICT.value: (0, 0),
    Kind.FUNC.value: (0, 0),
    Kind.FUNC_PROTO.value: (0, 8),
    Kind.VAR.value: (4, 0),
    Kind.DATASEC.value: (0, 12),
    Kind.FLOAT.value: (0, 0),
    Kind.DECL_TAG.value: (4, 0),
    Kind.TYPE_TAG.value: (0, 0),
    Kind.ENUM64.value: (0, 12),
}


def record_size(kind: int, vlen: int) -> int:
    """Bytes of one type record: ``struct btf_type`` and its kind-specific data (an unknown
    kind counts as the bare 12-byte header)."""
    fixed, per_item = _EXTRA.get(kind, (0, 0))
    return 12 + fixed + per_item * vlen


def iter_records(
    data: bytes | bytearray, start: int, length: int, *, big_endian: bool = False
) -> Iterator[tuple[int, int, int, int]]:
    """``(offset, record length, name_off, info)`` of each type record in the ``length``
    bytes of type section at ``start``, undecoded: for code that rewrites or scans raw BTF
    (the loader's fix-ups, an index of the kernel's names).  A record cut short by the end
    of the section ends the walk."""
    head = struct.Struct(">II" if big_endian else "<II").unpack_from
    pos, end = start, start + length
    while pos + 12 <= end:
        name_off, info = head(data, pos)
        n = record_size((info >> 24) & 0x1F, info & 0xFFFF)
        yield pos, n, name_off, info
        pos += n


def name_index(data: bytes, kinds: set[Kind]) -> dict[tuple[int, str], int]:
    """``(kind, name) -> type id`` (the first of that name) of the named types of ``kinds``
    in the BTF ``data``, read record by record without building types: faster than
    parsing when only names are wanted (the kernel's 5 MB BTF), and nothing large stays
    alive for the garbage collector."""
    hdr = parse_header(data)
    t0, s0 = hdr.hdr_len + hdr.type_off, hdr.hdr_len + hdr.str_off
    want = {int(k) for k in kinds}
    out: dict[tuple[int, str], int] = {}
    records = iter_records(data, t0, hdr.type_len, big_endian=hdr.big_endian)
    for type_id, (_, _, name_off, info) in enumerate(records, 1):
        kind = (info >> 24) & 0x1F
        if kind in want and name_off and name_off < hdr.str_len:
            stop = data.find(b"\0", s0 + name_off, s0 + hdr.str_len)
            name = data[s0 + name_off : stop if stop >= 0 else s0 + hdr.str_len]
            out.setdefault((kind, name.decode(errors="replace")), type_id)
    return out
