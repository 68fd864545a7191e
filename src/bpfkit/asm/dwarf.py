"""What llvm-mc generates itself from directives: call frames and DWARF line tables.

- ``.cfi_startproc``/``.cfi_endproc`` pairs become ``.eh_frame`` (or ``.debug_frame`` after
  ``.cfi_sections .debug_frame``): one CIE and one FDE per function; BPF code has no frame
  moves, so no other ``.cfi_*`` directive is accepted.
- ``.file N "dir" "name" md5 0x...`` and ``.loc FILE LINE [COLUMN] [options]`` become a
  DWARF 5 ``.debug_line`` table (its strings in ``.debug_line_str``), encoded the way
  LLVM's ``MCDwarfLineAddr`` encodes it: one sequence per code section, an entry at the
  first instruction after each ``.loc``.
"""

from __future__ import annotations

import os
import re
import struct
from typing import Any

from bpfkit.asm.builder import FK_DATA, Section, Symbol
from bpfkit.asm.expr import Value, parse_int
from bpfkit.asm.state import IS_STMT, Assembling, Entry
from bpfkit.obj import writer as w

BASIC_BLOCK, PROLOGUE_END, EPILOGUE_BEGIN = 2, 4, 8
LINE_BASE, LINE_RANGE, OPCODE_BASE, MIN_INST = -5, 14, 13, 8
_STD_LENGTHS = bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])
_MAX_SPECIAL_ADDR = (255 - OPCODE_BASE) // LINE_RANGE
_FILE = re.compile(
    r'\s*(\d+)\s+"((?:[^"\\]|\\.)*)"(?:\s+"((?:[^"\\]|\\.)*)")?(?:\s+md5\s+(0[xX][0-9a-fA-F]+))?\s*\Z'
)


# --- directives ----------------------------------------------------------------------


def file_directive(a: Assembling, rest: str, base: int) -> None:
    """``.file N ["dir"] "name" [md5 0x...]``."""
    m = _FILE.match(rest)
    if not m:
        raise a.error('expected \'.file N ["directory"] "name" [md5 0x...]\'', base + 1)
    number = int(m.group(1))
    first, second, md5text = m.group(2), m.group(3), m.group(4)
    directory, name = (first, second) if second is not None else ("", first)
    if md5text and len(md5text) != 34:
        raise a.error("an MD5 checksum has 32 hexadecimal digits", base + 1)
    md5 = int(md5text, 16).to_bytes(16, "big") if md5text else None
    st = a.dwarf
    st.has_table = True
    if number == 0:
        st.root = (directory, name, md5)
        return
    if not directory:
        head, tail = os.path.split(name)
        if tail and head:
            directory, name = head, tail
    index = 0
    if directory:
        if directory not in st.dirs:
            st.dirs.append(directory)
        index = st.dirs.index(directory) + 1
    st.files[number] = (name, index, md5)


def loc_directive(a: Assembling, text: str, col: int) -> None:
    """``.loc FILE LINE [COLUMN] [basic_block|prologue_end|epilogue_begin|is_stmt N|isa N|discriminator N]``."""
    words = text.split()[1:]
    st = a.dwarf
    try:
        numbers: list[int] = []
        while words and words[0][:1].isdigit() and len(numbers) < 3:
            numbers.append(parse_int(words.pop(0)))
    except ValueError:
        raise a.error("malformed .loc", col + 1) from None
    if len(numbers) < 2:
        raise a.error("expected '.loc FILE LINE [COLUMN] [options]'", col + 1)
    number, line = numbers[0], numbers[1]
    column = numbers[2] if len(numbers) > 2 else 0
    if number not in st.files and not (number == 0 and st.root is not None):
        raise a.error(f"unassigned file number {number} in .loc", col + 1)
    flags = st.stmt
    isa = discriminator = 0
    while words:
        word = words.pop(0)
        if word == "basic_block":
            flags |= BASIC_BLOCK
        elif word == "prologue_end":
            flags |= PROLOGUE_END
        elif word == "epilogue_begin":
            flags |= EPILOGUE_BEGIN
        elif word in ("is_stmt", "isa", "discriminator") and words and words[0].isdigit():
            value = int(words.pop(0))
            if word == "is_stmt":
                flags = (flags | IS_STMT) if value else (flags & ~IS_STMT)
            elif word == "isa":
                isa = value
            else:
                discriminator = value
        else:
            raise a.error(f"unsupported .loc option '{word}'", col + 1)
    st.stmt = flags & IS_STMT
    st.has_table = True
    st.pending = (number, line, column, flags, isa, discriminator)


