"""Writing BTF: the one encoder of ``.BTF`` blobs (uapi ``linux/btf.h``), the inverse of
:mod:`bpfkit.btf.parse`.

API::

    encode_btf(types, *, big_endian=False, strings=b"\\0") -> bytes
        types: bpfkit.btf.types objects in type-id order (a leading Void, id 0, is skipped);
        strings: a string section to start from (its offsets stay valid, new names are
        appended), so that a parsed BTF re-encoded keeps the string offsets ``.BTF.ext``
        line_info points at.
    BtfBuilder(): .add(type, share=True) -> id   types built one by one (ids from 1,
        equal types shared unless share=False), .reserve() -> id and .fill(id, type)
        (self-referencing types), .name(text) -> string offset (for .BTF.ext records),
        .types, .encode(big_endian=False) -> bytes
    encode_btf_ext(func_info, line_info, core_relos, section_name, *, big_endian=False)
        -> bytes      the .BTF.ext of bpfkit.btf.ext records, by ELF section

``encode_btf(parse_btf(raw).types, strings=...)`` gives ``raw`` back for what clang and
pahole write (tested); the loader's fix-ups (:mod:`bpfkit.btf.fixup`), the build step's
``.maps`` BTF for Rust programs and any other writer go through here.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from bpfkit.btf import types as T
from bpfkit.btf.ext import CoreRelo, FuncInfo, LineInfo
from bpfkit.btf.parse import HDR_MIN, MAGIC
from bpfkit.btf.types import Kind
from bpfkit.errors import BtfError


class _Strings:
    """A string section being written: starts from ``initial``, appends new names."""

    def __init__(self, initial: bytes) -> None:
        if not initial or initial[0] != 0 or initial[-1] != 0:
            raise BtfError("BTF encoder: a string section starts and ends with a NUL byte")
        self.data = bytearray(initial)
        self.offsets: dict[str, int] = {}
        start = 0
        for piece in bytes(initial).split(b"\0")[:-1]:
            self.offsets.setdefault(piece.decode("utf-8", errors="replace"), start)
            start += len(piece) + 1

    def add(self, name: str) -> int:
        off = self.offsets.get(name)
        if off is None:
            off = len(self.data)
            self.offsets[name] = off
            self.data += name.encode() + b"\0"
        return off


def _u32(value: int, what: str) -> int:
    if not 0 <= value <= 0xFFFFFFFF:
        raise BtfError(f"BTF encoder: {what} {value} does not fit in 32 bits")
    return value


def _record(t: T.Type, e: str, name: int, strs: _Strings) -> bytes:
    def head(kind: Kind, vlen: int, size_or_type: int, kflag: bool = False) -> bytes:
        if vlen > 0xFFFF:
            raise BtfError(f"BTF encoder: type {t.id} ({t.name!r}) has {vlen} entries (max 65535)")
        info = (int(kflag) << 31) | (int(kind) << 24) | vlen
        return struct.pack(e + "III", name, info, _u32(size_or_type, f"type {t.id} size/type"))

    if isinstance(t, T.Int):
        enc = (t.encoding << 24) | (t.bit_offset << 16) | t.bits
        return head(Kind.INT, 0, t.size) + struct.pack(e + "I", enc)
    if isinstance(t, T.TypeTag):
        return head(Kind.TYPE_TAG, 0, t.type, t.attribute)
    if isinstance(t, T.Ref):  # Ptr, Typedef, Volatile, Const, Restrict
        return head(t.KIND, 0, t.type)
    if isinstance(t, T.Array):
        return head(Kind.ARRAY, 0, 0) + struct.pack(e + "III", t.type, t.index_type, t.nelems)
    if isinstance(t, T.Struct):  # and Union
        kflag = any(m.bitfield_size for m in t.members)
        body = b"".join(
            struct.pack(
                e + "III",
                strs.add(m.name),
                m.type,
                (m.bitfield_size << 24 | m.bit_offset) if kflag else m.bit_offset,
            )
            for m in t.members
        )
        return head(t.KIND, len(t.members), t.size, kflag) + body
    if isinstance(t, T.Enum64):
        body = b"".join(
            struct.pack(
                e + "III",
                strs.add(v.name),
                (v.value & 0xFFFFFFFFFFFFFFFF) & 0xFFFFFFFF,
                (v.value & 0xFFFFFFFFFFFFFFFF) >> 32,
            )
            for v in t.values
        )
        return head(Kind.ENUM64, len(t.values), t.size, t.signed) + body
    if isinstance(t, T.Enum):
        body = b"".join(
            struct.pack(e + "II", strs.add(v.name), v.value & 0xFFFFFFFF) for v in t.values
        )
        return head(Kind.ENUM, len(t.values), t.size, t.signed) + body
    if isinstance(t, T.Fwd):
        return head(Kind.FWD, 0, 0, t.union)
    if isinstance(t, T.Func):
        return head(Kind.FUNC, t.linkage, t.type)
    if isinstance(t, T.FuncProto):
        body = b"".join(struct.pack(e + "II", strs.add(p.name), p.type) for p in t.params)
        return head(Kind.FUNC_PROTO, len(t.params), t.return_type) + body
    if isinstance(t, T.Var):
        return head(Kind.VAR, 0, t.type) + struct.pack(e + "I", t.linkage)
    if isinstance(t, T.Datasec):
        body = b"".join(
            struct.pack(e + "III", v.type, _u32(v.offset, "DATASEC offset"), v.size) for v in t.vars
        )
        return head(Kind.DATASEC, len(t.vars), t.size) + body
    if isinstance(t, T.Float):
        return head(Kind.FLOAT, 0, t.size)
    if isinstance(t, T.DeclTag):
        return head(Kind.DECL_TAG, 0, t.type, t.attribute) + struct.pack(e + "i", t.component_idx)
    raise BtfError(f"BTF encoder: type {t.id} has kind {t.kind.name}, which has no record")


def encode_btf(
    types: Iterable[T.Type], *, big_endian: bool = False, strings: bytes = b"\0"
) -> bytes:
    """The ``.BTF`` blob of ``types`` (in id order; a leading ``Void`` is skipped)."""
    e = ">" if big_endian else "<"
    strs = _Strings(strings)
    records = []
    for t in types:
        if t.KIND == Kind.VOID:
            continue
        records.append(_record(t, e, strs.add(t.name), strs))
    type_data = b"".join(records)
    header = struct.pack(
        e + "HBBIIIII", MAGIC, 1, 0, HDR_MIN, 0, len(type_data), len(type_data), len(strs.data)
    )
    return header + type_data + bytes(strs.data)


class BtfBuilder:
    """Types added one at a time, numbered from 1; :meth:`encode` writes the blob."""

    def __init__(self) -> None:
        self.types: list[T.Type] = []
        self._shared: dict[T.Type, int] = {}
        self._strings = _Strings(b"\0")

    def name(self, text: str) -> int:
        """The offset of ``text`` in the string section (added once): for records that
        point into it (``.BTF.ext`` line_info, section names)."""
        return self._strings.add(text)

    def reserve(self) -> int:
        """An id for a type :meth:`fill` gives later (a struct that points to itself)."""
        self.types.append(T.Void(len(self.types) + 1, ""))
        return len(self.types)

    def fill(self, type_id: int, t: T.Type) -> None:
        """Give the type :meth:`reserve` made room for."""
        self.types[type_id - 1] = dataclasses.replace(t, id=type_id)

    def add(self, t: T.Type, *, share: bool = True) -> int:
        """Add ``t`` (its ``id`` is ignored) and return its type id; with ``share`` an
        equal type added before is reused."""
        key = dataclasses.replace(t, id=0)
        if share and key in self._shared:
            return self._shared[key]
        type_id = len(self.types) + 1
        self.types.append(dataclasses.replace(t, id=type_id))
        if share:
            self._shared[key] = type_id
        return type_id

    def encode(self, *, big_endian: bool = False) -> bytes:
        """The ``.BTF`` blob of the types added so far."""
        for t in self.types:
            if t.KIND == Kind.VOID:
                raise BtfError(f"BTF encoder: type {t.id} was reserved but never filled")
        return encode_btf(self.types, big_endian=big_endian, strings=bytes(self._strings.data))


def encode_btf_ext(
    func_info: Mapping[str, Sequence[FuncInfo]],
    line_info: Mapping[str, Sequence[LineInfo]],
    core_relos: Mapping[str, Sequence[CoreRelo]],
    section_name: Callable[[str], int],
    *,
    big_endian: bool = False,
) -> bytes:
    """The ``.BTF.ext`` blob of these records (by ELF section; sections without records
    are left out); ``section_name`` gives a section name's offset in the ``.BTF`` string
    section (:meth:`BtfBuilder.name`).  The records' string offsets are written as given."""
    e = ">" if big_endian else "<"

    def block(recs: Mapping[str, Sequence[Any]], size: int, row: Callable[[Any], bytes]) -> bytes:
        out = struct.pack(e + "I", size)
        for sec, rows in recs.items():
            if rows:
                out += struct.pack(e + "II", section_name(sec), len(rows))
                out += b"".join(row(r) for r in rows)
        return out

    fi = block(func_info, 8, lambda r: struct.pack(e + "II", r.insn_off, r.type_id))
    li = block(
        line_info,
        16,
        lambda r: struct.pack(
            e + "IIII", r.insn_off, r.file_name_off, r.line_off, r.line << 10 | r.column
        ),
    )
    cr = block(
        core_relos,
        16,
        lambda r: struct.pack(e + "IIII", r.insn_off, r.type_id, r.access_str_off, r.kind),
    )
    hdr_len = 32
    header = struct.pack(
        e + "HBBI6I",
        MAGIC,
        1,
        0,
        hdr_len,
        0,
        len(fi),
        len(fi),
        len(li),
        len(fi) + len(li),
        len(cr),
    )
    return header + fi + li + cr
