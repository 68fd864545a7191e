"""Which trace_pipe lines an object's programs can print: their ``bpf_trace_printk`` formats.

trace_pipe (and every tracefs instance receiving ``bpf_trace_printk``) holds the lines of
*every* BPF program on the machine, and a line does not say which program printed it.
What can be known is what ours may print: the format string each call of
``bpf_trace_printk`` (helper 6) or ``bpf_trace_vprintk`` (177) passes in ``r1``.  explain's
value analysis (:func:`bpfkit.explain.analyze_program`) says what ``r1`` holds at each
call:

- a pointer into global data (``r1 = .rodata + off``, as ``bpf_printk`` in C compiles):
  the format is read from the data section the relocation names;
- a pointer into the stack (``r1 = r10 - 32`` after stores of constants, as the seed's
  Rust hello does): the format is the stack bytes the analysis knows there, ``r2`` its
  length.

:func:`line_matcher` turns the formats into one predicate on messages (``%d`` and the
other conversions match anything).  When a call's format cannot be followed, there is no
matcher (None): every line is kept rather than ours dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from bpfkit.obj.spec import DataSpec, ObjectSpec, ProgramSpec

if TYPE_CHECKING:
    from bpfkit.explain.values import State

PRINTK_HELPERS = (6, 177)  # bpf_trace_printk, bpf_trace_vprintk
_CONVERSION = re.compile(r"%(?:%|[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z)?[a-zA-Z][a-zA-Z0-9]*)")


class _Unknown(Exception):
    """A printk call whose format could not be followed."""


def _c_string(data: bytes, start: int, limit: int | None = None) -> str:
    end = data.find(b"\0", start)
    if end < 0:
        end = len(data)
    if limit is not None:
        end = min(end, start + limit)
    return data[start:end].decode("utf-8", "replace")


def _formats(obj: ObjectSpec, prog: ProgramSpec, data: dict[str, DataSpec]) -> list[str]:
    """Formats of the printk calls in one program (raises _Unknown if one is not known)."""
    from bpfkit.explain.analysis import analyze_program  # loaded when formats are asked for
    from bpfkit.isa.table import lookup

    analysis, _env = analyze_program(obj, prog)
    found = []
    for insn, state in zip(analysis.insns, analysis.before, strict=True):
        op = lookup(insn)
        if state is None or op is None or op.key != "helper" or insn.imm not in PRINTK_HELPERS:
            continue  # not a printk call, or one no path reaches
        found.append(_format(state, data))
    return found


def _format(state: State, data: dict[str, DataSpec]) -> str:
    fmt, length = state.reg(1), state.reg(2)
    size = length.const if length.is_const else None
    if fmt.kind != "ptr" or fmt.const is None:
        raise _Unknown
    if fmt.base == "stack":
        raw = bytearray()
        for off in range(fmt.const, fmt.const + min(size or 512, 512)):  # the stack's size
            b = state.stack.get(off)
            if b is None:
                raise _Unknown
            if b == 0:
                break
            raw.append(b)
        return raw.decode("utf-8", "replace")
    if fmt.base == "data" and fmt.region in data:
        return _c_string(data[fmt.region].data, fmt.const, size)
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
            found += _formats(spec, p, data)
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