def line_entry(a: Assembling) -> None:
    """Called before an instruction is emitted after a ``.loc``: add the row."""
    st = a.dwarf
    if st.pending is None:
        return
    sec = a.b.current
    number, line, column, flags, isa, disc = st.pending
    st.pending = None
    st.lines.setdefault(id(sec), (sec, []))[1].append(
        Entry(sec.size, number, line, column, flags, isa, disc)
    )


def cfi_sections(a: Assembling, text: str, col: int) -> None:
    """``.cfi_sections .eh_frame[, .debug_frame]``."""
    names = {n.strip() for n in text.split(None, 1)[1].split(",")} if " " in text else set()
    if not names <= {".eh_frame", ".debug_frame"} or not names:
        raise a.error("expected '.cfi_sections .eh_frame and/or .debug_frame'", col + 1)
    a.dwarf.eh_frame = ".eh_frame" in names
    a.dwarf.debug_frame = ".debug_frame" in names


def cfi_startproc(a: Assembling, text: str, col: int) -> None:
    """``.cfi_startproc``: the start of a function's frame description."""
    if a.dwarf.open is not None:
        raise a.error("nested .cfi_startproc", col + 1)
    a.dwarf.open = (a.b.current, a.b.current.size, a.here(col + 1))


def cfi_endproc(a: Assembling, text: str, col: int) -> None:
    """``.cfi_endproc``."""
    st = a.dwarf
    if st.open is None:
        raise a.error(".cfi_endproc without .cfi_startproc", col + 1)
    sec, start, _ = st.open
    if sec is not a.b.current:
        raise a.error(".cfi_endproc in another section than its .cfi_startproc", col + 1)
    st.frames.append((sec, start, a.b.current.size))
    st.open = None


def cfi_other(a: Assembling, text: str, col: int) -> None:
    """Other ``.cfi_*`` directives are refused (BPF code has no frame moves)."""
    raise a.error(f"unsupported CFI directive '{text.split()[0]}'", col + 1)


# --- output ------------------------------------------------------------------------


def finish(a: Assembling) -> None:
    """Emit the frames, then the line table (llvm-mc's order), into their sections."""
    st = a.dwarf
    if st.open is not None:
        raise st.open[2].error("missing .cfi_endproc for this .cfi_startproc")
    keep = a.b.current
    if st.frames:
        if st.eh_frame:
            _frames(a, eh=True)
        if st.debug_frame:
            _frames(a, eh=False)
    if st.has_table:
        _line_table(a)
    a.b.current = keep


def _label(sec: Section, offset: int) -> Symbol:
    return Symbol(".Ltmp.dwarf", sec, offset, True)


