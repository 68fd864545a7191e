"""Read a BPF ELF relocatable object into an :class:`~bpfkit.obj.spec.ObjectSpec`.

``read_object(source, *, name=None)`` takes a path or the file's bytes and returns plain,
frozen data: sections, symbols, relocations (by the section they apply to, each
classified; DWARF ``.debug_*`` relocations are not read), programs (one per function, as
libbpf splits them), license, version, legacy and BTF-defined maps, global data sections
and the ``.BTF``/``.BTF.ext`` blobs.
pyelftools parses the ELF structures; :mod:`bpfkit.obj.elfcheck` vets the headers first.

Any problem with the file raises one :class:`~bpfkit.errors.ObjectError` naming the file
and what is wrong; no other exception escapes for bad input.
"""

from __future__ import annotations

import bisect
import io
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.construct.core import ConstructError
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import Section as ElfSection
from elftools.elf.sections import SymbolTableSection

from bpfkit.errors import BpfkitError, BtfError, IsaError, ObjectError
from bpfkit.isa.insn import LDDW_OPCODE, Insn, decode
from bpfkit.obj import elfcheck, relocs
from bpfkit.obj.legacy_maps import decode_legacy_maps
from bpfkit.obj.sections import typed
from bpfkit.obj.spec import (
    DataSpec,
    MapSpec,
    ObjectSpec,
    ProgramSpec,
    Relocation,
    Section,
    Symbol,
)

if TYPE_CHECKING:
    from bpfkit.btf.btf import Btf

# Errors pyelftools (and struct, on short reads) raise for inconsistent files.
_PARSE_ERRORS = (
    ELFError,
    ELFParseError,
    ConstructError,
    struct.error,
    ValueError,
    IndexError,
    KeyError,
    UnicodeError,
    OverflowError,
    AttributeError,
    TypeError,
)

_SHN_SPECIAL = {"SHN_UNDEF": 0, "SHN_ABS": 0xFFF1, "SHN_COMMON": 0xFFF2, "SHN_XINDEX": 0xFFFF}
_SHT_REL, _SHT_RELA = "SHT_REL", "SHT_RELA"
_MAX_NOBITS = 64 << 20
LDDW_BYTE = bytes([LDDW_OPCODE])
_SHF_ALLOC = 0x2


