"""Whole-file disassembly listings, byte for byte what ``llvm-objdump-19 -d`` prints.

:func:`dump` renders an :class:`~bpfkit.obj.spec.ObjectSpec`: the header, one
``Disassembly of section`` block per executable section (in file order), one label per
symbol address, and one line per instruction: its slot index, raw bytes (16 for ``lddw``),
text (from :mod:`bpfkit.disasm.llvm_text`), the jump target as ``<symbol+0x18>``, and with
``relocs=True`` the relocations after the instruction they patch.

llvm-objdump's layout rules reproduced here (measured on llvm-objdump-19):

* symbols of a section: every named symbol defined in it except section and file symbols,
  sorted by address then name; a section with no symbol at offset 0 gets its own name as a
  label there.  Of several symbols at one address only one is printed: the last by name,
  preferring any that is not an object.  A symbol whose range is empty prints nothing, and
  a section with nothing to print has no heading.
* the range of an object symbol (``STT_OBJECT``/``STT_COMMON``) is dumped as data, 8
  bytes a line with their ASCII.
* 8 or more zero bytes at an instruction boundary print as ``...`` and are skipped in
  multiples of 4 (with ``-r``, never past the next relocation).
* bytes that do not decode print as ``<unknown>``: 8 at a time, or 1 at a time when fewer
  than 8 (16 for ``lddw``) remain in the section.
* a jump's target is named after the last symbol (by address, then name) at or before it,
  addresses computed modulo 2**64 as LLVM does.
"""

from __future__ import annotations

import bisect
import operator
import re
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, compress
from typing import TYPE_CHECKING, cast

from bpfkit.disasm.llvm_text import UNKNOWN, SlotPlan, lddw_plan, parse_mcpu, render, slot_plan
from bpfkit.errors import BtfError, ObjectError
from bpfkit.isa.insn import LDDW_OPCODE, trusted_insn
from bpfkit.obj.spec import ObjectSpec, Relocation, Section, Symbol

if TYPE_CHECKING:
    from bpfkit.disasm.source import SourcePrinter

_SHF_EXECINSTR = 0x4
_HIDDEN_TYPES = ("STT_SECTION", "STT_FILE")
_DATA_TYPES = ("STT_OBJECT", "STT_COMMON")
_MASK64 = (1 << 64) - 1

_LE = struct.Struct("<BBhi")
_BE = struct.Struct(">BBhi")


@dataclass(frozen=True, slots=True)
class _Label:
    addr: int
    name: str
    type: str

    @property
    def key(self) -> tuple[int, bytes]:
        return (self.addr, self.name.encode("utf-8", "surrogateescape"))