def _frames(a: Assembling, eh: bool) -> None:
    e = ">" if a.big_endian else "<"
    if eh:
        out = a.b.section(".eh_frame", w.SHT_PROGBITS, w.SHF_ALLOC)
        # version 1, "zR", code alignment 8, data alignment -4, return register 11,
        # augmentation data: pointer encoding DW_EH_PE_sdata8; padded to 4 bytes.
        body = struct.pack(e + "I", 0) + b"\x01zR\0" + bytes([8, 0x7C, 11, 1, 0x0C, 0, 0, 0])
    else:
        out = a.b.section(".debug_frame", w.SHT_PROGBITS, 0)
        # id 0xffffffff, version 4, no augmentation, address size 8, segment size 0,
        # code alignment 8, data alignment -4, return register 11; padded to 8 bytes.
        body = b"\xff\xff\xff\xff" + bytes([4, 0, 8, 0, 8, 0x7C, 11, 0])
    out.align = max(out.align, 8)
    cie_at = a.b.emit(struct.pack(e + "I", len(body)) + body)
    for sec, start, end in a.dwarf.frames:
        here = out.size
        length = 4 + 8 + 8 + (1 if eh else 0)
        length += (-(here + 4 + length)) % 8
        if eh:
            a.b.emit(struct.pack(e + "II", length, here + 4 - cie_at))
        else:
            a.b.emit(struct.pack(e + "I", length))
            at = a.b.emit(bytes(4))
            assert out.begin is not None
            a.b.fixup(FK_DATA, at, Value(out.begin, None, cie_at), 4, None)
        at = a.b.emit(bytes(8))
        a.b.fixup(FK_DATA, at, Value(_label(sec, start), None, 0), 8, None)
        a.b.emit(struct.pack(e + "Q", end - start) + bytes(length - 4 - 16))


def _line_table(a: Assembling) -> None:
    st = a.dwarf
    e = ">" if a.big_endian else "<"
    line_sec = a.b.section(".debug_line", w.SHT_PROGBITS, 0)
    # llvm-mc writes DWARF 4 unless a ".file 0" asked for DWARF 5 (clang -g does, rustc not).
    version = 5 if st.root is not None else 4
    str_sec = None
    if version == 5:
        str_sec = a.b.section(".debug_line_str", w.SHT_PROGBITS, w.SHF_MERGE | w.SHF_STRINGS, 1)
    a.b.current = line_sec
    strings: dict[str, int] = {}
    blob = bytearray()
    refs: list[tuple[int, int]] = []  # (offset in header, string offset)

    def strp(header: bytearray, s: str) -> None:
        if s not in strings:
            strings[s] = len(blob)
            blob.extend(s.encode() + b"\0")
        refs.append((len(header), strings[s]))
        header += bytes(4)

    files = st.files
    root = st.root
    if root is None:
        if 1 not in files:
            raise a.error("a line table needs '.file 0' or '.file 1'", 1)
        name1, dir1, md51 = files[1]
        root_entry = (name1, dir1, md51)
        comp_dir = os.getcwd()
    else:
        comp_dir = root[0] or os.getcwd()
        root_entry = (root[1], 0, root[2])
    numbered = [files.get(i, ("", 0, None)) for i in range(1, max(files, default=0) + 1)]
    entries = [root_entry, *numbered]

    hdr = bytearray()
    hdr += bytes([MIN_INST, 1, 1, LINE_BASE & 0xFF, LINE_RANGE, OPCODE_BASE]) + _STD_LENGTHS
    if version == 4:
        for d in st.dirs:
            hdr += d.encode() + b"\0"
        hdr += b"\0"
        for name, index, _md5 in numbered:
            hdr += name.encode() + b"\0" + w.uleb128(index) + b"\0\0"
        hdr += b"\0"
    else:
        _v5_tables(hdr, strp, comp_dir, st.dirs, entries)

    program = bytearray()
    addr_fixups: list[tuple[int, Section, int]] = []  # (offset in program, section, offset)
    for sec, rows in st.lines.values():
        file_no, last_line, column, flags, isa, disc = 1, 1, 0, IS_STMT, 0, 0
        last: int | None = None
        for row in rows:
            if file_no != row.file:
                file_no = row.file
                program += b"\x04" + w.uleb128(file_no)
            if column != row.column:
                column = row.column
                program += b"\x05" + w.uleb128(column)
            if disc != row.discriminator:
                disc = row.discriminator
                program += b"\x00" + w.uleb128(len(w.uleb128(disc)) + 1) + b"\x04" + w.uleb128(disc)
            if isa != row.isa:
                isa = row.isa
                program += b"\x0c" + w.uleb128(isa)
            if (row.flags ^ flags) & IS_STMT:
                flags = row.flags
                program += b"\x06"
            if row.flags & BASIC_BLOCK:
                program += b"\x07"
            if row.flags & PROLOGUE_END:
                program += b"\x0a"
            if row.flags & EPILOGUE_BEGIN:
                program += b"\x0b"
            delta = row.line - last_line
            if last is None:
                program += b"\x00\x09\x02"
                addr_fixups.append((len(program), sec, row.offset))
                program += bytes(8)
                program += _advance(delta, 0)
            else:
                program += _advance(delta, row.offset - last)
            disc = 0
            last_line, last = row.line, row.offset
        assert last is not None
        program += _advance(None, sec.size - last)

    header_length = len(hdr)
    prefix = struct.pack(e + "H", version)
    if version == 5:
        prefix += bytes([8, 0])  # address size, segment selector size
    prefix += struct.pack(e + "I", header_length)
    unit = prefix + hdr + program
    start = line_sec.size
    a.b.emit(struct.pack(e + "I", len(unit)) + unit)
    hdr_at = start + 4 + len(prefix)
    if str_sec is not None:
        assert str_sec.begin is not None
        for off, soff in refs:
            a.b.fixup(FK_DATA, hdr_at + off, Value(str_sec.begin, None, soff), 4, None)
    prog_at = hdr_at + len(hdr)
    for off, sec, secoff in addr_fixups:
        a.b.fixup(FK_DATA, prog_at + off, Value(_label(sec, secoff), None, 0), 8, None)
    if str_sec is not None:
        a.b.current = str_sec
        a.b.emit(bytes(blob))


