"""Source lines of a program's instructions, from the object's ``.BTF.ext`` line_info.

The compiler records, for some instructions, the file, line, column and the text of the
source line; this maps them onto a program's slot indices.  Objects without BTF, or whose
BTF does not parse, simply have no source lines (drawings and pages show instructions only).
"""

from __future__ import annotations

from bpfkit.btf import LineInfo, parse_btf, parse_btf_ext
from bpfkit.errors import BpfkitError
from bpfkit.obj.spec import ObjectSpec, ProgramSpec


def source_lines(obj: ObjectSpec, prog: ProgramSpec) -> dict[int, LineInfo]:
    """``{slot: LineInfo}`` for the instructions of ``prog`` that carry a source position."""
    if not obj.btf or not obj.btf_ext:
        return {}
    try:
        btf = parse_btf(obj.btf, big_endian=obj.big_endian)
        ext = parse_btf_ext(obj.btf_ext, big_endian=obj.big_endian, btf=btf)
    except BpfkitError:
        return {}
    out: dict[int, LineInfo] = {}
    for rec in ext.line_info.get(prog.section, ()):
        rel = rec.insn_off - prog.offset
        if 0 <= rel < prog.size and rel % 8 == 0:
            out[rel // 8] = rec
    return out
