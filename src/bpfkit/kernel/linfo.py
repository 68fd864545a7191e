"""A loaded program's BTF function and line records as bpftool reads them (libbpf's
``bpf_prog_linfo``): the one reader behind the prototypes and ``; source`` lines of both
``prog dump xlated`` (:mod:`bpfkit.kernel.xlated`) and ``prog dump jited``
(:mod:`bpfkit.kernel.jited`).

- :func:`program_btf`: the program's BTF from the kernel (None without records or BTF).
- :func:`prototype`: a function record's C prototype, ``int f(struct __sk_buff * skb)``.
- :func:`jited_groups`: the line records cut by JIT function (libbpf's dissection);
  None when the kernel's jited line addresses do not fit, in which case libbpf (and so
  bpftool) drops the line info altogether.
- :func:`find_line`: ``bpf_prog_linfo__lfind``: the record for an instruction offset
  (or kernel address), searching from record ``skip`` on.
- :func:`source`: a record's line text (left-trimmed as bpftool does), file, line, column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bpfkit.errors import BpfkitError
from bpfkit.kernel.info import ProgImage, btf_bytes

if TYPE_CHECKING:
    from bpfkit.btf.btf import Btf

Line = tuple[int, int, int, int]  # insn_off, file_name_off, line_off, line_col
Source = tuple[str, str, int, int]  # text, file, line, column

# C's isspace() in the "C" locale: what bpftool's ltrim() skips.
_C_SPACE = " \t\n\v\f\r"


def program_btf(image: ProgImage) -> Btf | None:
    """The BTF the program's records point into, None when it has none (or it is not
    readable: bpftool then prints no prototypes and no lines either)."""
    if not image.btf_id or not (image.func_info or image.line_info):
        return None
    from bpfkit.btf import parse_btf

    try:
        return parse_btf(btf_bytes(image.btf_id))
    except BpfkitError:
        return None


def prototype(btf: Btf, type_id: int) -> str:
    """The function record's prototype as bpftool prints it (``btf_dumper_type_only``)."""
    from bpfkit.btf.cdecl import type_only

    return type_only(btf, type_id)


def jited_groups(image: ProgImage) -> list[tuple[tuple[int, Line], ...]] | None:
    """Each JIT function's line records with their kernel addresses (libbpf's dissection
    of ``jited_line_info``), or None if they do not fit the functions."""
    ksyms, lines, addrs = image.ksyms, image.line_info, image.jited_lines
    if not lines or len(addrs) != len(lines) or not ksyms or addrs[0] != ksyms[0]:
        return None
    starts = [0]
    for i in range(1, len(lines)):
        if len(starts) == len(ksyms):
            break
        f = len(starts)
        if addrs[i] == ksyms[f]:
            if addrs[i - 1] - ksyms[f - 1] + 1 > image.func_lens[f - 1]:
                return None
            starts.append(i)
        elif addrs[i] <= addrs[i - 1]:
            return None  # addresses must increase within a function
    if len(starts) != len(ksyms):
        return None
    ends = starts[1:] + [len(lines)]
    return [
        tuple(zip(addrs[a:b], lines[a:b], strict=True)) for a, b in zip(starts, ends, strict=True)
    ]


def xlated_lines(image: ProgImage) -> tuple[tuple[int, Line], ...]:
    """The line records keyed by instruction offset, as ``prog dump xlated`` searches
    them; empty when libbpf would refuse them (jited line addresses that do not fit)."""
    if not image.line_info:
        return ()
    jited_info = (
        image.ksyms
        and image.jited_lines
        and len(image.jited_lines) == len(image.line_info)
        and len(image.func_lens) == len(image.ksyms)
    )
    if jited_info and jited_groups(image) is None:
        return ()
    return tuple((rec[0], rec) for rec in image.line_info)


def find_line(lines: Sequence[tuple[int, Line]], at: int, skip: int) -> Line | None:
    """libbpf's ``bpf_prog_linfo__lfind``: the last record at or before ``at`` from
    record ``skip`` on, None if the first of those is after it."""
    if skip >= len(lines) or at < lines[skip][0]:
        return None
    found = lines[skip][1]
    for key, rec in lines[skip:]:
        if at < key:
            break
        found = rec
    return found


def source(btf: Btf | None, rec: Line) -> Source | None:
    """(line text, file, line, column) of a record; None without its line text."""
    if btf is None:
        return None
    _, file_off, line_off, line_col = rec
    try:
        text = btf.string(line_off).lstrip(_C_SPACE)
    except (IndexError, ValueError, UnicodeDecodeError):
        return None
    try:
        file = btf.string(file_off)
    except (IndexError, ValueError, UnicodeDecodeError):
        file = ""
    return text, file, line_col >> 10, line_col & 0x3FF


def source_json(src: Source, linum: bool) -> dict[str, object]:
    """An instruction's source line as bpftool's JSON puts it (``src``; with ``linum``
    also ``file``, ``line_num`` and ``line_col`` when known): both dumps use it."""
    rec: dict[str, object] = {"src": src[0]}
    if linum:
        rec["file"] = src[1]
        if src[2]:
            rec["line_num"] = src[2]
        if src[3]:
            rec["line_col"] = src[3]
    return rec
