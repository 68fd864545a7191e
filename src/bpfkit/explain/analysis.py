"""The value analysis of one program of an object: :func:`analyze_program`.

:func:`bpfkit.explain.values.analyze` knows instructions only; this module tells it what
the object knows: what each relocated ``lddw`` loads (a map, global data, a function),
which context fields are packet pointers (by the section's context struct), and the bytes
of read-only data.  explain describes programs with it; printk-format discovery
(:mod:`bpfkit.events.printk`) reads ``r1`` at each ``bpf_trace_printk`` from it.  It imports
no renderer, so commands that only need the analysis stay quick to start.
"""

from __future__ import annotations

from bpfkit.explain.sections import SectionInfo, ctx_field, explain_program_section
from bpfkit.explain.values import Analysis, Env, State, Value, analyze
from bpfkit.isa.insn import Insn
from bpfkit.obj.spec import ObjectSpec, ProgramSpec, RelocKind

# Context fields that are packet pointers (in __sk_buff and xdp_md alike).
_PACKET_FIELDS = {"data": "packet", "data_end": "packet end", "data_meta": "packet meta"}


def _env(obj: ObjectSpec, prog: ProgramSpec, info: SectionInfo, insns: tuple[Insn, ...]) -> Env:
    slot_of, slot = [], 0
    for i in insns:
        slot_of.append(slot)
        slot += i.width
    relocs = {r.offset // 8: r for r in prog.relocations}
    data = {d.name: d for d in obj.data}

    def lddw(index: int) -> Value | None:
        r = relocs.get(slot_of[index])
        insn = insns[index]
        if r is None:
            return None
        if r.kind is RelocKind.MAP:
            return Value.ptr("map", 0, r.symbol)
        if r.kind is RelocKind.GLOBAL_DATA:
            sec = r.symbol_section or r.symbol
            return Value.ptr("data", r.symbol_value + insn.imm, sec)
        if r.kind is RelocKind.FUNC_ADDR:
            return Value.ptr("func", 0, r.symbol)
        return Value.ptr("kernel", 0, r.symbol)

    def ctx_load(off: int, size: int) -> Value | None:
        field = ctx_field(info.ctx_struct, off, size) if size == 4 else None
        base = _PACKET_FIELDS.get(field.split("->", 1)[1]) if field else None
        if base is None or info.ctx_struct not in ("struct __sk_buff", "struct xdp_md"):
            return None
        return Value.ptr(base, 0)

    def read(region: str, off: int, size: int) -> bytes | None:
        d = data.get(region)
        if d is None or not d.readonly or off < 0 or off + size > len(d.data):
            return None
        return d.data[off : off + size]

    return Env(lddw=lddw, ctx_load=ctx_load, read=read)


def analyze_program(obj: ObjectSpec, prog: ProgramSpec) -> tuple[Analysis, Env]:
    """The value analysis of one program of ``obj`` (relocations, global data and the
    context of its section known), and the environment it ran with."""
    info = explain_program_section(prog)
    insns = tuple(prog.insns)
    env = _env(obj, prog, info, insns)
    entry = State.entry()
    if prog.is_subprog:
        # A BPF function's r1-r5 are whatever its caller passed: unknown, not uninitialized.
        entry = entry.set(**{f"r{n}": Value.scalar() for n in range(1, 6)})
    return analyze(insns, entry, env), env
