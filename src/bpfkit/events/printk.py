"""Which trace_pipe lines an object's programs can print: their ``bpf_trace_printk`` formats.

trace_pipe (and every tracefs instance receiving ``bpf_trace_printk``) holds the lines of
*every* BPF program on the machine, and a line does not say which program printed it.
What can be known is what ours may print: the format string each call of
``bpf_trace_printk`` (helper 6) or ``bpf_trace_vprintk`` (177) passes in ``r1``.  This
module finds them by a linear scan of the instructions that follows constants:

- a format in global data (``r1 = .rodata + off``, as ``bpf_printk`` in C compiles), read
  from the data section the relocation names;
- a format built on the stack from immediates (``r1 = r10 - 32`` after stores of
  constants, as the seed's Rust hello does), read from the emulated stack with ``r2`` as
  its length.

:func:`line_matcher` turns the formats into one predicate on messages (``%d`` and the
other conversions match anything).  When a call's format cannot be followed, there is no
matcher (None): every line is kept rather than ours dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bpfkit.obj.spec import DataSpec, ObjectSpec, ProgramSpec, RelocKind

PRINTK_HELPERS = (6, 177)  # bpf_trace_printk, bpf_trace_vprintk
_CONVERSION = re.compile(r"%(?:%|[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z)?[a-zA-Z][a-zA-Z0-9]*)")


@dataclass(frozen=True, slots=True)
class _Val:
    """A known register value: ``imm`` (n = the value), ``fp`` (n = offset from r10) or
    ``data`` (n = offset in the data section ``section``)."""

    kind: str
    n: int
    section: str = ""

    def plus(self, k: int) -> _Val:
        n = self.n + k
        return _Val(self.kind, n & 0xFFFFFFFFFFFFFFFF if self.kind == "imm" else n, self.section)


class _Unknown(Exception):
    """A printk call whose format could not be followed."""


def _c_string(data: bytes, start: int, limit: int | None = None) -> str:
    end = data.find(b"\0", start)
    if end < 0:
        end = len(data)
    if limit is not None:
        end = min(end, start + limit)
    return data[start:end].decode("utf-8", "replace")


def _scan(prog: ProgramSpec, data: dict[str, DataSpec]) -> list[str]:
    """Formats of the printk calls in one program (raises _Unknown if one is not const)."""
    regs: dict[int, _Val] = {10: _Val("fp", 0)}
    stack: dict[int, int] = {}
    relocs = {r.offset: r for r in prog.relocations}
    formats: list[str] = []
    pos = 0
    for insn in prog.insns:
        op, dst, src = insn.opcode, insn.dst, insn.src
        cls = op & 0x07
        if op == 0x18:  # lddw
            rel = relocs.get(pos)
            if rel is not None and rel.kind == RelocKind.GLOBAL_DATA and rel.symbol_section:
                offset = rel.symbol_value + (insn.imm & 0xFFFFFFFF)
                regs[dst] = _Val("data", offset, rel.symbol_section)
            elif src == 0:
                regs[dst] = _Val("imm", insn.imm64)
            else:
                regs.pop(dst, None)
        elif op == 0xB7:  # r = imm (sign-extended)
            regs[dst] = _Val("imm", insn.imm & 0xFFFFFFFFFFFFFFFF)
        elif op == 0xB4:  # w = imm
            regs[dst] = _Val("imm", insn.imm & 0xFFFFFFFF)
        elif op == 0xBF and insn.off == 0 and src in regs:  # r = r
            regs[dst] = regs[src]
        elif op == 0x07 and dst in regs:  # r += imm
            regs[dst] = regs[dst].plus(insn.imm)
        elif cls in (0x02, 0x03) and (op & 0xE0) == 0x60:  # st / stx [dst + off]
            _store(insn.opcode, regs.get(dst), regs.get(src), insn.imm, insn.off, stack)
        elif op == 0x85 and src == 0:  # helper call
            if insn.imm in PRINTK_HELPERS:
                formats.append(_format(regs.get(1), regs.get(2), stack, data))
            for r in range(6):
                regs.pop(r, None)
        elif cls in (0x00, 0x01, 0x04, 0x07):  # anything else writing dst
            regs.pop(dst, None)
        pos += 8 * insn.width
    return formats


def _store(
    op: int, base: _Val | None, value: _Val | None, imm: int, off: int, stack: dict[int, int]
) -> None:
    """Emulate a store to the stack (stores elsewhere do not matter here)."""
    if base is None or base.kind != "fp":
        return
    size = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}[op & 0x18]
    known: int | None = imm & 0xFFFFFFFFFFFFFFFF  # st: the immediate
    if op & 0x07 == 0x03:  # stx: the source register
        known = value.n if value is not None and value.kind == "imm" else None
    addr = base.n + off
    for i in range(size):
        if known is None:
            stack.pop(addr + i, None)
        else:
            stack[addr + i] = (known >> (8 * i)) & 0xFF


def _format(
    fmt: _Val | None, length: _Val | None, stack: dict[int, int], data: dict[str, DataSpec]
) -> str:
    size = length.n if length is not None and length.kind == "imm" else None
    if fmt is not None and fmt.kind == "fp":
        raw = bytearray()
        for addr in range(fmt.n, fmt.n + (size or 512)):
            if addr not in stack:
                raise _Unknown
            if stack[addr] == 0:
                break
            raw.append(stack[addr])
        return raw.decode("utf-8", "replace")
    if fmt is not None and fmt.kind == "data" and fmt.section in data:
        return _c_string(data[fmt.section].data, fmt.n, size)
    raise _Unknown


def printk_formats(
    spec: ObjectSpec, programs: Iterable[ProgramSpec] | None = None
) -> list[str] | None:
    """The formats the programs (and every sub-program of the object) pass to printk
    helpers, or None if one of them cannot be followed."""
    data = {d.name: d for d in spec.data}
    progs = list(programs) if programs is not None else list(spec.programs)
    progs += [p for p in spec.programs if p.is_subprog and p not in progs]
    found: list[str] = []
    try:
        for p in progs:
            found += _scan(p, data)
    except _Unknown:
        return None
    return found


def format_regex(fmt: str) -> re.Pattern[str]:
    """A regex matching what ``fmt`` prints (conversions match anything; the trailing
    newline trace_pipe splits on is optional)."""
    out = []
    pos = 0
    for m in _CONVERSION.finditer(fmt):
        out.append(re.escape(fmt[pos : m.start()]))
        out.append("%" if m.group() == "%%" else ".*?")
        pos = m.end()
    out.append(re.escape(fmt[pos:].rstrip("\n")))
    return re.compile("".join(out), re.S)


def line_matcher(formats: list[str] | None) -> Callable[[str], bool] | None:
    """A predicate telling whether a trace message comes from one of ``formats``; None
    (keep everything) when the formats are unknown."""
    if formats is None:
        return None
    patterns = [format_regex(f) for f in formats]
    return lambda message: any(p.fullmatch(message.rstrip("\n")) for p in patterns)
