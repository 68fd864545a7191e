"""The object being assembled: sections, symbols, fixups; resolved into an ELF object.

It follows llvm-mc's ELF streamer where that decides the output: symbols enter the
symbol table in the order they were first named (locals first, then globals), a section
symbol is emitted only when a relocation uses it, relocations against local symbols go
through the section symbol with the offset as addend (written into the instruction or
data, since BPF uses ``REL``), and a PC-relative fixup to a local label of the same
section is resolved without a relocation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple

from bpfkit.asm.expr import Value
from bpfkit.obj import writer as w

FK_LDDW = "lddw"  # imm of the first lddw slot (R_BPF_64_64)
FK_CALL = "call"  # call imm, PC-relative in instructions (R_BPF_64_32)
FK_JUMP16 = "jump16"  # off of a jump
FK_JUMP32 = "jump32"  # imm of gotol
FK_DATA = "data"  # N bytes of data (R_BPF_64_ABS64 / ABS32 / NODYLD32)


class FixupError(Exception):
    """A fixup that cannot be resolved; ``where`` is the fixup's location tag."""

    def __init__(self, message: str, where: object) -> None:
        super().__init__(message)
        self.where = where


@dataclass(eq=False, slots=True)
class Section:
    """A section being filled."""

    name: str
    type: int
    flags: int
    entsize: int = 0
    align: int = 1
    data: bytearray = field(default_factory=bytearray)
    nobits_size: int = 0
    begin: Symbol | None = None
    fixups: list[Fixup] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Current size (NOBITS sections grow without data)."""
        return self.nobits_size if self.type == w.SHT_NOBITS else len(self.data)


@dataclass(eq=False, slots=True)
class Symbol:
    """A symbol: a label, a section's begin symbol, or a name only referenced."""

    name: str
    section: Section | None = None
    offset: int = 0
    defined: bool = False
    binding: int | None = None
    type: int = w.STT_NOTYPE
    other: int = 0
    size: Value | None = None
    size_where: object = None  # location of the .size directive, for errors
    order: int = -1  # registration order; -1 until registered
    used_in_reloc: bool = False
    common: tuple[int, int] | None = None  # (size, alignment) of a global common symbol
    variable: Value | None = None  # .set sym, expr
    absolute: bool = False

    @property
    def temporary(self) -> bool:
        """``.L`` names never reach the symbol table unless a relocation needs them."""
        return self.name.startswith(".L") or self.name == ""

    def bind(self) -> int:
        """The ELF binding (LLVM's rule when none was set: defined means local)."""
        if self.binding is not None:
            return self.binding
        if self.defined or self.absolute:
            return w.STB_LOCAL
        return w.STB_GLOBAL


class Fixup(NamedTuple):
    """A field to fill once every symbol is known (a named tuple: one per jump and call).

    ``where`` is the location tag a :class:`FixupError` carries back to the caller.
    """

    kind: str
    offset: int
    value: Value
    size: int = 0
    where: object = None


def _merge_type(own: int, base: int) -> int:
    """The type of ``.set alias, base``: the base's, unless the alias's own is stronger."""
    if own == w.STT_FUNC and base in (w.STT_OBJECT, w.STT_NOTYPE, w.STT_TLS):
        return own
    if own == w.STT_OBJECT and base == w.STT_NOTYPE:
        return own
    if own == w.STT_TLS and base in (w.STT_OBJECT, w.STT_NOTYPE, w.STT_FUNC):
        return own
    return base


