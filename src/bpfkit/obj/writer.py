"""An ELF64 relocatable-object writer (``ET_REL``, ``EM_BPF``), for the assembler.

The caller gives the sections (with their relocations) and the symbols in symbol-table
order; the writer adds ``.strtab`` (index 1, also the section-name table), one ``.rel<name>``
section right after each section that has relocations, ``.llvm_addrsig`` when asked, and
``.symtab`` last.  The layout follows LLVM's ELF writer (header, section contents, symbol
table, relocation tables, address-significance table, string table, section headers) and
its string table is tail-merged the way LLVM's ``StringTableBuilder`` does it, so objects
match what ``llvm-mc -filetype=obj`` writes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

EM_BPF = 247
ET_REL = 1

SHT_NULL = 0
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_NOTE = 7
SHT_NOBITS = 8
SHT_REL = 9
SHT_INIT_ARRAY = 14
SHT_FINI_ARRAY = 15
SHT_PREINIT_ARRAY = 16
SHT_LLVM_ADDRSIG = 0x6FFF4C03

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHF_MERGE = 0x10
SHF_STRINGS = 0x20
SHF_INFO_LINK = 0x40
SHF_TLS = 0x400
SHF_EXCLUDE = 0x80000000

STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION, STT_FILE, STT_COMMON, STT_TLS = 0, 1, 2, 3, 4, 5, 6

SHN_UNDEF = 0
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2

R_BPF_NONE = 0
R_BPF_64_64 = 1
R_BPF_64_ABS64 = 2
R_BPF_64_ABS32 = 3
R_BPF_64_NODYLD32 = 4
R_BPF_64_32 = 10


@dataclass(eq=False)
class ElfSection:
    """A section to write: name, type, flags, alignment and contents."""

    name: str
    type: int = SHT_PROGBITS
    flags: int = 0
    addralign: int = 1
    data: bytes = b""
    size: int | None = None  # SHT_NOBITS: the size (data stays empty)
    entsize: int = 0
    relocations: list[ElfReloc] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class ElfSymbol:
    """A symbol: ``section`` None means undefined unless ``shndx`` (SHN_ABS/SHN_COMMON) is set."""

    name: str
    value: int = 0
    size: int = 0
    bind: int = STB_LOCAL
    type: int = STT_NOTYPE
    other: int = 0
    section: ElfSection | None = None
    shndx: int | None = None


@dataclass(frozen=True)
class ElfReloc:
    """A ``REL`` entry: offset in its section, ``R_BPF_*`` type, the symbol it names."""

    offset: int
    type: int
    symbol: ElfSymbol


def string_table(names: Iterable[str]) -> tuple[bytes, dict[str, int]]:
    """A tail-merged string table (LLVM's order) and each name's offset in it.

    Names are sorted by their reversed bytes, largest first, so that a name which is a
    suffix of another directly follows it and is stored inside it.
    """
    distinct = {n for n in names if n}
    if "".join(distinct).isascii():  # the usual case: the same order on str, done faster
        return _ascii_string_table(distinct)
    unique = {n.encode() for n in distinct}
    order = sorted(unique, key=lambda b: b[::-1], reverse=True)
    out = bytearray(b"\0")
    offsets: dict[str, int] = {"": 0}
    previous = b""
    for b in order:
        if previous.endswith(b):
            offsets[b.decode()] = len(out) - len(b) - 1
            continue
        offsets[b.decode()] = len(out)
        out += b + b"\0"
        previous = b
    return bytes(out), offsets


def _ascii_string_table(names: set[str]) -> tuple[bytes, dict[str, int]]:
    """:func:`string_table` of ASCII names (one byte per character: offsets are indices)."""
    offsets: dict[str, int] = {"": 0}
    stored: list[str] = []
    end = 1  # length of the table so far
    previous = ""  # the last name stored, reversed
    for rev in sorted([n[::-1] for n in names], reverse=True):
        if previous.startswith(rev):
            offsets[rev[::-1]] = end - len(rev) - 1
            continue
        name = rev[::-1]
        offsets[name] = end
        stored.append(name)
        end += len(name) + 1
        previous = rev
    return "\0".join(["", *stored, ""]).encode("ascii"), offsets


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a if a > 1 else n


def uleb128(v: int) -> bytes:
    """``v`` as an unsigned LEB128 number (DWARF, .llvm_addrsig, ``.uleb128``); a negative
    ``v`` as its 64-bit two's complement, as llvm-mc encodes ``.uleb128 -1``."""
    if v < 0:
        v &= 0xFFFF_FFFF_FFFF_FFFF
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        out.append(byte | (0x80 if v else 0))
        if not v:
            return bytes(out)


def sleb128(v: int) -> bytes:
    """``v`` as a signed LEB128 number (DWARF, ``.sleb128``)."""
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        done = (v == 0 and not byte & 0x40) or (v == -1 and byte & 0x40)
        out.append(byte | (0 if done else 0x80))
        if done:
            return bytes(out)


def write_relocatable(
    sections: Sequence[ElfSection],
    symbols: Sequence[ElfSymbol],
    *,
    addrsig: Sequence[ElfSymbol] | None = None,
    big_endian: bool = False,
) -> bytes:
    """The bytes of an ELF64 BPF relocatable object.

    ``symbols`` excludes the null entry and must list every local symbol before the
    first global or weak one (the ELF rule ``sh_info`` of ``.symtab`` relies on).
    ``addrsig`` (when not None) writes an ``.llvm_addrsig`` section naming those symbols.
    """
    e = ">" if big_endian else "<"
    first_global = next((i for i, s in enumerate(symbols) if s.bind != STB_LOCAL), len(symbols))
    if any(s.bind == STB_LOCAL for s in symbols[first_global:]):
        raise ValueError("local symbols must precede global ones")

    # Section header table: null, .strtab, then each section followed by its .rel section.
    strtab = ElfSection(".strtab", SHT_STRTAB)
    table: list[ElfSection] = [strtab]
    rel_of: dict[int, ElfSection] = {}
    for sec in sections:
        table.append(sec)
        if sec.relocations:
            rel = ElfSection(".rel" + sec.name, SHT_REL, SHF_INFO_LINK, 8, entsize=16)
            rel_of[id(sec)] = rel
            table.append(rel)
    addrsig_sec = None
    if addrsig is not None:
        addrsig_sec = ElfSection(".llvm_addrsig", SHT_LLVM_ADDRSIG, SHF_EXCLUDE, 1)
        table.append(addrsig_sec)
    symtab = ElfSection(".symtab", SHT_SYMTAB, 0, 8, entsize=24)
    table.append(symtab)
    index = {id(s): i + 1 for i, s in enumerate(table)}
    sym_index = {id(s): i + 1 for i, s in enumerate(symbols)}

    strings, offset_of = string_table(
        [s.name for s in table] + [s.name for s in symbols if s.type != STT_SECTION]
    )

    out = bytearray(64)
    placed: dict[int, tuple[int, int]] = {}  # id(section) -> (file offset, size)

    def put(sec: ElfSection, data: bytes, size: int | None = None) -> None:
        start = _align(len(out), sec.addralign)
        out.extend(bytes(start - len(out)))
        out.extend(data)
        placed[id(sec)] = (start, len(data) if size is None else size)

    for sec in sections:
        if sec.type == SHT_NOBITS:
            put(sec, b"", sec.size or 0)
        else:
            put(sec, sec.data)

    pack_sym = struct.Struct(e + "IBBHQQ").pack
    entries = [bytes(24)]
    mask = 2**64 - 1
    for s in symbols:
        if s.shndx is not None:
            shndx = s.shndx
        elif s.section is not None:
            shndx = index[id(s.section)]
        else:
            shndx = SHN_UNDEF
        name = 0 if s.type == STT_SECTION else offset_of[s.name]
        entries.append(
            pack_sym(name, (s.bind << 4) | s.type, s.other, shndx, s.value & mask, s.size)
        )
    put(symtab, b"".join(entries))

    rel_struct = struct.Struct(e + "QQ")
    for sec in sections:
        rel_sec = rel_of.get(id(sec))
        if rel_sec is None:
            continue
        body = b"".join(
            rel_struct.pack(r.offset, (sym_index[id(r.symbol)] << 32) | r.type)
            for r in sec.relocations
        )
        put(rel_sec, body)
    if addrsig_sec is not None and addrsig is not None:
        put(addrsig_sec, b"".join(uleb128(sym_index.get(id(s), 0)) for s in addrsig))
    put(strtab, strings)

    shoff = _align(len(out), 8)
    out.extend(bytes(shoff - len(out)))
    sh_struct = struct.Struct(e + "IIQQQQIIQQ")
    out += bytes(64)
    for sec in table:
        start, size = placed[id(sec)]
        link = info = 0
        if sec.type == SHT_REL:
            link = index[id(symtab)]
            target = next(t for t in sections if rel_of.get(id(t)) is sec)
            info = index[id(target)]
        elif sec.type == SHT_SYMTAB:
            link, info = index[id(strtab)], first_global + 1
        elif sec.type == SHT_LLVM_ADDRSIG:
            link = index[id(symtab)]
        out += sh_struct.pack(
            offset_of[sec.name],
            sec.type,
            sec.flags,
            0,
            start,
            size,
            link,
            info,
            sec.addralign,
            sec.entsize,
        )

    ident = b"\x7fELF" + bytes([2, 2 if big_endian else 1, 1, 0]) + bytes(8)
    header = ident + struct.pack(
        e + "HHIQQQIHHHHHH",
        ET_REL,
        EM_BPF,
        1,
        0,
        0,
        shoff,
        0,
        64,
        0,
        0,
        64,
        len(table) + 1,
        index[id(strtab)],
    )
    out[:64] = header
    return bytes(out)