def read_object(
    source: str | os.PathLike[str] | bytes, *, name: str | None = None, programs: bool = True
) -> ObjectSpec:
    """Read a BPF ELF object from a path or from its bytes.

    ``name`` is the name used in error messages and ``ObjectSpec.path`` (default: the
    path, or ``<bytes>``).  ``programs=False`` neither splits the executable sections into
    programs nor decodes their instructions nor reads map definitions
    (``ObjectSpec.programs`` and ``ObjectSpec.maps`` are then empty), for
    readers that need only the sections, symbols and relocations, such as the
    disassembler, which decodes the bytes itself.  Raises :class:`ObjectError` for anything
    that is not a readable BPF relocatable object.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        path = name or "<bytes>"
    else:
        path = name or os.fspath(source)
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ObjectError(f"{path}: cannot read: {e.strerror or e}") from e
    try:
        return _Reader(data, path, want_programs=programs).read()
    except ObjectError:
        raise
    except BpfkitError as e:
        raise ObjectError(f"{path}: {e}") from e
    except _PARSE_ERRORS as e:
        raise ObjectError(
            f"{path}: malformed ELF object ({type(e).__name__}: {e}); the file is corrupt or "
            "not produced by an ELF toolchain"
        ) from e


@dataclass
class _Reader:
    data: bytes
    path: str
    want_programs: bool = True
    big: bool = False
    sections: list[Section] = field(default_factory=list)
    symbols: list[Symbol] = field(default_factory=list)
    relocations: dict[str, tuple[Relocation, ...]] = field(default_factory=dict)
    by_index: dict[int, tuple[Relocation, ...]] = field(default_factory=dict)
    btf: Btf | None = None
    kconfig: frozenset[str] = frozenset()
    insn_cache: dict[int, Insn] = field(default_factory=dict)
    by_section: dict[int, list[Symbol]] | None = None

    def read(self) -> ObjectSpec:
        big, shoff, shnum, _ = elfcheck.check_header(self.data, self.path)
        self.big = big
        elfcheck.check_sections(self.data, self.path, big, shoff, shnum)
        elf = ELFFile(io.BytesIO(self.data))
        raw_sections = [elf.get_section(i) for i in range(shnum)]
        self._read_sections(raw_sections)
        symtabs = [s for s in raw_sections if isinstance(s, SymbolTableSection)]
        if symtabs:
            self._read_symbols(symtabs[0])
        self._parse_btf()
        for sec in raw_sections:
            if isinstance(sec, RelocationSection) and sec.header["sh_type"] in (
                _SHT_REL,
                _SHT_RELA,
            ):
                self._read_relocations(sec)
        return ObjectSpec(
            path=self.path,
            big_endian=big,
            programs=tuple(self._programs()) if self.want_programs else (),
            # Map definitions are for loading; a listing must not depend on them.
            maps=tuple(self._maps()) if self.want_programs else (),
            data=tuple(self._data_sections()),
            license=self._license(),
            version=self._version(),
            sections=tuple(self.sections),
            symbols=tuple(self.symbols),
            relocations=self.relocations,
            btf=self._blob(".BTF"),
            btf_ext=self._blob(".BTF.ext"),
            parsed={} if self.btf is None else {"btf": self.btf},
        )

    def _parse_btf(self) -> None:
        """Parse .BTF when something needs it: BTF-defined maps, or externs (.kconfig)."""
        sec = self._find(".BTF")
        if sec is None:
            return
        wanted = self._find(".maps") is not None or any(
            s.section_index == 0 and s.name for s in self.symbols
        )
        if not wanted:
            return
        # Imported here: most objects (and every disassembly) need no parsed BTF.
        from bpfkit.btf import types as BtfTypes
        from bpfkit.btf.btf import parse_btf

        try:
            self.btf = parse_btf(sec.data, big_endian=self.big)
        except BtfError as e:
            raise ObjectError(f"{self.path}: {e}") from e
        kconfig = self.btf.find_all(".kconfig", BtfTypes.Kind.DATASEC)
        if kconfig:
            assert isinstance(kconfig[0], BtfTypes.Datasec)
            self.kconfig = frozenset(self.btf.type(v.type).name for v in kconfig[0].vars)

    # --- ELF structures ------------------------------------------------------------------

    def _read_sections(self, raw: list[ElfSection]) -> None:
        for i, sec in enumerate(raw):
            hdr = sec.header
            sh_type = hdr["sh_type"]
            type_name = sh_type if isinstance(sh_type, str) else f"{sh_type:#x}"
            off, size = hdr["sh_offset"], hdr["sh_size"]
            body = b"" if type_name == "SHT_NOBITS" else self.data[off : off + size]
            if type_name == "SHT_NULL" and off + size > len(self.data):
                body = b""  # unchecked (elfcheck skips SHT_NULL): no contents, as for libbpf
            self.sections.append(
                Section(
                    index=i,
                    name=sec.name,
                    type=type_name,
                    flags=hdr["sh_flags"],
                    size=size,
                    offset=off,
                    addralign=hdr["sh_addralign"],
                    data=body,
                )
            )

    def _read_symbols(self, symtab: SymbolTableSection) -> None:
        entsize = symtab.header["sh_entsize"]
        if entsize != 24:
            raise ObjectError(
                f"{self.path}: corrupt symbol table {symtab.name!r}: sh_entsize {entsize}, "
                "ELF64 symbols are 24 bytes"
            )
        for n, sym in enumerate(symtab.iter_symbols()):
            e = sym.entry
            shndx = e["st_shndx"]
            index = _SHN_SPECIAL.get(shndx, 0xFFFF) if isinstance(shndx, str) else shndx
            section = None
            if 0 < index < 0xFF00:
                if index >= len(self.sections):
                    raise ObjectError(
                        f"{self.path}: symbol #{n} {sym.name!r} refers to section {index}, "
                        f"but there are only {len(self.sections)} sections"
                    )
                section = self.sections[index].name
            self.symbols.append(
                Symbol(
                    name=sym.name,
                    value=e["st_value"],
                    size=e["st_size"],
                    bind=_enum_name(e["st_info"]["bind"], "STB"),
                    type=_enum_name(e["st_info"]["type"], "STT"),
                    section_index=index,
                    section=section,
                    visibility=_enum_name(e["st_other"]["visibility"], "STV"),
                )
            )

    def _read_relocations(self, sec: RelocationSection) -> None:
        where = f"relocation section {sec.name!r}"
        target_idx = sec.header["sh_info"]
        if not 0 < target_idx < len(self.sections):
            raise ObjectError(
                f"{self.path}: {where} applies to section {target_idx}, which does not exist"
            )
        target = self.sections[target_idx]
        if target.name.startswith(".debug_") and not target.flags & _SHF_ALLOC:
            # DWARF relocations: thousands in objects built against vmlinux.h, and of no
            # use to loading or disassembly (llvm-objdump -d -r does not show them either).
            return
        want = 24 if sec.is_RELA() else 16
        if sec.header["sh_entsize"] != want or sec.header["sh_size"] % want:
            raise ObjectError(
                f"{self.path}: corrupt {where}: entry size {sec.header['sh_entsize']} and "
                f"size {sec.header['sh_size']} (ELF64 {'RELA' if want == 24 else 'REL'} "
                f"entries are {want} bytes)"
            )
        out = []
        for n, r in enumerate(sec.iter_relocations()):
            out.append(self._relocation(n, r.entry, target, where))
        rels = tuple(sorted(out, key=lambda r: r.offset))
        self.relocations[target.name] = self.relocations.get(target.name, ()) + rels
        self.by_index[target.index] = self.by_index.get(target.index, ()) + rels

    def _relocation(self, n: int, e: Any, target: Section, where: str) -> Relocation:
        off, sym_idx, rtype = e["r_offset"], e["r_info_sym"], e["r_info_type"]
        if sym_idx >= len(self.symbols):
            raise ObjectError(
                f"{self.path}: {where}: entry #{n} refers to symbol {sym_idx}, but the symbol "
                f"table has {len(self.symbols)} symbols"
            )
        sym = self.symbols[sym_idx]
        opcode = src = 0
        if target.executable:
            if off % 8 or off + 8 > target.size:
                raise ObjectError(
                    f"{self.path}: {where}: entry #{n} at offset {off:#x} is "
                    + (
                        "not on an instruction boundary"
                        if off % 8 == 0 or off + 8 <= target.size
                        else f"outside section {target.name!r} ({target.size} bytes)"
                    )
                )
            opcode = target.data[off]
            regs = target.data[off + 1]
            src = regs & 0xF if self.big else regs >> 4
        else:
            width = relocs.RELOC_WIDTH.get(rtype, 1)
            if target.type != "SHT_NOBITS" and off + width > target.size:
                raise ObjectError(
                    f"{self.path}: {where}: entry #{n} at offset {off:#x} is outside section "
                    f"{target.name!r} ({target.size} bytes)"
                )
        sym_sec_exec = (
            0 < sym.section_index < len(self.sections)
            and self.sections[sym.section_index].executable
        )
        name = sym.name
        if sym.type == "STT_SECTION" and sym.section is not None:
            name = sym.section
        kind = relocs.classify(
            in_executable=target.executable,
            opcode=opcode,
            src=src,
            rtype=rtype,
            sym_section=sym.section,
            sym_section_executable=sym_sec_exec,
            sym_defined=sym.section_index != 0,
            kconfig=sym.name in self.kconfig,
        )
        return Relocation(
            offset=off,
            type=rtype,
            type_name=relocs.reloc_name(rtype),
            symbol=name,
            symbol_section=sym.section,
            symbol_value=sym.value,
            symbol_type=sym.type,
            kind=kind,
            addend=e.get("r_addend", 0),
        )

    # --- programs ------------------------------------------------------------------------

    def _programs(self) -> Iterable[ProgramSpec]:
        for sec in self.sections:
            if not sec.executable or sec.type != "SHT_PROGBITS" or sec.size == 0:
                continue
            for name, start, end, bind in self._program_ranges(sec):
                yield self._program(sec, name, start, end, bind)

    def _program_ranges(self, sec: Section) -> list[tuple[str, int, int, str]]:
        """(name, start, end, bind) of each program of an executable section, as libbpf splits."""
        here = self._symbols_in(sec.index)
        funcs = sorted((s for s in here if s.type == "STT_FUNC"), key=lambda s: s.value)
        ranges: list[tuple[str, int, int, str]] = []
        if funcs:
            # st_size 0 (hand-written assembly): the function runs to the next function or
            # global label; local labels (loop heads, jump targets) are inside it.
            starts = sorted(
                {
                    s.value
                    for s in here
                    if s.type == "STT_FUNC" or (s.type == "STT_NOTYPE" and s.bind != "STB_LOCAL")
                }
            )
            for s in funcs:
                size = s.size
                if size == 0:
                    nxt = bisect.bisect_right(starts, s.value)
                    size = (starts[nxt] if nxt < len(starts) else sec.size) - s.value
                ranges.append((s.name, s.value, s.value + size, s.bind))
        else:
            # No function symbols (assembler output, old compilers): libbpf before 0.2
            # made one program per section, named by its global symbol at offset 0.
            labels = sorted(
                (s for s in here if s.type == "STT_NOTYPE" and s.bind != "STB_LOCAL"),
                key=lambda s: s.value,
            )
            if not labels or labels[0].value != 0:
                first = labels[0].value if labels else sec.size
                ranges.append((sec.name, 0, first, "STB_GLOBAL"))
            for i, s in enumerate(labels):
                end = labels[i + 1].value if i + 1 < len(labels) else sec.size
                if end > s.value:
                    ranges.append((s.name, s.value, end, s.bind))
        for name, start, end, _ in ranges:
            if end > sec.size or start > end:
                raise ObjectError(
                    f"{self.path}: function {name!r} in section {sec.name!r} spans bytes "
                    f"{start}..{end}, outside the section ({sec.size} bytes)"
                )
            if start % 8 or (end - start) % 8:
                raise ObjectError(
                    f"{self.path}: function {name!r} in section {sec.name!r}: offset {start} "
                    f"and size {end - start} must be multiples of 8 (the instruction size)"
                )
        return ranges

    def _program(self, sec: Section, name: str, start: int, end: int, bind: str) -> ProgramSpec:
        try:
            insns = self._decode(sec.data, start, end)
        except IsaError as e:
            raise ObjectError(f"{self.path}: program {name!r} in section {sec.name!r}: {e}") from e
        srels = self.by_index.get(sec.index, ())
        lo = bisect.bisect_left(srels, start, key=_offset)
        hi = bisect.bisect_left(srels, end, key=_offset)
        rels = tuple(_shift(r, start) for r in srels[lo:hi])
        spec = ProgramSpec(
            name=name,
            section=sec.name,
            section_index=sec.index,
            offset=start,
            insns=insns,
            relocations=rels,
            is_subprog=sec.name == ".text",
            bind=bind,
        )
        return typed(spec)  # the section name, resolved here once for every consumer

    def _decode(self, data: bytes, start: int, end: int) -> tuple[Insn, ...]:
        """Instructions of ``data[start:end]``.

        Insns are immutable values, so identical slots share one object: each distinct
        8 (or 16) bytes is decoded once.  Slots are keyed as little-endian u64 whatever the
        object's byte order (the key is only the bytes); runs of one-slot instructions
        between two ``lddw`` are looked up in bulk.
        """
        cache = self.insn_cache
        big = self.big
        n = (end - start) // 8
        slots = struct.unpack_from(f"<{n}Q", data, start)
        opcodes = data[start:end:8]  # byte 0 of every slot

        def miss(q: int) -> Insn:
            insn = cache[q] = decode(q.to_bytes(8, "little"), 0, big)
            return insn

        get = cache.get
        out: list[Insn] = []
        i = 0
        while i < n:
            j = opcodes.find(LDDW_BYTE, i)
            if j < 0:
                j = n
            out.extend([get(q) or miss(q) for q in slots[i:j]])
            if j == n:
                break
            if j + 1 >= n:
                raise IsaError(
                    f"the lddw at byte {8 * j} is cut in half by the end of the function"
                )
            key = slots[j] | (slots[j + 1] << 64)
            insn = get(key)
            if insn is None:
                insn = cache[key] = decode(data, start + 8 * j, big)
            out.append(insn)
            i = j + 2
        return tuple(out)

    # --- maps, data, license, version ----------------------------------------------------

    def _maps(self) -> Iterable[MapSpec]:
        for sec in self.sections:
            if sec.name == "maps" or sec.name.startswith("maps/"):
                syms = self._symbols_in(sec.index)
                yield from decode_legacy_maps(self.path, sec.name, sec.data, syms, self.big)
        for sec in self.sections:
            if sec.name == ".maps":
                syms = sorted(
                    (
                        s
                        for s in self._symbols_in(sec.index)
                        if s.type not in ("STT_SECTION", "STT_FILE")
                    ),
                    key=lambda s: s.value,
                )
                if self.btf is not None:
                    from bpfkit.obj.btf_maps import decode_btf_maps

                    rels = self.by_index.get(sec.index, ())
                    yield from decode_btf_maps(self.path, self.btf, syms, rels)
                    continue
                # No .BTF: names and offsets only; a loader needs the BTF to create them.
                for s in syms:
                    yield MapSpec(name=s.name, section=sec.name, offset=s.value)

    def _data_sections(self) -> Iterable[DataSpec]:
        for sec in self.sections:
            if not relocs.is_data_section(sec.name) or sec.size == 0:
                continue
            if sec.type not in ("SHT_PROGBITS", "SHT_NOBITS"):
                continue
            if sec.type == "SHT_NOBITS" and sec.size > _MAX_NOBITS:
                # The kernel caps a map value at KMALLOC_MAX_SIZE (4 MiB on x86-64), so
                # a zero-filled section this large is corruption, not a program.
                raise ObjectError(
                    f"{self.path}: section {sec.name!r} claims {sec.size} bytes of zeroed "
                    f"data, more than the {_MAX_NOBITS >> 20} MiB a global data map can hold"
                )
            body = bytes(sec.size) if sec.type == "SHT_NOBITS" else sec.data
            syms = tuple(
                s for s in self._symbols_in(sec.index) if s.type not in ("STT_SECTION", "STT_FILE")
            )
            yield DataSpec(
                name=sec.name,
                section_index=sec.index,
                size=sec.size,
                data=body,
                readonly=relocs.is_readonly_data(sec.name),
                symbols=syms,
            )

    def _symbols_in(self, index: int) -> list[Symbol]:
        """Symbols defined in section ``index`` (indexed once: crafted files can have
        thousands of sections)."""
        if self.by_section is None:
            self.by_section = {}
            for sym in self.symbols:
                self.by_section.setdefault(sym.section_index, []).append(sym)
        return self.by_section.get(index, [])

    def _find(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def _license(self) -> str | None:
        sec = self._find("license")
        if sec is None:
            return None
        return sec.data.split(b"\0", 1)[0].decode("utf-8", errors="replace")

    def _version(self) -> int | None:
        sec = self._find("version")
        if sec is None:
            return None
        if len(sec.data) != 4:
            raise ObjectError(
                f"{self.path}: section 'version' has {len(sec.data)} bytes; it must hold one "
                "u32 (the kernel version)"
            )
        return int.from_bytes(sec.data, "big" if self.big else "little")

    def _blob(self, name: str) -> bytes | None:
        sec = self._find(name)
        return None if sec is None else sec.data


def _enum_name(value: object, prefix: str) -> str:
    return value if isinstance(value, str) else f"{prefix}_{value}"


def _offset(r: Relocation) -> int:
    return r.offset


def _shift(r: Relocation, start: int) -> Relocation:
    if start == 0:
        return r
    return Relocation(
        offset=r.offset - start,
        type=r.type,
        type_name=r.type_name,
        symbol=r.symbol,
        symbol_section=r.symbol_section,
        symbol_value=r.symbol_value,
        symbol_type=r.symbol_type,
        kind=r.kind,
        addend=r.addend,
    )
