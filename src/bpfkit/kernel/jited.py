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

Which source line goes with which instruction follows libbpf's ``bpf_prog_linfo``
(:mod:`bpfkit.kernel.linfo`, shared with ``prog dump xlated``): a function's line records
start at the record whose address is the function's symbol, and at each instruction the
last record at or before it (from one past the last shown) is shown.  The instructions
come from :mod:`bpfkit.disasm.x86`.

API::

    listing(image, opcodes=False, linum=False) -> str
    records(image, opcodes=False, linum=False) -> list[dict]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bpfkit.kernel.info import ProgImage
from bpfkit.kernel.linfo import (
    Line,
    Source,
    find_line,
    jited_groups,
    program_btf,
    prototype,
    source,
    source_json,
)
from bpfkit.kernel.symbols import bpf_symbols


@dataclass(frozen=True, slots=True)
class Function:
    """One function of the image: where it is, what bpftool calls it, its lines."""

    name: str
    proto: str
    address: int
    code: bytes
    lines: tuple[tuple[int, Line], ...]  # (kernel address, record), in image order


def functions(image: ProgImage) -> list[Function]:
    """The image cut into its functions, named and with their line records."""
    if not image.func_lens:
        return [Function("", "", 0, image.image, ())]
    btf = program_btf(image)
    symbols = bpf_symbols() if image.ksyms else {}
    groups = jited_groups(image) if btf is not None else None
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
            proto = prototype(btf, image.func_info[i][1])
        lines = groups[i] if groups is not None and image.ksyms else ()
        out.append(Function(name, proto, address, image.image[at : at + length], lines))
        at += length
    return out


def _walk(image: ProgImage) -> list[tuple[Function, list[tuple[Any, Source | None]]]]:
    from bpfkit.disasm.x86 import disassemble

    btf = program_btf(image) if image.line_info else None
    out = []
    for fn in functions(image):
        rows: list[tuple[Any, Source | None]] = []
        skip = 0
        for insn in disassemble(fn.code, fn.address):
            rec = find_line(fn.lines, fn.address + insn.offset, skip) if fn.lines else None
            src = None
            if rec is not None:
                skip += 1
                src = source(btf, rec)
            rows.append((insn, src))
        out.append((fn, rows))
    return out


def listing(image: ProgImage, *, opcodes: bool = False, linum: bool = False) -> str:
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


def records(image: ProgImage, *, opcodes: bool = False, linum: bool = False) -> list[Any]:
    """What ``bpftool -j prog dump jited id N [opcodes] [linum]`` prints, as data."""
    out: list[Any] = []
    whole = not image.func_lens
    for fn, rows in _walk(image):
        insns = []
        for insn, src in rows:
            rec: dict[str, Any] = {}
            if src is not None:
                rec.update(source_json(src, linum))
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
