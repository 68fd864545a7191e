"""Source lines for ``bpfkit dump -S`` / ``-l``, as llvm-objdump-19 prints them.

llvm-objdump asks LLVM's symbolizer about every instruction it prints and writes, before
the instruction, what changed since the previous one:

* ``-l``: ``; func():`` when the function name changed, then ``; FILE:LINE`` when the
  line or file changed (or the function did), for a line other than 0;
* ``-S``: ``; <the source line>`` when the line or file changed, if the file can be read
  (a file that cannot be read is warned about once and skipped).

The facts reproduced here (measured on llvm-objdump-19):

* the line comes from the DWARF line table, looked up by section and address: the last row
  at or before the address in the sequence of that section that contains it;
* the file is the row's file entry made absolute as LLVM does (the compilation directory,
  the include directory, the name, joined with ``/`` unless already absolute);
* the function name comes from the ELF symbol table *by address only* (whatever the
  section): of the named function, object and untyped symbols defined in a section,
  the last at or before the address, keeping at each address the one of largest size, if
  the address is inside it (or it has no size).  Objects without DWARF get names too;
* the state carries over from one instruction to the next across symbols and sections.

The line table is read with pyelftools; which section a sequence belongs to is the
section of the symbol its ``DW_LNE_set_address`` is relocated against.
"""

from __future__ import annotations

import bisect
import functools
import io
import os
from dataclasses import dataclass
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection

__all__ = ["LineInfo", "SourceMap", "SourcePrinter", "source_map"]

DELIMITER = "; "
_DW_LNE_SET_ADDRESS = 0x02  # DWARF 5, 6.2.5.3


@dataclass(frozen=True, slots=True)
class LineInfo:
    """What the symbolizer says of one address (``file`` None and ``line`` 0 if nothing)."""

    function: str | None = None
    file: str | None = None
    line: int = 0


class _AddrDieMap:
    """LLVM's map from address to the innermost subroutine DIE (DWARFUnit::AddrDieMap):
    ranges inserted parent first, a child's range splitting its parent's, by address only."""

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.map: dict[int, tuple[int, Any]] = {}

    def _set(self, key: int, value: tuple[int, Any]) -> None:
        if key not in self.map:
            bisect.insort(self.keys, key)
        self.map[key] = value

    def insert(self, lo: int, hi: int, die: Any) -> None:
        if lo == hi:
            return
        i = bisect.bisect_right(self.keys, lo)
        if i > 0:
            bkey = self.keys[i - 1]
            bhi, bdie = self.map[bkey]
            if lo < bhi:
                if hi < bhi:
                    self._set(hi, (bhi, bdie))
                if lo > bkey:
                    self.map[bkey] = (lo, bdie)
        self._set(lo, (hi, die))

    def find(self, addr: int) -> Any:
        i = bisect.bisect_right(self.keys, addr)
        if i == 0:
            return None
        hi, die = self.map[self.keys[i - 1]]
        return None if addr >= hi else die


@dataclass(slots=True)
class _Unit:
    ranges: list[tuple[int, int]]
    dies: _AddrDieMap
    sequences: list[_Sequence]


@dataclass(slots=True)
class _Sequence:
    section: int | None
    addrs: list[int]
    rows: list[tuple[str | None, int]]  # (file, line) per row
    end: int


def _join(*parts: str) -> str:
    out = ""
    for p in parts:
        if not p:
            continue
        if p.startswith("/") or not out:
            out = p
        else:
            out = out.rstrip("/") + "/" + p
    return out


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