class Builder:
    """Sections and symbols of one assembly, in creation order."""

    def __init__(self, big_endian: bool = False) -> None:
        self.big_endian = big_endian
        self.sections: list[Section] = []
        self.by_name: dict[tuple[str, str], Section] = {}
        self.symbols: dict[str, Symbol] = {}
        self.registered: list[Symbol] = []
        self.files: list[tuple[str, int]] = []
        self.addrsig: list[Symbol] | None = None
        self._temps = 0
        self.current = self.section(".text", w.SHT_PROGBITS, w.SHF_ALLOC | w.SHF_EXECINSTR)
        self.current.align = 4  # llvm-mc's initial .text alignment

    def release(self) -> None:
        """Break the reference cycles between sections, symbols and fixups (the end)."""
        for sym in self.symbols.values():
            sym.section = sym.size = sym.variable = None
        for sec in self.sections:
            sec.begin = None
            sec.fixups = []
        self.symbols.clear()
        self.registered.clear()
        self.by_name.clear()
        self.addrsig = None

    # --- sections and symbols ------------------------------------------------------
    def section(self, name: str, type_: int, flags: int, entsize: int = 0) -> Section:
        """Switch to a section, creating it on first use; returns it."""
        sec = self.by_name.get((name, ""))
        if sec is None:
            sec = Section(name, type_, flags, entsize)
            # As in llvm-mc, the section's name names its section symbol: an undefined
            # symbol of that name mentioned earlier becomes it, later mentions find it.
            begin = self.symbols.get(name)
            if begin is not None and not begin.defined and begin.variable is None:
                begin.section, begin.offset, begin.defined = sec, 0, True
                begin.binding, begin.type = w.STB_LOCAL, w.STT_SECTION
            else:
                begin = Symbol(name, sec, 0, True, w.STB_LOCAL, w.STT_SECTION)
                self.symbols.setdefault(name, begin)
            sec.begin = begin
            self.sections.append(sec)
            self.by_name[(name, "")] = sec
        self.current = sec
        if sec.begin is not None:
            self.register(sec.begin)
        return sec

    def register(self, sym: Symbol) -> Symbol:
        """Give a symbol its place in the table order (first mention wins)."""
        if sym.order < 0:
            sym.order = len(self.registered)
            self.registered.append(sym)
        return sym

    def symbol(self, name: str) -> Symbol:
        """The symbol called ``name`` (created undefined on first mention)."""
        sym = self.symbols.get(name)
        if sym is None:
            sym = Symbol(name)
            self.symbols[name] = sym
        return sym

    def use(self, name: str) -> Symbol:
        """A symbol named in an instruction or data expression (registers it)."""
        return self.register(self.symbol(name))

    def temp_here(self) -> Symbol:
        """A fresh temporary label at the current location (``.``)."""
        self._temps += 1
        sym = Symbol(f".Ltmp.dot{self._temps}", self.current, self.current.size, True)
        return sym

    def define(self, sym: Symbol) -> None:
        """Define ``sym`` at the current location."""
        sym.section, sym.offset, sym.defined = self.current, self.current.size, True
        self.register(sym)

    # --- emitting ------------------------------------------------------------------
    def emit(self, data: bytes) -> int:
        """Append bytes to the current section; returns their offset."""
        sec = self.current
        off = sec.size
        if sec.type == w.SHT_NOBITS:
            if any(data):
                raise ValueError(f"non-zero data in a NOBITS section ({sec.name})")
            sec.nobits_size += len(data)
        else:
            sec.data += data
        return off

    def align_to(self, align: int, fill: int | None, max_skip: int = 0) -> None:
        """``.p2align``: pad to a multiple of ``align`` (NOPs in code without a fill)."""
        sec = self.current
        sec.align = max(sec.align, align)
        pad = (-sec.size) % align
        if pad == 0 or (max_skip and pad > max_skip):
            return
        if sec.type == w.SHT_NOBITS:
            sec.nobits_size += pad
        elif fill is None and sec.flags & w.SHF_EXECINSTR:
            if pad % 8:
                raise ValueError("unable to pad code to this alignment with 8-byte NOPs")
            nop = struct.pack(">Q" if self.big_endian else "<Q", 0x15000000)
            sec.data += nop * (pad // 8)
        else:
            sec.data += bytes([(fill or 0) & 0xFF]) * pad

    def fixup(
        self, kind: str, offset: int, value: Value, size: int = 0, where: object = None
    ) -> None:
        """Record a fixup in the current section."""
        self.current.fixups.append(Fixup(kind, offset, value, size, where))

    # --- resolution ----------------------------------------------------------------
    def resolve(self, v: Value, where: object) -> Value:
        """Fold ``.set`` aliases and same-section differences; the rest stays symbolic."""
        a, b, c = v.a, v.b, v.c
        while a is not None and a.variable is not None:
            inner = a.variable
            a, c = inner.a, c + inner.c
            if inner.b is not None:
                if b is not None:
                    raise FixupError("expression too complex", where)
                b = inner.b
        if a is not None and a.absolute:  # .set sym, constant
            c += a.offset
            a = None
        if b is not None and b.absolute:
            c -= b.offset
            b = None
        if b is not None:
            if a is None or not (a.defined and b.defined) or a.section is not b.section:
                raise FixupError(
                    "cannot represent a difference across sections (or of undefined symbols)",
                    where,
                )
            return Value(None, None, c + a.offset - b.offset)
        return Value(a, None, c)

    def absolute(self, v: Value, where: object) -> int:
        """The constant value of ``v`` (raises if it still names a symbol)."""
        r = self.resolve(v, where)
        if r.a is not None:
            if r.a.absolute and r.a.variable is None:
                return r.c
            raise FixupError(f"expression must be a constant (it names '{r.a.name}')", where)
        return r.c

    def _reloc_symbol(self, sym: Symbol, c: int) -> tuple[Symbol, int]:
        """The symbol a relocation names and the addend to write (LLVM's choice)."""
        if not sym.defined or sym.bind() != w.STB_LOCAL:
            sym.used_in_reloc = True
            self.register(sym)
            return sym, c
        sec = sym.section
        assert sec is not None and sec.begin is not None
        if sec.flags & w.SHF_MERGE and c != 0:
            sym.used_in_reloc = True
            return sym, c
        sec.begin.used_in_reloc = True
        return sec.begin, c + sym.offset

    def _put(self, sec: Section, off: int, size: int, value: int) -> None:
        fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
        struct.pack_into(
            (">" if self.big_endian else "<") + fmt, sec.data, off, value & ((1 << (8 * size)) - 1)
        )

    def _apply(self, sec: Section, fx: Fixup, value: int) -> None:
        if fx.kind == FK_LDDW:
            self._put(sec, fx.offset + 4, 4, value)
        elif fx.kind == FK_CALL:
            sec.data[fx.offset + 1] = 0x01 if self.big_endian else 0x10
            self._put(sec, fx.offset + 4, 4, (value - 8) >> 3)
        elif fx.kind == FK_JUMP32:
            self._put(sec, fx.offset + 4, 4, (value - 8) >> 3)
        elif fx.kind == FK_JUMP16:
            rel = (value - 8) >> 3
            if not -0x8000 <= rel <= 0x7FFF:
                raise FixupError(f"jump target out of range ({rel} instructions)", fx.where)
            self._put(sec, fx.offset + 2, 2, rel)
        else:
            if sec.type == w.SHT_NOBITS:
                if value:
                    raise FixupError("non-zero data in a NOBITS section", fx.where)
                return
            self._put(sec, fx.offset, fx.size, value)

    def _reloc_type(self, fx: Fixup, sym: Symbol) -> int:
        if fx.kind == FK_LDDW:
            return w.R_BPF_64_64
        if fx.kind == FK_CALL:
            return w.R_BPF_64_32
        if fx.kind == FK_DATA and fx.size == 8:
            return w.R_BPF_64_ABS64
        if fx.kind == FK_DATA and fx.size == 4:
            if sym.defined and sym.section is not None:
                flags = sym.section.flags
                if sym.temporary:
                    if flags & w.SHF_ALLOC and flags & w.SHF_EXECINSTR:
                        return w.R_BPF_64_NODYLD32
                elif flags & w.SHF_ALLOC and flags & w.SHF_WRITE:
                    return w.R_BPF_64_NODYLD32
            return w.R_BPF_64_ABS32
        if fx.kind in (FK_JUMP16, FK_JUMP32):
            raise FixupError("jump target is not a label of this section", fx.where)
        raise FixupError(f"no relocation for a {fx.size}-byte value", fx.where)

    def finish(self) -> bytes:
        """Resolve fixups, compute sizes and write the ELF object."""
        relocs: dict[int, list[tuple[int, int, Symbol]]] = {}
        off16 = struct.Struct(">h" if self.big_endian else "<h").pack_into
        for sec in self.sections:
            data = sec.data
            for fx in sec.fixups:
                kind, offset, (t, b, c) = fx[:3]
                if (  # the common case first: a jump to a local label of this section
                    kind == FK_JUMP16
                    and t is not None
                    and b is None
                    and t.section is sec
                    and t.variable is None
                    and t.binding is None
                ):
                    rel = (t.offset + c - offset - 8) >> 3
                    if -0x8000 <= rel <= 0x7FFF:
                        off16(data, offset + 2, rel)
                        continue
                v = self.resolve(fx.value, fx.where)
                a, c = v.a, v.c
                pcrel = fx.kind in (FK_CALL, FK_JUMP16, FK_JUMP32)
                if a is not None and a.absolute and a.variable is None and not a.defined:
                    a = None  # pragma: no cover - absolute symbols are folded by .set
                if a is None:
                    if fx.kind in (FK_JUMP16, FK_JUMP32, FK_CALL):
                        self._apply(sec, fx, c * 8 + 8)  # a constant target is the offset
                    else:
                        self._apply(sec, fx, c)
                    continue
                if pcrel and a.defined and a.section is sec and a.bind() == w.STB_LOCAL:
                    self._apply(sec, fx, a.offset + c - fx.offset)
                    continue
                if fx.kind in (FK_JUMP16, FK_JUMP32):
                    what = "undefined label" if not a.defined else "label in another section"
                    raise FixupError(f"jump to {what} '{a.name}'", fx.where)
                rtype = self._reloc_type(fx, a)
                target, addend = self._reloc_symbol(a, c)
                self._apply(sec, fx, addend)
                relocs.setdefault(id(sec), []).append((fx.offset, rtype, target))
        return self._write(relocs)

    def _write(self, relocs: dict[int, list[tuple[int, int, Symbol]]]) -> bytes:
        elf_secs: dict[int, w.ElfSection] = {}
        for sec in self.sections:
            elf_secs[id(sec)] = w.ElfSection(
                sec.name,
                sec.type,
                sec.flags,
                sec.align,
                bytes(sec.data),
                sec.nobits_size if sec.type == w.SHT_NOBITS else None,
                sec.entsize,
            )
        locals_: list[tuple[int, w.ElfSymbol]] = []
        globals_: list[w.ElfSymbol] = []
        elf_sym: dict[int, w.ElfSymbol] = {}
        new_symbol = w.ElfSymbol
        for sym in self.registered:
            base: Symbol | None = None
            if sym.variable is not None:
                try:
                    v = self.resolve(Value(sym, None, 0), None)
                except FixupError:
                    continue
                if v.a is None:
                    sym.absolute, sym.offset = True, v.c
                elif v.a.defined:
                    sym.section, sym.offset, sym.defined = v.a.section, v.a.offset + v.c, True
                    base = v.a
            if base is not None:
                # llvm-mc: an alias inherits its base's size and (if stronger) its type.
                if sym.size is None:
                    sym.size = base.size
                sym.type = _merge_type(sym.type, base.type)
            if sym.type == w.STT_SECTION:
                if not sym.used_in_reloc:
                    continue
            elif not sym.used_in_reloc and sym.temporary:
                continue
            es = new_symbol(sym.name, 0, 0, sym.bind(), sym.type, sym.other)
            if sym.absolute:
                es.shndx, es.value = w.SHN_ABS, sym.offset
            elif sym.common is not None and not sym.defined:
                es.shndx, es.value = w.SHN_COMMON, sym.common[1]
                es.size = sym.common[0]
            elif sym.defined and sym.section is not None:
                es.section, es.value = elf_secs[id(sym.section)], sym.offset
            if sym.size is not None and sym.type != w.STT_SECTION:
                es.size = self.absolute(sym.size, sym.size_where)
            elf_sym[id(sym)] = es
            if es.bind == w.STB_LOCAL:
                locals_.append((sym.order, es))
            else:
                globals_.append(es)
        ordered: list[w.ElfSymbol] = []
        files = list(self.files)
        for order, es in locals_:
            while files and files[0][1] <= order:
                ordered.append(w.ElfSymbol(files.pop(0)[0], type=w.STT_FILE, shndx=w.SHN_ABS))
            ordered.append(es)
        for name, _ in files:
            ordered.append(w.ElfSymbol(name, type=w.STT_FILE, shndx=w.SHN_ABS))
        ordered += globals_
        for sec in self.sections:
            es_sec = elf_secs[id(sec)]
            for off, rtype, target in relocs.get(id(sec), []):
                es_sec.relocations.append(w.ElfReloc(off, rtype, elf_sym[id(target)]))
        addrsig = None
        if self.addrsig is not None:
            addrsig = [elf_sym[id(s)] for s in self.addrsig if id(s) in elf_sym]
        out = w.write_relocatable(
            list(elf_secs.values()), ordered, addrsig=addrsig, big_endian=self.big_endian
        )
        for es_sec in elf_secs.values():
            es_sec.relocations = []  # symbol -> section -> relocation -> symbol: a cycle
        return out