def _v5_tables(
    hdr: bytearray,
    strp: Any,
    comp_dir: str,
    dirs: list[str],
    entries: list[tuple[str, int, bytes | None]],
) -> None:
    """DWARF 5 directory and file tables, names in .debug_line_str (DW_FORM_line_strp)."""
    all_md5 = all(md5 is not None for _, _, md5 in entries)
    hdr += bytes([1]) + w.uleb128(1) + w.uleb128(0x1F) + w.uleb128(len(dirs) + 1)
    strp(hdr, comp_dir)
    for d in dirs:
        strp(hdr, d)
    hdr += (
        bytes([3 if all_md5 else 2])
        + w.uleb128(1)
        + w.uleb128(0x1F)
        + w.uleb128(2)
        + w.uleb128(0x0F)
    )
    if all_md5:
        hdr += w.uleb128(5) + w.uleb128(0x1E)
    hdr += w.uleb128(len(entries))
    for name, index, md5 in entries:
        strp(hdr, name)
        hdr += w.uleb128(index)
        if all_md5 and md5 is not None:
            hdr += md5


def _advance(line_delta: int | None, addr_delta: int) -> bytes:
    """LLVM's encoding of a (line, address) step; ``line_delta`` None ends the sequence."""
    addr = addr_delta // MIN_INST
    out = bytearray()
    if line_delta is None:
        if addr == _MAX_SPECIAL_ADDR:
            out.append(0x08)  # DW_LNS_const_add_pc
        elif addr:
            out += b"\x02" + w.uleb128(addr)
        out += b"\x00\x01\x01"  # DW_LNE_end_sequence
        return bytes(out)
    temp = line_delta - LINE_BASE
    need_copy = False
    if temp < 0 or temp >= LINE_RANGE or temp + OPCODE_BASE > 255:  # unsigned in LLVM
        out += b"\x03" + w.sleb128(line_delta)
        line_delta = 0
        temp = -LINE_BASE
        need_copy = True
    if line_delta == 0 and addr == 0:
        out.append(0x01)  # DW_LNS_copy
        return bytes(out)
    temp += OPCODE_BASE
    if addr < 256 + _MAX_SPECIAL_ADDR:
        opcode = temp + addr * LINE_RANGE
        if opcode <= 255:
            out.append(opcode)
            return bytes(out)
        opcode = temp + (addr - _MAX_SPECIAL_ADDR) * LINE_RANGE
        if opcode <= 255:
            out += bytes([0x08, opcode])
            return bytes(out)
    out += b"\x02" + w.uleb128(addr)
    out.append(0x01 if need_copy else temp)
    return bytes(out)