class SourceMap:
    """The line table and function symbols of one object, for :meth:`lookup`."""

    def __init__(self, data: bytes) -> None:
        self.units: list[_Unit] = []
        self.sym_addrs: list[int] = []
        self.syms: list[tuple[int, int, str]] = []
        try:
            elf = ELFFile(io.BytesIO(data))
            self._read_symbols(elf)
            if elf.has_dwarf_info():
                self._read_lines(elf)
        except (
            ELFError,
            ValueError,
            KeyError,
            IndexError,
            AssertionError,
            OSError,
            ArithmeticError,
            TypeError,
            AttributeError,
            RecursionError,
        ):
            # Broken debug info: llvm-objdump warns and prints no lines; so do we.  (pyelftools
            # raises whatever its arithmetic meets: a line_range of 0 divides by zero.)
            self.units = []

    def _read_symbols(self, elf: ELFFile) -> None:
        symtab = elf.get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            return
        nsec = elf.num_sections()
        found: list[tuple[int, int, str]] = []
        for sym in symtab.iter_symbols():
            kind = sym["st_info"]["type"]
            if kind not in ("STT_NOTYPE", "STT_FUNC", "STT_OBJECT", "STT_GNU_IFUNC"):
                continue
            shndx = sym["st_shndx"]
            if not isinstance(shndx, int) or not 0 < shndx < nsec or not sym.name:
                continue
            found.append((sym["st_value"], sym["st_size"], sym.name))
        found.sort(key=lambda s: (s[0], s[1]))
        for i, s in enumerate(found):  # the last (largest) of each address
            if i + 1 == len(found) or found[i + 1][0] != s[0]:
                self.syms.append(s)
        self.sym_addrs = [s[0] for s in self.syms]

    def _section_of_set_address(self, elf: ELFFile) -> dict[int, int]:
        """Offsets in .debug_line of relocated words -> the section their symbol is in."""
        out: dict[int, int] = {}
        symtab = elf.get_section_by_name(".symtab")
        for sec in elf.iter_sections():
            if not isinstance(sec, RelocationSection) or not isinstance(symtab, SymbolTableSection):
                continue
            target = elf.get_section(sec["sh_info"])
            if target.name != ".debug_line":
                continue
            for rel in sec.iter_relocations():
                sym = symtab.get_symbol(rel["r_info_sym"])
                shndx = sym["st_shndx"]
                if isinstance(shndx, int):
                    out[rel["r_offset"]] = shndx
        return out

    def _read_lines(self, elf: ELFFile) -> None:
        dwarf = elf.get_dwarf_info()
        relocated = self._section_of_set_address(elf)
        for cu in dwarf.iter_CUs():
            prog = dwarf.line_program_for_CU(cu)
            if prog is None:
                continue
            top = cu.get_top_DIE()
            comp = top.attributes.get("DW_AT_comp_dir")
            comp_dir = _text(comp.value) if comp is not None else ""
            files = self._file_names(prog, comp_dir)
            unit = _Unit(self._ranges(dwarf, top), _AddrDieMap(), [])
            self.units.append(unit)
            for die in cu.iter_DIEs():  # parents before children, as LLVM inserts them
                if die.tag in ("DW_TAG_subprogram", "DW_TAG_inlined_subroutine"):
                    for lo, hi in self._ranges(dwarf, die):
                        unit.dies.insert(lo, hi, die)
            # The relocated words inside the program, in order: one per set_address.
            start, end = prog.program_start_offset, prog.program_end_offset
            offs = sorted(o for o in relocated if start <= o < end)
            k = 0
            section: int | None = None
            addrs: list[int] = []
            rows: list[tuple[str | None, int]] = []
            for entry in prog.get_entries():
                if entry.is_extended and entry.command == _DW_LNE_SET_ADDRESS:
                    section = relocated[offs[k]] if k < len(offs) else None
                    k += 1
                st = entry.state
                if st is None:
                    continue
                if st.end_sequence:
                    if addrs:
                        unit.sequences.append(_Sequence(section, addrs, rows, st.address))
                    addrs, rows = [], []
                    continue
                addrs.append(st.address)
                rows.append((files.get(st.file), st.line))

    @staticmethod
    def _ranges(dwarf: Any, die: Any) -> list[tuple[int, int]]:
        attrs = die.attributes
        if "DW_AT_ranges" in attrs:
            try:
                rl = dwarf.range_lists().get_range_list_at_offset(
                    attrs["DW_AT_ranges"].value, cu=die.cu
                )
            except Exception:  # noqa: BLE001 - pyelftools raises many kinds on odd DWARF
                return []
            base = attrs["DW_AT_low_pc"].value if "DW_AT_low_pc" in attrs else 0
            out = []
            for e in rl or ():
                if hasattr(e, "base_address"):
                    base = e.base_address
                    continue
                lo, hi = e.begin_offset, e.end_offset
                if not getattr(e, "is_absolute", False):
                    lo, hi = lo + base, hi + base
                out.append((lo, hi))
            return out
        if "DW_AT_low_pc" in attrs and "DW_AT_high_pc" in attrs:
            lo = attrs["DW_AT_low_pc"].value
            high = attrs["DW_AT_high_pc"]
            hi = high.value if high.form in ("DW_FORM_addr", "DW_FORM_addrx") else lo + high.value
            return [(lo, hi)]
        return []

    @staticmethod
    def _file_names(prog: Any, comp_dir: str) -> dict[int, str]:
        version = prog.header["version"]
        dirs = [_text(d) for d in prog.header["include_directory"]]
        out: dict[int, str] = {}
        for i, fe in enumerate(prog.header["file_entry"]):
            index = i if version >= 5 else i + 1
            name = _text(fe.name)
            if name.startswith("/"):
                out[index] = name
                continue
            d = fe.dir_index
            inc = ""
            if version >= 5:
                if d < len(dirs):
                    inc = dirs[d]
            elif 0 < d <= len(dirs):
                inc = dirs[d - 1]
            base = ""
            if comp_dir and not inc.startswith("/") and (version < 5 or d != 0):
                base = comp_dir
            out[index] = _join(base, inc, name)
        return out

    def _symbol(self, addr: int) -> str | None:
        i = bisect.bisect_right(self.sym_addrs, addr)
        if i == 0:
            return None
        a, size, name = self.syms[i - 1]
        if size and a + size <= addr:
            return None
        return name

    @staticmethod
    def _die_name(die: Any) -> str | None:
        seen = 0
        while die is not None and seen < 16:
            attrs = die.attributes
            for key in ("DW_AT_MIPS_linkage_name", "DW_AT_linkage_name", "DW_AT_name"):
                if key in attrs:
                    return _text(attrs[key].value)
            nxt = None
            for key in ("DW_AT_abstract_origin", "DW_AT_specification"):
                if key in attrs:
                    nxt = die.get_DIE_from_attribute(key)
                    break
            die, seen = nxt, seen + 1
        return None

    def lookup(self, section: int, addr: int) -> LineInfo:
        """What llvm-objdump's symbolizer says of ``addr`` in section number ``section``."""
        file: str | None = None
        line = 0
        function: str | None = None
        unit = next(
            (u for u in self.units if not u.ranges or any(lo <= addr < hi for lo, hi in u.ranges)),
            None,
        )
        if unit is not None:
            die = unit.dies.find(addr)
            if die is not None:
                function = self._die_name(die)
            for seq in unit.sequences:
                if seq.section not in (section, None) or not seq.addrs:
                    continue
                if not seq.addrs[0] <= addr < seq.end:
                    continue
                i = bisect.bisect_right(seq.addrs, addr) - 1
                file, line = seq.rows[i]
                break
        # The symbol table's name, found by address alone, wins over DWARF's.
        function = self._symbol(addr) or function
        return LineInfo(function, file, line)


