"""A program's JIT image as ``bpftool prog dump jited`` prints it (bpftool built with
LLVM's disassembler): per function, its BTF prototype and kernel symbol, then each x86-64
instruction at its offset, with the source line the program's line info puts there.

Text (``opcodes`` adds each instruction's bytes on a second line, ``linum`` the file,
line and column after each source line)::

    int on_args(struct pt_regs * ctx):
    bpf_prog_8b721814f0727f58_on_args:
    ; int BPF_USDT(on_args, int i, long big, short neg, unsigned char small)
       0:\tnopl\t(%rax,%rax)
       5:\tnop
    ...

JSON (bpftool's keys): a list of ``{"proto", "name", "insns": [{"src", "file",
"line_num", "line_col", "pc", "operation", "operands", "opcodes"}]}``.

Which source line goes with which instruction follows libbpf's ``bpf_prog_linfo``: a
function's line records start at the record whose address is the function's symbol,
and at each instruction the last record at or before it (from one past the last shown)
is shown.  The instructions come from :mod:`bpfkit.disasm.x86`.

API::

    listing(image, opcodes=False, linum=False) -> str
    records(image, opcodes=False, linum=False) -> list[dict]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bpfkit.btf.btf import Btf
from bpfkit.errors import BpfkitError
from bpfkit.kernel.info import JitImage, btf_bytes
from bpfkit.kernel.symbols import bpf_symbols

Line = tuple[int, int, int, int]  # insn_off, file_name_off, line_off, line_col


@dataclass(frozen=True, slots=True)
class Function:
    """One function of the image: where it is, what bpftool calls it, its lines."""

    name: str
    proto: str
    address: int
    code: bytes
    lines: tuple[tuple[int, Line], ...]  # (kernel address, record), in image order


def _btf(image: JitImage) -> Btf | None:
    if not image.btf_id or not (image.func_info or image.line_info):
        return None
    from bpfkit.btf import parse_btf

    try:
        return parse_btf(btf_bytes(image.btf_id))
    except BpfkitError:
        return None


def _line_groups(image: JitImage) -> list[tuple[tuple[int, Line], ...]] | None:
    """Each function's line records (libbpf's dissection), or None if they do not fit."""
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
    if len(starts) != len(ksyms):
        return None
    ends = starts[1:] + [len(lines)]
    return [
        tuple(zip(addrs[a:b], lines[a:b], strict=True)) for a, b in zip(starts, ends, strict=True)
    ]


def functions(image: JitImage) -> list[Function]:
    """The image cut into its functions, named and with their line records."""
    from bpfkit.btf.cdecl import type_only

    if not image.func_lens:
        return [Function("", "", 0, image.image, ())]
    btf = _btf(image)
    symbols = bpf_symbols() if image.ksyms else {}
    groups = _line_groups(image) if btf is not None else None
    out = []
    at = 0
    for i, length in enumerate(image.func_lens):
        address = image.ksyms[i] if i < len(image.ksyms) else 0
        if image.ksyms:
            name = symbols.get(address, f"0x{address:016x}")
        else:
            name = "unknown"
        proto = ""
        if btf is not None and i < len(image.func_info):
            proto = type_only(btf, image.func_info[i][1])
        lines = groups[i] if groups is not None and image.ksyms else ()
        out.append(Function(name, proto, address, image.image[at : at + length], lines))
        at += length
    return out


def _find(lines: tuple[tuple[int, Line], ...], address: int, skip: int) -> Line | None:
    """libbpf's ``bpf_prog_linfo__lfind_addr_func``: the last record at or before
    ``address`` from record ``skip`` on, None if the first of those is after it."""
    if skip >= len(lines) or address < lines[skip][0]:
        return None
    found = lines[skip][1]
    for at, rec in lines[skip:]:
        if address < at:
            break
        found = rec
    return found


def _source(btf: Btf | None, rec: Line) -> tuple[str, str, int, int] | None:
    """(line text, file, line, column) of a record; None without its strings."""
    if btf is None:
        return None
    _, file_off, line_off, line_col = rec
    try:
        text, file = btf.string(line_off).lstrip(), btf.string(file_off)
    except (IndexError, ValueError, UnicodeDecodeError):
        return None
    return text, file, line_col >> 10, line_col & 0x3FF


def _walk(
    image: JitImage,
) -> list[tuple[Function, list[tuple[Any, tuple[str, str, int, int] | None]]]]:
    from bpfkit.disasm.x86 import disassemble

    btf = _btf(image) if image.line_info else None
    out = []
    for fn in functions(image):
        rows: list[tuple[Any, tuple[str, str, int, int] | None]] = []
        skip = 0
        for insn in disassemble(fn.code, fn.address):
            rec = _find(fn.lines, fn.address + insn.offset, skip) if fn.lines else None
            src = None
            if rec is not None:
                skip += 1
                src = _source(btf, rec)
            rows.append((insn, src))
        out.append((fn, rows))
    return out


def listing(image: JitImage, *, opcodes: bool = False, linum: bool = False) -> str:
    """The text of ``bpftool prog dump jited id N [opcodes] [linum]``."""
    parts: list[str] = []
    whole = not image.func_lens
    for fn, rows in _walk(image):
        if not whole:
            if fn.proto:
                parts.append(f"{fn.proto}:\n")
            parts.append(f"{fn.name}:\n")
        for insn, src in rows:
            if src is not None:
                where = f" [file:{src[1]} line_num:{src[2]} line_col:{src[3]}]" if linum else ""
                parts.append(f"; {src[0]}{where}\n")
            parts.append(f"{insn.offset:4x}:{insn.text}")
            if opcodes:
                parts.append("\n\t" + "".join(f"{b:02x} " for b in insn.data))
            parts.append("\n")
        if not whole:
            parts.append("\n")
    return "".join(parts)


def records(image: JitImage, *, opcodes: bool = False, linum: bool = False) -> list[Any]:
    """What ``bpftool -j prog dump jited id N [opcodes] [linum]`` prints, as data."""
    out: list[Any] = []
    whole = not image.func_lens
    for fn, rows in _walk(image):
        insns = []
        for insn, src in rows:
            rec: dict[str, Any] = {}
            if src is not None:
                rec["src"] = src[0]
                if linum:
                    rec["file"] = src[1]
                    if src[2]:
                        rec["line_num"] = src[2]
                    if src[3]:
                        rec["line_col"] = src[3]
            rec["pc"] = f"0x{insn.offset:x}"
            rec["operation"] = insn.operation
            rec["operands"] = insn.operands or [None]
            if opcodes:
                rec["opcodes"] = [f"0x{b:02x}" for b in insn.data]
            insns.append(rec)
        if whole:
            return insns
        entry: dict[str, Any] = {}
        if fn.proto:
            entry["proto"] = fn.proto
        entry["name"] = fn.name
        entry["insns"] = insns
        out.append(entry)
    return out
