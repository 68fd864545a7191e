"""Source lines of a program's instructions: the object's ``.BTF.ext`` line_info, else DWARF.

The compiler records, for some instructions, the file, line, column and the text of the
source line (``.BTF.ext``, what the kernel's verifier log prints); this maps them onto a
program's slot indices.  A program that has no line_info there (Rust objects, ``llc -g``
without BTF) gets its lines from the DWARF line table instead — the one llvm-objdump -S
reads (:mod:`bpfkit.disasm.source`) — with the text read from the source file if it is
there.  Objects with neither, or whose debug info does not parse, simply have no source
lines (drawings, pages and explanations show instructions only).
"""

from __future__ import annotations

import os

from bpfkit.btf import LineInfo
from bpfkit.errors import BpfkitError
from bpfkit.obj.spec import ObjectSpec, ProgramSpec

# DWARF parsed once per object file (by path, size and mtime), for the programs it holds.
_DWARF: dict[tuple[str, int, int], object] = {}


def source_lines(obj: ObjectSpec, prog: ProgramSpec) -> dict[int, LineInfo]:
    """``{slot: LineInfo}`` for the instructions of ``prog`` that start a source line."""
    out = _btf_lines(obj, prog)
    return out if out else _dwarf_lines(obj, prog)


def _btf_lines(obj: ObjectSpec, prog: ProgramSpec) -> dict[int, LineInfo]:
    try:
        ext = obj.parsed_btf_ext()
    except BpfkitError:
        return {}
    if ext is None:
        return {}
    out: dict[int, LineInfo] = {}
    for rec in ext.line_info.get(prog.section, ()):
        rel = rec.insn_off - prog.offset
        if 0 <= rel < prog.size and rel % 8 == 0:
            out[rel // 8] = rec
    return out


def _source_map(path: str) -> object | None:
    from bpfkit.disasm.source import SourceMap

    try:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        if key not in _DWARF:
            with open(path, "rb") as f:
                data = f.read()
            if b".debug_line" not in data:
                return None
            if len(_DWARF) > 8:
                _DWARF.clear()
            _DWARF[key] = SourceMap(data)
        return _DWARF[key]
    except OSError:
        return None


def _dwarf_lines(obj: ObjectSpec, prog: ProgramSpec) -> dict[int, LineInfo]:
    from bpfkit.disasm.source import SourceMap

    smap = _source_map(obj.path) if obj.path else None
    if not isinstance(smap, SourceMap) or not smap.units:
        return {}
    texts: dict[str, list[str] | None] = {}
    out: dict[int, LineInfo] = {}
    last: tuple[str | None, int] = (None, 0)
    slot = 0
    for insn in prog.insns:
        addr = prog.offset + 8 * slot
        info = smap.lookup(prog.section_index, addr)
        here = (info.file, info.line)
        if info.file is not None and info.line and here != last:
            out[slot] = LineInfo(
                addr, 0, 0, info.line, 0, info.file, _line_text(texts, info.file, info.line)
            )
        last = here
        slot += insn.width
    return out


def _line_text(cache: dict[str, list[str] | None], path: str, line: int) -> str:
    if path not in cache:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                cache[path] = f.read().splitlines()
        except OSError:
            cache[path] = None
    lines = cache[path]
    return lines[line - 1].strip() if lines is not None and 0 < line <= len(lines) else ""