@functools.lru_cache(maxsize=8)
def source_map(data: bytes) -> SourceMap:
    """The :class:`SourceMap` of the object ``data``, parsed once for the same bytes (-S, -l
    and -S -l of one object read its DWARF once; a map is not changed by lookups)."""
    return SourceMap(data)


class SourcePrinter:
    """The lines llvm-objdump prints before each instruction, and its warnings."""

    def __init__(self, smap: SourceMap, *, source: bool, lines: bool) -> None:
        self.smap = smap
        self.source = source
        self.lines = lines
        self.old = LineInfo()
        self.cache: dict[str, list[str] | None] = {}
        self.warnings: list[str] = []

    def before(self, section: int, addr: int) -> str:
        info = self.smap.lookup(section, addr)
        old = self.old
        out: list[str] = []
        if self.lines:
            new_function = info.function is not None and info.function != old.function
            if new_function:
                name = info.function or ""
                out.append(f"{DELIMITER}{name}{'' if name.endswith('()') else '()'}:\n")
            if (
                info.file is not None
                and info.line
                and (old.line != info.line or old.file != info.file or new_function)
            ):
                out.append(f"{DELIMITER}{info.file}:{info.line}\n")
        if (
            self.source
            and info.file is not None
            and info.line
            and not (old.line == info.line and old.file == info.file)
        ):
            text = self._source_lines(info.file)
            if text is not None:
                if info.line > len(text):
                    self.warnings.append(
                        f"debug info line number {info.line} exceeds the number of lines "
                        f"in {info.file}"
                    )
                else:
                    out.append(f"{DELIMITER}{text[info.line - 1]}\n")
        self.old = info
        return "".join(out)

    def _source_lines(self, path: str) -> list[str] | None:
        if path in self.cache:
            return self.cache[path]
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            self.warnings.append(f"failed to find source {path}: {os.strerror(e.errno or 0)}")
            self.cache[path] = None
            return None
        text = raw.decode("utf-8", "surrogateescape")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
        self.cache[path] = lines
        return lines
