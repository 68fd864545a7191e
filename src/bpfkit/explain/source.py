"""Source lines of a program's instructions, from the object's ``.BTF.ext`` line_info.

The compiler records, for some instructions, the file, line, column and the text of the
source line; this maps them onto a program's slot indices.  Objects without BTF, or whose
BTF does not parse, simply have no source lines (drawings and pages show instructions only).
"""

from __future__ import annotations

from bpfkit.btf import LineInfo
from bpfkit.errors import BpfkitError
from bpfkit.obj.spec import ObjectSpec, ProgramSpec


def source_lines(obj: ObjectSpec, prog: ProgramSpec) -> dict[int, LineInfo]:
    """``{slot: LineInfo}`` for the instructions of ``prog`` that carry a source position."""
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
