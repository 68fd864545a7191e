"""BTF for the ``.maps`` of a Rust program: what ``clang -g`` writes for C, written by hand.

A map declared with the prelude's ``map!`` is a static ``BtfMapDef`` (five ``u64``: type,
key size, value size, max entries, flags) in the ``.maps`` section.  libbpf and bpfkit's
loader read ``.maps`` through BTF, so ``bpfkit build`` assembles the program once, reads
those numbers back from the object, and adds a ``.BTF`` section (as assembler directives)
that describes each map the way libbpf's ``__uint``/``__type`` macros do::

    struct {                                  /* anonymous */
        int (*type)[TYPE];
        int (*max_entries)[MAX_ENTRIES];
        __uN *key;                            /* KEY_SIZE 1, 2, 4 or 8; else */
        unsigned char (*key)[KEY_SIZE];       /* (none if KEY_SIZE is 0) */
        __uN *value;                          /* the same for the value */
        int (*map_flags)[FLAGS];              /* only if FLAGS != 0 */
    } NAME SEC(".maps");

plus the ``VAR`` of each map and the ``DATASEC .maps`` holding them (layouts of the BTF
format: include/uapi/linux/btf.h).  Keys and values are byte arrays: only their sizes
are known here, so those of 1, 2, 4 or 8 bytes are described as unsigned integers.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from bpfkit.errors import BuildError

MAPS_SECTION = ".maps"
DEF_SIZE = 40  # five u64: the prelude's BtfMapDef

_BTF_MAGIC = 0xEB9F
_KIND_INT, _KIND_PTR, _KIND_ARRAY, _KIND_STRUCT, _KIND_VAR, _KIND_DATASEC = 1, 2, 3, 4, 14, 15
_INT_SIGNED = 1
_VAR_GLOBAL = 1


@dataclass(frozen=True, slots=True)
class MapDef:
    """One map of the ``.maps`` section, as the program defined it."""

    name: str
    offset: int  # in the section
    size: int  # of the static
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int


def read_map_defs(obj: bytes, filename: str = "<object>") -> list[MapDef]:
    """The ``.maps`` definitions of an object whose maps are ``BtfMapDef`` statics."""
    elf = ELFFile(io.BytesIO(obj))
    section = elf.get_section_by_name(MAPS_SECTION)
    if section is None:
        return []
    index = elf.get_section_index(MAPS_SECTION)
    data = section.data()
    endian = ">" if not elf.little_endian else "<"
    symtab = elf.get_section_by_name(".symtab")
    defs = []
    if isinstance(symtab, SymbolTableSection):
        for sym in symtab.iter_symbols():
            if sym["st_shndx"] != index or sym["st_info"]["type"] != "STT_OBJECT":
                continue
            off, size = sym["st_value"], sym["st_size"]
            if size != DEF_SIZE or off + size > len(data):
                raise BuildError(
                    f"{filename}: map {sym.name} in {MAPS_SECTION} is {size} bytes, not a "
                    f"bpfkit map definition ({DEF_SIZE}); declare maps with map! and the "
                    "prelude's map types"
                )
            fields = struct.unpack_from(f"{endian}5Q", data, off)
            defs.append(MapDef(sym.name, off, size, *fields))
    return sorted(defs, key=lambda d: d.offset)


class _Btf:
    """A BTF blob being built: types and a string table."""

    def __init__(self, endian: str) -> None:
        self.endian = endian
        self.types: list[bytes] = []
        self.strings = bytearray(b"\0")
        self._names: dict[str, int] = {"": 0}
        self._cache: dict[tuple[object, ...], int] = {}

    def name(self, text: str) -> int:
        if text not in self._names:
            self._names[text] = len(self.strings)
            self.strings += text.encode() + b"\0"
        return self._names[text]

    def _add(self, key: tuple[object, ...], data: bytes) -> int:
        if key in self._cache:
            return self._cache[key]
        self.types.append(data)
        self._cache[key] = len(self.types)  # type ids start at 1
        return len(self.types)

    def _head(self, name: str, kind: int, vlen: int, size_or_type: int) -> bytes:
        return struct.pack(f"{self.endian}3I", self.name(name), kind << 24 | vlen, size_or_type)

    def int_type(self, name: str, size: int, signed: bool) -> int:
        enc = (_INT_SIGNED if signed else 0) << 24 | size * 8
        data = self._head(name, _KIND_INT, 0, size) + struct.pack(f"{self.endian}I", enc)
        return self._add(("int", name), data)

    def array(self, elem: int, index: int, count: int) -> int:
        data = self._head("", _KIND_ARRAY, 0, 0) + struct.pack(
            f"{self.endian}3I", elem, index, count
        )
        return self._add(("array", elem, count), data)

    def ptr(self, target: int) -> int:
        return self._add(("ptr", target), self._head("", _KIND_PTR, 0, target))

    def struct_type(self, members: list[tuple[str, int]], member_size: int, size: int) -> int:
        data = self._head("", _KIND_STRUCT, len(members), size)
        for i, (mname, mtype) in enumerate(members):
            data += struct.pack(f"{self.endian}3I", self.name(mname), mtype, i * member_size * 8)
        self.types.append(data)  # anonymous structs are never shared
        return len(self.types)

    def var(self, name: str, type_id: int) -> int:
        data = self._head(name, _KIND_VAR, 0, type_id) + struct.pack(f"{self.endian}I", _VAR_GLOBAL)
        self.types.append(data)
        return len(self.types)

    def datasec(self, name: str, entries: list[tuple[int, int, int]], size: int) -> int:
        data = self._head(name, _KIND_DATASEC, len(entries), size)
        for var_id, offset, vsize in entries:
            data += struct.pack(f"{self.endian}3I", var_id, offset, vsize)
        self.types.append(data)
        return len(self.types)

    def blob(self) -> bytes:
        type_data = b"".join(self.types)
        header = struct.pack(
            f"{self.endian}HBBIIIII",
            _BTF_MAGIC,
            1,  # version
            0,  # flags
            24,  # hdr_len
            0,  # type_off
            len(type_data),
            len(type_data),  # str_off
            len(self.strings),
        )
        return header + type_data + bytes(self.strings)


def _data_type(btf: _Btf, size: int, uchar_t: int, int_t: int) -> int:
    """A key or value type of ``size`` bytes: ``__uN`` for integer sizes (so tools show
    numbers, as for C's ``__type(key, __u32)``), else ``unsigned char[size]``."""
    if size in (1, 2, 4, 8):
        return btf.int_type(f"__u{size * 8}", size, signed=False)
    return btf.array(uchar_t, int_t, size)


def maps_btf(defs: list[MapDef], *, big_endian: bool = False) -> bytes:
    """The ``.BTF`` blob describing ``defs`` (each a pointer-member struct, see above)."""
    btf = _Btf(">" if big_endian else "<")
    int_t = btf.int_type("int", 4, signed=True)
    uchar_t = btf.int_type("unsigned char", 1, signed=False)
    entries = []
    section_size = 0
    for d in defs:
        # Every member is a pointer: 8 bytes, which is also the size of BtfMapDef's u64s.
        members = [
            ("type", btf.ptr(btf.array(int_t, int_t, d.type))),
            ("max_entries", btf.ptr(btf.array(int_t, int_t, d.max_entries))),
        ]
        if d.key_size:
            members.append(("key", btf.ptr(_data_type(btf, d.key_size, uchar_t, int_t))))
        if d.value_size:
            members.append(("value", btf.ptr(_data_type(btf, d.value_size, uchar_t, int_t))))
        if d.flags:
            members.append(("map_flags", btf.ptr(btf.array(int_t, int_t, d.flags))))
        var_id = btf.var(d.name, btf.struct_type(members, 8, d.size))
        entries.append((var_id, d.offset, d.size))
        section_size = max(section_size, d.offset + d.size)
    btf.datasec(MAPS_SECTION, entries, section_size)
    return btf.blob()


def btf_directives(blob: bytes) -> str:
    """``blob`` as a ``.BTF`` section in assembler directives (appended to rustc's output)."""
    lines = ['\t.section\t.BTF,"",@progbits']
    for i in range(0, len(blob), 16):
        lines.append("\t.byte\t" + ",".join(str(b) for b in blob[i : i + 16]))
    return "\n".join(lines) + "\n"
