"""Decoding ``.BTF.ext``: func_info, line_info and CO-RE relocation records per ELF section.

Layout (libbpf's ``struct btf_ext_header``; offsets count from the end of the header)::

    u16 magic 0xeB9F; u8 version 1; u8 flags; u32 hdr_len;
    u32 func_info_off, func_info_len, line_info_off, line_info_len;
    u32 core_relo_off, core_relo_len                    -- when hdr_len >= 32
    each info block: u32 record_size, then { u32 sec_name_off; u32 num_info;
                                             record_size * num_info bytes } ...

``insn_off`` values are byte offsets inside the ELF section, as the compiler writes them
(the kernel wants instruction indices: divide by 8 and rebase per program).  Section names,
file names, source lines and CO-RE access strings live in ``.BTF``'s string section, so
they are filled in only when ``btf`` is given; otherwise the section key is ``#<name_off>``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, TypeVar

from bpfkit.errors import BtfError

if TYPE_CHECKING:
    from bpfkit.btf.btf import Btf

R = TypeVar("R")


class CoreReloKind(IntEnum):
    """enum bpf_core_relo_kind."""

    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12


@dataclass(frozen=True, slots=True)
class FuncInfo:
    """struct bpf_func_info: the FUNC type of the function starting at ``insn_off``."""

    insn_off: int
    type_id: int


@dataclass(frozen=True, slots=True)
class LineInfo:
    """struct bpf_line_info: source position of the instruction at ``insn_off``."""

    insn_off: int
    file_name_off: int
    line_off: int
    line: int
    column: int
    file_name: str = ""
    source: str = ""  # the source line's text


@dataclass(frozen=True, slots=True)
class CoreRelo:
    """struct bpf_core_relo: a CO-RE relocation of the instruction at ``insn_off``."""

    insn_off: int
    type_id: int
    access_str_off: int
    kind: int  # CoreReloKind (kept as int: newer kinds survive)
    access: str = ""  # "0:1:2" accessor string


@dataclass(frozen=True, slots=True)
class BtfExt:
    """The decoded ``.BTF.ext``; records by ELF section name."""

    big_endian: bool
    func_info: dict[str, tuple[FuncInfo, ...]] = field(default_factory=dict)
    line_info: dict[str, tuple[LineInfo, ...]] = field(default_factory=dict)
    core_relos: dict[str, tuple[CoreRelo, ...]] = field(default_factory=dict)
    func_info_rec_size: int = 8
    line_info_rec_size: int = 16
    core_relo_rec_size: int = 16


def parse_btf_ext(data: bytes, *, big_endian: bool = False, btf: Btf | None = None) -> BtfExt:
    """Parse a ``.BTF.ext`` blob; ``btf`` (the object's ``.BTF``) names sections and lines.

    The byte order comes from the magic (``big_endian`` is a hint, as for parse_btf).
    """
    del big_endian
    data = bytes(data)
    what = ".BTF.ext"
    if len(data) < 24:
        raise BtfError(f"{what}: {len(data)} bytes, too short for the 24-byte header")
    if data[:2] == b"\x9f\xeb":
        e = "<"
    elif data[:2] == b"\xeb\x9f":
        e = ">"
    else:
        raise BtfError(f"{what}: bad magic {data[:2].hex()} (expected 0xeb9f)")
    _, version, _, hdr_len = struct.unpack_from(e + "HBBI", data)
    if version != 1:
        raise BtfError(f"{what}: unsupported version {version}")
    if hdr_len < 24 or hdr_len > len(data):
        raise BtfError(f"{what}: header length {hdr_len} is invalid ({len(data)} bytes of data)")
    fi_off, fi_len, li_off, li_len = struct.unpack_from(e + "IIII", data, 8)
    cr_off = cr_len = 0
    if hdr_len >= 32:
        cr_off, cr_len = struct.unpack_from(e + "II", data, 24)
    name = btf.string if btf is not None else None

    def sec_name(off: int) -> str:
        return name(off) if name else f"#{off}"

    def s(off: int) -> str:
        return name(off) if name else ""

    u = struct.Struct(e + "IIII")

    def func(rec: bytes) -> FuncInfo:
        insn_off, type_id = struct.unpack_from(e + "II", rec)
        return FuncInfo(insn_off, type_id)

    def line(rec: bytes) -> LineInfo:
        insn_off, fname, loff, lc = u.unpack_from(rec)
        return LineInfo(insn_off, fname, loff, lc >> 10, lc & 0x3FF, s(fname), s(loff))

    def core(rec: bytes) -> CoreRelo:
        insn_off, type_id, acc, kind = u.unpack_from(rec)
        return CoreRelo(insn_off, type_id, acc, kind, s(acc))

    body = data[hdr_len:]
    fi, fsz = _block(body, fi_off, fi_len, 8, e, "func_info", sec_name, func)
    li, lsz = _block(body, li_off, li_len, 16, e, "line_info", sec_name, line)
    cr, csz = _block(body, cr_off, cr_len, 16, e, "core_relo", sec_name, core)
    return BtfExt(e == ">", fi, li, cr, fsz, lsz, csz)


def _block(
    body: bytes,
    off: int,
    length: int,
    min_rec: int,
    e: str,
    what: str,
    sec_name: Callable[[int], str],
    make: Callable[[bytes], R],
) -> tuple[dict[str, tuple[R, ...]], int]:
    """Decode one info block into {section name: records}; also return the record size."""
    where = f".BTF.ext {what}"
    if length == 0:
        return {}, min_rec
    if off + length > len(body):
        raise BtfError(
            f"{where}: block (offset {off}, {length} bytes) runs past the end of the data "
            f"({len(body)} bytes after the header)"
        )
    blk = body[off : off + length]
    if length < 4:
        raise BtfError(f"{where}: block of {length} bytes has no record size")
    (rec,) = struct.unpack_from(e + "I", blk)
    if rec < min_rec or rec % 4:
        raise BtfError(f"{where}: record size {rec} is invalid (at least {min_rec}, multiple of 4)")
    out: dict[str, tuple[R, ...]] = {}
    pos = 4
    while pos < length:
        if pos + 8 > length:
            raise BtfError(f"{where}: section header at byte {pos} is cut short")
        name_off, n = struct.unpack_from(e + "II", blk, pos)
        pos += 8
        if n == 0 or pos + n * rec > length:
            raise BtfError(
                f"{where}: section at byte {pos - 8} claims {n} records of {rec} bytes; "
                f"{length - pos} bytes are left"
            )
        name = sec_name(name_off)
        recs = tuple(make(blk[pos + i * rec : pos + (i + 1) * rec]) for i in range(n))
        out[name] = out.get(name, ()) + recs
        pos += n * rec
    return out, rec
