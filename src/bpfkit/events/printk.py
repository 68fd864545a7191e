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

:func:`printk_sites` lists the calls (:class:`bpfkit.obj.printk_tags.PrintkSite`): ``bpfkit
run`` makes each call whose format is known print a copy tagged with the run
(:mod:`bpfkit.obj.printk_tags`), and :class:`TagFilter` shows a run its own lines only.
For the calls that stay untagged, :func:`line_matcher` turns their formats into one
predicate on messages (``%d`` and the other conversions match anything).  When a call's
format cannot be followed, there is no matcher (None): every untagged line is kept rather
than ours dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from bpfkit.obj.printk_tags import PrintkSite
from bpfkit.obj.spec import DataSpec, ObjectSpec, ProgramSpec

if TYPE_CHECKING:
    from bpfkit.explain.values import State

PRINTK_HELPERS = (6, 177)  # bpf_trace_printk, bpf_trace_vprintk
_CONVERSION = re.compile(r"%(?:%|[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z)?[a-zA-Z][a-zA-Z0-9]*)")


class _Unknown(Exception):
    """A printk call whose format could not be followed."""


def _c_string(data: bytes, start: int, limit: int | None = None) -> tuple[bytes, bool]:
    """The C string at ``start`` (at most ``limit`` bytes) and whether its NUL is there."""
    end = data.find(b"\0", start)
    ended = end >= 0
    if end < 0:
        end = len(data)
    if limit is not None and end >= start + limit:
        end, ended = start + limit, False
    return data[start:end], ended


def _sites(obj: ObjectSpec, prog: ProgramSpec, data: dict[str, DataSpec]) -> list[PrintkSite]:
    """The printk calls of one function, with their formats where the analysis knows them."""
    from bpfkit.explain.analysis import analyze_program  # loaded when formats are asked for
    from bpfkit.isa.table import lookup

    analysis, _env = analyze_program(obj, prog)
    found = []
    slot = 0
    for insn, state in zip(analysis.insns, analysis.before, strict=True):
        op = lookup(insn)
        here, slot = slot, slot + insn.width
        if state is None or op is None or op.key != "helper" or insn.imm not in PRINTK_HELPERS:
            continue  # not a printk call, or one no path reaches
        fmt, why = None, ""
        try:
            fmt = _format(state, data)
        except _Unknown as e:
            why = str(e)
        found.append(PrintkSite(prog.section, prog.offset, here, insn.imm, fmt, why))
    return found


def _format(state: State, data: dict[str, DataSpec]) -> bytes:
    fmt, length = state.reg(1), state.reg(2)
    size = length.const if length.is_const else None
    if fmt.kind != "ptr" or fmt.const is None:
        raise _Unknown("its format (r1) is not a known address before loading")
    if fmt.base == "stack":
        raw = bytearray()
        for off in range(fmt.const, fmt.const + min(size or 512, 512)):  # the stack's size
            b = state.stack.get(off)
            if b is None:
                raise _Unknown("its format is built on the stack from values not known statically")
            if b == 0:
                return bytes(raw)
            raw.append(b)
        raise _Unknown("its format has no NUL within its length (r2)")
    if fmt.base == "data" and fmt.region in data:
        text, ended = _c_string(data[fmt.region].data, fmt.const, size)
        if not ended:
            raise _Unknown("its format has no NUL within its length (r2)")
        return text
    raise _Unknown(f"its format is in {fmt.region or fmt.base}, whose bytes are not known")


def _programs(spec: ObjectSpec, programs: Iterable[ProgramSpec] | None) -> list[ProgramSpec]:
    progs = list(programs) if programs is not None else list(spec.programs)
    return progs + [p for p in spec.programs if p.is_subprog and p not in progs]


def printk_sites(
    spec: ObjectSpec, programs: Iterable[ProgramSpec] | None = None
) -> list[PrintkSite]:
    """Every printk call of the programs (and of every sub-program of the object), with
    its format when explain's value analysis knows it before loading."""
    data = {d.name: d for d in spec.data}
    return [s for p in _programs(spec, programs) for s in _sites(spec, p, data)]


def site_formats(sites: Iterable[PrintkSite]) -> list[str] | None:
    """The formats of ``sites`` as text, or None if one of them is not known."""
    out = []
    for s in sites:
        if s.format is None:
            return None
        out.append(s.format.decode("utf-8", "replace"))
    return out


def printk_formats(
    spec: ObjectSpec, programs: Iterable[ProgramSpec] | None = None
) -> list[str] | None:
    """The formats the programs (and every sub-program of the object) pass to printk
    helpers, or None if one of them cannot be followed."""
    return site_formats(printk_sites(spec, programs))


def site_name(spec: ObjectSpec, site: PrintkSite) -> str:
    """``function+slot`` of a printk call, for messages."""
    name = next(
        (p.name for p in spec.programs if (p.section, p.offset) == (site.section, site.function)),
        site.section,
    )
    return f"{name}+{site.slot}"


_TAG = re.compile(r"\[bpfkit \d+(?:\.\d+)?\] ")


class TagFilter:
    """Which trace messages a run shows, and as what: its own tagged lines (tag stripped);
    no other run's tagged lines; untagged lines only if some of its calls print untagged
    (:mod:`bpfkit.obj.printk_tags`), and then those matching their formats (all of them
    when a format is unknown).  ``all_lines`` shows every line (only the tag stripped);
    ``tagged=False`` says no call was tagged (the kernel refused the tagged programs)."""

    def __init__(
        self,
        tag: str,
        sites: Iterable[PrintkSite],
        *,
        all_lines: bool = False,
        tagged: bool = True,
    ) -> None:
        self.tag = tag
        self.all_lines = all_lines
        untagged = [s for s in sites if s.format is None or not tagged]
        self.untagged = bool(untagged)
        self.matcher = None if all_lines else line_matcher(site_formats(untagged))

    def message(self, message: str) -> str | None:
        """``message`` as shown (its tag stripped), or None if it is not shown."""
        m = _TAG.match(message)
        if m is not None:
            if m.group() == self.tag:
                return message[m.end() :]
            return message if self.all_lines else None
        if self.all_lines or (self.untagged and (self.matcher is None or self.matcher(message))):
            return message
        return None


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