def dump(
    obj: ObjectSpec,
    *,
    imm_hex: bool = True,
    mcpu: str | int | None = None,
    relocs: bool = False,
    sections: Iterable[str] | None = None,
    source: bool = False,
    line_numbers: bool = False,
    warnings: list[str] | None = None,
) -> str:
    """The ``llvm-objdump -d`` listing of ``obj``.

    ``imm_hex`` is llvm-objdump's ``--print-imm-hex`` (its default, as llvm-objdump-19's;
    ``False`` is ``--no-print-imm-hex``); ``mcpu`` ``"v1"``..``"v4"`` is ``--mcpu=vN``
    (``None``: LLVM 19's default CPU, but forms it cannot decode shown as v4 shows them,
    see :mod:`bpfkit.disasm.llvm_text`; ``bpfkit dump`` passes ``"v1"``, llvm-objdump-19's
    own default); ``source``/``line_numbers`` are ``-S``/``-l`` (warnings, such as a source
    file that cannot be read, are appended to ``warnings``); ``relocs`` is ``-r``; ``sections``
    is ``-j NAME`` (repeatable).  Raises :class:`ObjectError` for a section name that
    does not exist.
    """
    cpu = parse_mcpu(mcpu)
    wanted: set[str] | None = None
    if sections is not None:
        wanted = set(sections)
        names = {s.name for s in obj.sections}
        missing = sorted(wanted - names)
        if missing:
            have = ", ".join(s.name for s in obj.sections if s.flags & _SHF_EXECINSTR)
            raise ObjectError(
                f"{obj.path}: no section named {', '.join(map(repr, missing))} "
                f"(executable sections: {have or 'none'})"
            )
    out: list[str] = [f"\n{obj.path}:\tfile format elf64-bpf\n"]
    renderer = _Renderer(obj.big_endian, cpu, imm_hex)
    printer = None
    if source or line_numbers:
        # Imported here: only -S/-l read DWARF.
        from bpfkit.disasm.source import SourcePrinter, source_map

        try:
            with open(obj.path, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise ObjectError(f"{obj.path}: cannot read it for source lines: {e.strerror}") from e
        printer = SourcePrinter(source_map(raw), source=source, lines=line_numbers)
    # With -r, llvm-objdump also prints the CO-RE relocations of .BTF.ext.
    core: dict[str, dict[int, str]] = {}
    if relocs:
        # Imported here: parsing BTF is for -r only, and importing it costs every listing.
        from bpfkit.btf.core_text import core_relo_lines

        try:
            btf, ext = obj.parsed_btf(), obj.parsed_btf_ext()  # parsed once, on the spec
        except BtfError:
            btf = ext = None  # llvm-objdump warns and prints no CO-RE lines
        if btf is not None and ext is not None:
            core = core_relo_lines(btf, ext)
    for sec in obj.sections:
        if not sec.flags & _SHF_EXECINSTR or sec.type == "SHT_NOBITS":
            continue
        if wanted is not None and sec.name not in wanted:
            continue
        rels = obj.relocations.get(sec.name, ()) if relocs else ()
        notes = core.get(sec.name, {})
        _dump_section(out, sec, _labels(sec, obj.symbols), rels, renderer, relocs, notes, printer)
    if printer is not None and warnings is not None:
        warnings.extend(printer.warnings)
    return "".join(out)


def _labels(sec: Section, symbols: Sequence[Symbol]) -> list[_Label]:
    """The section's symbols as llvm-objdump sorts them, with the dummy at 0 if needed."""
    labels = [
        _Label(s.value, s.name, s.type)
        for s in symbols
        if s.section_index == sec.index and s.name and s.type not in _HIDDEN_TYPES
    ]
    labels.sort(key=lambda lb: lb.key)
    if not labels or labels[0].addr != 0:
        labels.insert(0, _Label(0, sec.name, "STT_FUNC"))
    return labels


def _pick(group: list[_Label]) -> _Label:
    """The one label llvm-objdump prints for symbols sharing an address."""
    code = [lb for lb in group if lb.type not in _DATA_TYPES]
    return (code or group)[-1]


class _Renderer:
    """Decodes and formats instructions, remembering the text of each distinct encoding."""

    def __init__(self, big_endian: bool, cpu: int | None, imm_hex: bool) -> None:
        self.big = big_endian
        self.cpu = cpu
        self.imm_hex = imm_hex
        self.unpack = (_BE if big_endian else _LE).unpack_from
        self.cache: dict[bytes, tuple[int, str, int | None]] = {}
        # The fast path's caches: one-slot instructions by their 8 bytes read as a
        # little-endian u64 (whatever the object's byte order: the key is only the bytes).
        self.tails: dict[int, str] = {}  # every one: the line's tail
        self.jumps: dict[int, int] = {}  # the jumps: their distance in slots
        # Opcode and register bytes (q & 0xFFFF) -> how to print them without an Insn.
        self.plans: dict[int, SlotPlan | None] = {}
        self.lddw_plans: dict[int, Callable[[int], str] | None] = {}  # by dst

    def line(self, data: bytes, pos: int) -> tuple[int, str, int | None]:
        """``(size, tail, jump)`` of the instruction at ``pos``: ``tail`` is the line after
        the address (tab, bytes, tab, text); size 1 for a stray byte."""
        left = len(data) - pos
        if left < 8:
            return 1, f"\t{data[pos]:02x}\t{UNKNOWN}", None
        wide = data[pos] == LDDW_OPCODE
        if wide and left < 16:
            return 1, f"\t{data[pos]:02x}\t{UNKNOWN}", None
        raw = data[pos : pos + (16 if wide else 8)]
        hit = self.cache.get(raw)
        if hit is not None:
            return hit
        width, text, jump = self._render(raw, wide)
        # Cache the line's tail: bytes and text (the address and target are added per use).
        result = (width, f"\t{raw[:width].hex(' ')}\t{text}", jump)
        self.cache[raw] = result
        return result

    def slot(self, q: int) -> None:
        """Fill ``tails`` (and ``jumps``) for the one-slot instruction (not ``lddw``) whose
        8 bytes, read as a little-endian u64, are ``q``."""
        raw = q.to_bytes(8, "little")
        opcode, regs, off, imm = self.unpack(raw, 0)
        try:
            plan = self.plans[q & 0xFFFF]
        except KeyError:
            dst, src = (regs >> 4, regs & 0xF) if self.big else (regs & 0xF, regs >> 4)
            plan = self.plans[q & 0xFFFF] = slot_plan(opcode, dst, src, self.cpu, self.imm_hex)
        text: str
        jump: int | None
        if plan is not None and not (plan.off_zero and off) and not (plan.imm_zero and imm):
            if self.big:
                text = plan.text(regs >> 4, regs & 0xF, off, imm)
            else:
                text = plan.text(regs & 0xF, regs >> 4, off, imm)
            jump = None if not plan.jump else off if plan.jump == 1 else imm
        else:
            _, text, jump = self._render(raw, False)
        self.tails[q] = f"\t{raw.hex(' ')}\t{text}"
        if jump is not None:
            self.jumps[q] = jump

    def _render(self, raw: bytes, wide: bool) -> tuple[int, str, int | None]:
        opcode, regs, off, imm = self.unpack(raw, 0)
        dst, src = (regs >> 4, regs & 0xF) if self.big else (regs & 0xF, regs >> 4)
        # Every field fits by construction (unpacked from fixed-width fields).
        if wide:
            if self.big:
                next_raw = int.from_bytes(raw[8:12], "big")
                imm_hi = int.from_bytes(raw[12:16], "big", signed=True)
            else:
                next_raw = int.from_bytes(raw[8:12], "little")
                imm_hi = int.from_bytes(raw[12:16], "little", signed=True)
            if not (src or off or next_raw):  # a plain 64-bit constant: no Insn needed
                if dst not in self.lddw_plans:
                    self.lddw_plans[dst] = lddw_plan(dst, self.cpu, self.imm_hex)
                plan = self.lddw_plans[dst]
                if plan is not None:
                    return 16, plan((imm_hi & 0xFFFFFFFF) << 32 | (imm & 0xFFFFFFFF)), None
            insn = trusted_insn(opcode, dst, src, off, imm, imm_hi, next_raw)
            text, jump = render(insn, self.cpu, self.imm_hex)
            # LLVM gives up on an lddw it cannot decode after its first 8 bytes.
            return (8 if text == UNKNOWN else 16), text, jump
        text, jump = render(trusted_insn(opcode, dst, src, off, imm), self.cpu, self.imm_hex)
        return 8, text, jump


def _zero_run(data: bytes, pos: int, limit: int) -> int:
    """llvm-objdump's skippable zero bytes at ``pos``: 8 or more, rounded down to 4."""
    if limit - pos < 8 or data[pos] or data[pos : pos + 8] != bytes(8):
        return 0
    end = pos + 8
    while end < limit and not data[end]:
        end += 1
    return (end - pos) & ~3


def _reloc_line(r: Relocation) -> str:
    name = r.type_name if r.type_name != f"R_BPF_{r.type}" else "Unknown"
    if r.symbol or r.symbol_section is not None or r.symbol_value:
        target = r.symbol
    else:
        target = "*ABS*"  # the null symbol
    if r.addend:
        target += f"{'-' if r.addend < 0 else '+'}0x{abs(r.addend):x}"
    return f"\t\t{r.offset:016x}:  {name}\t{target}\n"


def _dump_data(out: list[str], data: bytes, start: int, end: int) -> None:
    """llvm-objdump's dump of an object symbol in a text section: 8 bytes a line."""
    for pos in range(start, end, 8):
        chunk = data[pos : min(pos + 8, end)]
        hexes = "".join(f" {b:02x}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        pad = " " * (3 * (8 - len(chunk)))
        out.append(f"{pos:8x}:{hexes}{pad}         {text}\n")


def _dump_section(
    out: list[str],
    sec: Section,
    labels: list[_Label],
    rels: Sequence[Relocation],
    renderer: _Renderer,
    show_relocs: bool,
    notes: dict[int, str] | None = None,
    printer: SourcePrinter | None = None,
) -> None:
    data = sec.data
    size = sec.size
    if len(data) < size:  # an executable SHT_NULL section whose range is not in the file
        raise ObjectError(
            f"section {sec.name} ({sec.type}, sh_offset {sec.offset:#x}, sh_size {size:#x}) "
            "lies outside the file: nothing to disassemble"
        )
    heading = False
    listing = _Listing(out, data, labels, rels, renderer, show_relocs, notes or {})
    if printer is not None:
        listing.printer = printer
        listing.section_index = sec.index
    n = len(labels)
    i = 0
    while i < n:
        first = i
        start = labels[i].addr
        while i < n and labels[i].addr == start:
            i += 1
        end = min(size, labels[i].addr) if i < n else size
        if start >= end:
            continue
        if not heading:
            out.append(f"\nDisassembly of section {sec.name}:\n")
            heading = True
        label = _pick(labels[first:i])
        out.append(f"\n{start:016x} <{label.name}>:\n")
        # Relocations inside ranges that were not disassembled are not shown.
        while listing.ri < len(rels) and rels[listing.ri].offset < start:
            listing.ri += 1
        if label.type in _DATA_TYPES:
            _dump_data(out, data, start, end)
            continue
        listing.code(start, end)


# First bytes of the slots the fast loop leaves to the careful one: lddw (16 bytes) and 0
# (maybe a run of zeros, printed as "...").
_SPECIAL = re.compile(b"[\\x00\\x18]")


class _Listing:
    """The instruction lines of one section.

    :meth:`step` prints one instruction (or a run of zeros) by the rules in the module
    docstring.  :meth:`code` prints a range: the slots that need no rule (an 8-byte
    instruction, no relocation or CO-RE note) are looked up in bulk, by their 8 bytes as
    one integer, and only the others go through :meth:`step`.
    """

    def __init__(
        self,
        out: list[str],
        data: bytes,
        labels: list[_Label],
        rels: Sequence[Relocation],
        renderer: _Renderer,
        show_relocs: bool,
        notes: dict[int, str],
    ) -> None:
        self.out = out
        self.data = data
        self.labels = labels
        self.addrs = [lb.addr for lb in labels]
        self.rels = rels
        self.ri = 0  # the first relocation not yet printed (or skipped)
        self.renderer = renderer
        self.show_relocs = show_relocs
        self.notes = notes
        self.printer: SourcePrinter | None = None  # -S / -l: lines before instructions
        self.section_index = 0

    def target(self, target: int) -> str:
        """`` <sym+0x18>`` for a jump target (the last label at or before it)."""
        target &= _MASK64
        lo = bisect.bisect_right(self.addrs, target)
        if lo == 0:
            return ""
        lb = self.labels[lo - 1]
        disp = target - lb.addr
        return f" <{lb.name}+0x{disp:x}>" if disp else f" <{lb.name}>"

    def code(self, start: int, end: int) -> None:
        """Print the instructions of ``data[start:end]``."""
        data = self.data
        n = (end - start) // 8
        pos = start
        if n and self.printer is None:
            slots = struct.unpack_from(f"<{n}Q", data, start)
            top = start + 8 * n
            # Slots with a relocation or a CO-RE note: always through step().
            careful: set[int] = set()
            rels = self.rels
            ri = self.ri
            while ri < len(rels) and rels[ri].offset < top:
                careful.add((rels[ri].offset - start) >> 3)
                ri += 1
            careful.update((p - start) >> 3 for p in self.notes if start <= p < top)
            stops = sorted(careful.union(m.start() for m in _SPECIAL.finditer(data[start:top:8])))
            stops.append(n)
            renderer = self.renderer
            tails, jumps, slot = renderer.tails, renderer.jumps, renderer.slot
            cache, line = renderer.cache, renderer.line
            append = self.out.append
            target = self.target
            k = 0
            for stop in stops:
                if stop < k:
                    continue  # inside what was printed already
                if stop > k:
                    # Plain 8-byte instructions: no zero run, relocation or note among them.
                    # Formatted in bulk: one %-format for the run, jump targets appended.
                    run = slots[k:stop]
                    m = stop - k
                    got = list(map(tails.get, run))
                    if None in got:  # encodings not met before
                        for i in compress(range(m), map(operator.not_, got)):
                            if run[i] not in tails:
                                slot(run[i])
                        got = list(map(tails.__getitem__, run))
                    cols = cast(list[str], got)
                    for i in compress(range(m), map(jumps.__contains__, run)):
                        cols[i] += target(start + 8 * (k + i + 1 + jumps[run[i]]))
                    first = (start >> 3) + k  # the line number of slot k
                    fields = zip(range(first, first + m), cols, strict=True)
                    append(("%8d:%s\n" * m) % tuple(chain.from_iterable(fields)))
                    k = stop
                    pos = start + 8 * k
                if stop == n:
                    break
                if (
                    slots[k] & 0xFF == LDDW_OPCODE
                    and k + 1 < n
                    and k not in careful
                    and k + 1 not in careful
                ):
                    # An lddw whole in the range, nothing to print after it: step() inlined.
                    width, tail, jump = cache.get(data[pos : pos + 16]) or line(data, pos)
                    if jump is None:
                        append(f"{pos >> 3:8d}:{tail}\n")
                    else:
                        append(f"{pos >> 3:8d}:{tail}{target(pos + 8 + jump * 8)}\n")
                    pos += width
                else:
                    pos = self.step(pos, end)
                    if (pos - start) & 7:
                        break  # a zero run of 4*odd bytes: the rest is not slot-aligned
                k = (pos - start) >> 3
        while pos < end:
            pos = self.step(pos, end)

    def step(self, pos: int, end: int) -> int:
        """Print what is at ``pos`` (below ``end``); return the position after it."""
        data = self.data
        out = self.out
        rels = self.rels
        ri, rn = self.ri, len(rels)
        limit = end
        if self.show_relocs and ri < rn:
            limit = min(limit, max(rels[ri].offset, pos))
        if not data[pos]:
            skip = _zero_run(data, pos, limit)
            if skip:
                out.append("\t\t...\n")
                return pos + skip
        width, tail, jump = self.renderer.line(data, pos)
        if self.printer is not None:
            out.append(self.printer.before(self.section_index, pos))
        if jump is None:
            out.append(f"{pos // 8:8d}:{tail}\n")
        else:
            out.append(f"{pos // 8:8d}:{tail}{self.target(pos + 8 + jump * 8)}\n")
        if pos in self.notes:
            out.append(f"\t\t{pos:016x}:  CO-RE {self.notes[pos]}\n")
        pos += width
        while ri < rn and rels[ri].offset < pos:
            out.append(_reloc_line(rels[ri]))
            ri += 1
        self.ri = ri
        return pos
