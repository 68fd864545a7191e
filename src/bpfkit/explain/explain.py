"""Explain a BPF object instruction by instruction: bytes, fields, text and tracked values.

:func:`explain_object` reads nothing itself: it takes an :class:`~bpfkit.obj.spec.ObjectSpec`
and returns plain data (:class:`Explanation`) that :mod:`bpfkit.explain.render` turns into
terminal text, Markdown or JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from bpfkit.btf import LineInfo
from bpfkit.disasm.kernel_syntax import format_kernel
from bpfkit.disasm.llvm_text import format_insn
from bpfkit.errors import ObjectError
from bpfkit.explain import purpose, vlog
from bpfkit.explain.analysis import analyze_program
from bpfkit.explain.calls import CallArg, CallInfo
from bpfkit.explain.fields import Field, decode_fields
from bpfkit.explain.sections import SectionInfo, explain_program_section
from bpfkit.explain.source import source_lines
from bpfkit.explain.states import Cache, VerifierStates, verifier_states
from bpfkit.explain.text import c_string, describe_insn, printable
from bpfkit.explain.values import Env, State, Value
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import Kind, lookup
from bpfkit.obj.spec import ObjectSpec, ProgramSpec
from bpfkit.uapi.helpers import by_id
from bpfkit.verify.scalar import Scalar
from bpfkit.verify.static import Reg
from bpfkit.verify.trace import Seen


@dataclass(frozen=True, slots=True)
class StackRun:
    """Contiguous stack bytes written so far: fp+start .. fp+start+length-1."""

    start: int
    length: int
    data: bytes | None  # None when some bytes are not known
    cells: tuple[int | None, ...] = ()  # each byte, None where unknown
    changed: bool = False  # True if the instruction wrote into this run

    @property
    def hex(self) -> str:
        """The bytes in hex, lowest address first, ``??`` for unknown ones."""
        return " ".join("??" if b is None else f"{b:02x}" for b in self.cells)

    @property
    def text(self) -> str | None:
        """The bytes as a C string literal, if they are text."""
        return c_string(self.data) if self.data is not None and printable(self.data) else None


@dataclass(frozen=True, slots=True)
class InsnExplanation:
    """Everything explain says about one instruction."""

    index: int  # slot index, as llvm-objdump numbers instructions
    raw: bytes
    llvm: str
    kernel: str
    mnemonic: str  # conformance-suite mnemonic, or "" for an unknown instruction
    fields: tuple[Field, ...]
    text: str  # one or two sentences: what it does and why
    registers: tuple[tuple[str, str, str | None], ...]  # written: (reg, value, as text)
    stack: tuple[StackRun, ...]  # the stack after the instruction (bytes written so far)
    stack_changed: bool
    call: CallInfo | None
    reached: bool  # False: no path from the entry reaches it
    unknown: str = ""  # what could not be decoded, if anything
    # bpfkit's verifier's state after it, joined over the paths reaching it, in the kernel
    # log's notation: the registers it touched and stack slots ("R1=fp-32 R10=fp0 fp-8=..")
    verifier: str = ""
    state: tuple[tuple[str, str], ...] = ()  # the same registers: ("R6", "scalar(...)")
    source: LineInfo | None = None  # the source line that starts here (.BTF.ext or DWARF)


@dataclass(frozen=True, slots=True)
class ProgramExplanation:
    """One program (function) of the object."""

    name: str
    section: str
    section_info: SectionInfo
    is_subprog: bool
    instructions: tuple[InsnExplanation, ...]
    summary: tuple[str, ...]  # what the program does, in sentences
    verdict: str = ""  # bpfkit's verifier on the program, whose states are shown


@dataclass(frozen=True, slots=True)
class Explanation:
    """The explanation of an object."""

    path: str
    license: str | None
    programs: tuple[ProgramExplanation, ...]
    obj: ObjectSpec | None = field(default=None, repr=False, compare=False)  # what was explained

    def _repr_html_(self) -> str:
        """The explanation as HTML, for Jupyter (:func:`bpfkit.explain.html.render_html`)."""
        from bpfkit.explain.html import render_html

        return render_html(self, standalone=False)


def explain_object(
    obj: ObjectSpec, *, program: str | None = None, section: str | None = None
) -> Explanation:
    """Explain the programs of ``obj`` (only ``program`` / those in ``section``, if given)."""
    progs = list(obj.programs)
    if program is not None:
        progs = [obj.program(program)]
    if section is not None:
        progs = [p for p in progs if p.section == section]
        if not progs:
            sections = sorted({p.section for p in obj.programs})
            raise ObjectError(
                f"{obj.path}: no program in section {section!r}"
                + (f" named {program!r}" if program else "")
                + f" (program sections: {', '.join(sections) or 'none'})"
            )
    cache: Cache = {}
    return Explanation(
        obj.path, obj.license, tuple(explain_program(obj, p, cache) for p in progs), obj
    )


def explain_program(
    obj: ObjectSpec, prog: ProgramSpec, cache: Cache | None = None
) -> ProgramExplanation:
    """Explain one program of ``obj`` (``cache``: the verifier's walks of the object's
    programs, shared between the programs of one explanation)."""
    info = explain_program_section(prog)
    insns = tuple(prog.insns)
    analysis, env = analyze_program(obj, prog)
    vstates = verifier_states(obj, prog, cache)
    relocs = {r.offset // 8: r for r in prog.relocations}
    out = []
    for i, insn in enumerate(insns):
        slot = analysis.slots[i]
        before, after = analysis.before[i], analysis.after[i]
        e = _explain_insn(obj, insn, slot, before, after, relocs.get(slot), env, info.ctx_struct)
        if vstates is not None:
            e = _with_states(e, insn, vstates.before.get(slot), vstates.after.get(slot))
        out.append(e)
    for i, why in purpose.purposes(insns, analysis.slots).items():
        out[i] = replace(out[i], text=out[i].text + " " + " ".join(why))
    lines = source_lines(obj, prog)
    if lines:
        out = [replace(e, source=lines.get(e.index)) for e in out]
    exits = [
        (analysis.slots[i], _returned(st.reg(0).describe(), analysis.slots[i], vstates))
        for i, (insn, st) in enumerate(zip(insns, analysis.before, strict=True))
        if st is not None and insn.opcode == 0x95
    ]
    return ProgramExplanation(
        prog.name,
        prog.section,
        info,
        prog.is_subprog,
        tuple(out),
        _summary(out, info, exits),
        "" if vstates is None else vstates.verdict,
    )


def _returned(said: str, slot: int, vstates: VerifierStates | None) -> str:
    """What an exit returns: the verifier's range where the value tracker knows none."""
    seen = vstates.before.get(slot) if vstates is not None else None
    r0 = seen.reg(0) if seen is not None else None
    if said == "unknown scalar" and isinstance(r0, Reg) and r0.t == "scalar":
        return describe_range(r0.s)
    return said


def _with_states(
    e: InsnExplanation, insn: Insn, before: Seen | None, after: Seen | None
) -> InsnExplanation:
    """``e`` with the verifier's state after it; a register the value tracker knows only
    as an unknown number is described by the verifier's range."""
    op = lookup(insn)
    state = vlog.registers(op, insn, after) if before is not None else ()
    regs = []
    sentence = e.text
    for reg, value, text in e.registers:
        v = after.reg(int(reg[1:])) if after is not None else None
        if value == "unknown scalar" and isinstance(v, Reg) and v.t == "scalar":
            value = describe_range(v.s)
            # the sentence says what the verifier proves, not only that it is a number
            sentence = sentence.replace(f"{reg} is now unknown scalar", f"{reg} is now {value}")
        elif value.endswith(" (or NULL)") and isinstance(v, Reg) and v.t == "map_value":
            if not v.null:  # the verifier proved it (an array's in-range constant key)
                value = value.removesuffix(" (or NULL)")
        elif value.startswith("packet") and isinstance(v, Reg) and v.t == "pkt" and v.rng:
            value += f" ({v.rng} bytes from the packet start proven below data_end)"
        regs.append((reg, value, text))
    return replace(
        e,
        text=sentence,
        registers=tuple(regs),
        verifier=vlog.state_line(op, insn, before, after),
        state=state,
    )


def _explain_insn(
    obj: ObjectSpec,
    insn: Insn,
    slot: int,
    before: State | None,
    after: State | None,
    reloc: object,
    env: Env,
    ctx_struct: str,
) -> InsnExplanation:
    op = lookup(insn)
    raw = insn.encode(obj.big_endian)
    fields = decode_fields(insn, op, obj.big_endian)
    llvm = format_insn(insn)
    reloc_name = getattr(reloc, "symbol", None)
    kernel = format_kernel(insn, imm_name=(lambda _i: f"map[{reloc_name}]") if reloc_name else None)
    unknown = ""
    if op is None:
        unknown = (
            f"opcode {insn.opcode:#04x} (src {insn.src}, off {insn.off}, imm {insn.imm}) is not "
            "an instruction of the eBPF ISA: its fields are decoded above, but what it does "
            "is unknown and the value tracking assumes it changes nothing"
        )
    call = None
    if op is not None and op.kind is Kind.CALL:
        call = _call_info(insn, before, env, callee(obj, insn, reloc))
    text = describe_insn(insn, op, slot, before, after, call, reloc, ctx_struct)
    if op is not None and (insn.dst > 10 or (insn.src > 10 and "src" in op.uses)):
        text += " There is no register above r10: the verifier rejects this instruction."
    elif op is not None and insn.dst == 10 and _writes(op, insn, 10):
        text += " r10 is read-only: the verifier rejects writing it, and the analysis ignores it."
    if before is None:
        text += " (Not reached from the program's entry: dead code, or reached only by a path "
        text += "this analysis cannot follow.)"
    regs: list[tuple[str, str, str | None]] = []
    stack: tuple[StackRun, ...] = ()
    changed = False
    if before is not None and after is not None:
        for n, (a, b) in enumerate(zip(before.regs, after.regs, strict=True)):
            if a != b or _writes(op, insn, n):
                regs.append((f"r{n}", b.describe(), _value_text(b)))
        stack = tuple(
            StackRun(s, n, d, tuple(after.stack[j] for j in range(s, s + n)))
            for s, d, n in after.stack_runs()
        )
        touched = {
            k
            for k in set(before.stack) | set(after.stack)
            if before.stack.get(k, -1) != after.stack.get(k, -1)
        }
        changed = bool(touched)
        stack = tuple(
            StackRun(
                r.start,
                r.length,
                r.data,
                r.cells,
                any(r.start <= k < r.start + r.length for k in touched),
            )
            for r in stack
        )
    return InsnExplanation(
        slot,
        raw,
        llvm,
        kernel,
        op.mnemonic if op else "",
        fields,
        text,
        tuple(regs),
        stack,
        changed,
        call,
        before is not None,
        unknown,
    )


def describe_range(s: Scalar) -> str:
    """A number the verifier knows a range of, in words: ``a number in 0..255 (the low 8
    bits vary)``."""
    if s.const is not None:
        v = s.const - (1 << 64) if s.const >> 63 else s.const
        return str(v) if -10 <= v <= 9 else f"{v} ({s.const:#x})"
    if s.smin >= 0 and s.umax < 1 << 63:
        bounds = (s.umin, s.umax)
    elif s.smin > -(1 << 63) or s.smax < (1 << 63) - 1:
        bounds = (s.smin, s.smax)
    else:
        return "unknown scalar"
    text = f"a number in {bounds[0]}..{bounds[1]}"
    if s.mask != (1 << 64) - 1:
        bits = s.mask.bit_length()
        if s.value == 0 and s.mask == (1 << bits) - 1:
            text += f" (only the low {bits} bits may be set)"
    return text


def _writes(op: object, insn: Insn, n: int) -> bool:
    """True if ``insn`` writes register ``n`` even if the value does not change."""
    kind = getattr(op, "kind", None)
    if kind in (Kind.ALU, Kind.NEG, Kind.MOVSX, Kind.ENDIAN, Kind.LDDW, Kind.LOAD, Kind.LOAD_SX):
        return n == insn.dst
    if kind in (Kind.CALL, Kind.CALLX, Kind.LD_ABS, Kind.LD_IND):
        return n == 0
    return False


def _value_text(v: Value) -> str | None:
    """A known scalar of at least 4 bytes whose bytes are text: the string, in memory order."""
    if not v.is_const or v.const is None or v.const < 1 << 24:
        return None
    raw = v.const.to_bytes(8, "little")
    return c_string(raw) if printable(raw.rstrip(b"\0") or b"\0") else None


def callee(obj: ObjectSpec, insn: Insn, reloc: object) -> str | None:
    """The function a relocated call goes to: a named symbol, or for a section symbol
    (``call 23`` against ``.text``) the function at byte (imm + 1) * 8 of that section."""
    sym = getattr(reloc, "symbol", None)
    if not sym or getattr(reloc, "symbol_type", "") != "STT_SECTION":
        return sym
    at = getattr(reloc, "symbol_value", 0) + (insn.imm + 1) * 8
    for p in obj.programs:
        if p.section == sym and p.offset == at:
            return p.name
    return f"{sym}+{at}"


def _call_info(insn: Insn, state: State | None, env: Env, symbol: str | None) -> CallInfo:
    op = lookup(insn)
    assert op is not None
    if op.key != "helper":
        name = f"pc{insn.imm:+d}" if op.key == "local" else f"kfunc btf_id {insn.imm}"
        if symbol:
            name = symbol  # the relocation names the called function (or kfunc)
        return CallInfo(op.key, insn.imm, name, "", ())
    h = by_id(insn.imm)
    if h is None:
        return CallInfo("helper", insn.imm, f"unknown helper #{insn.imm}", "", ())
    args = []
    for n, a in enumerate(h.args, start=1):
        v = state.reg(n) if state is not None else Value.uninit()
        size_v = state.reg(n + 1) if state is not None and n < 5 else None
        size = None
        if n < len(h.args) and h.args[n].kind == "size" and size_v is not None:
            size = size_v.const if size_v.is_const else None
        shown = v.describe()
        if v.is_const and v.signed is not None and abs(v.signed) < 1 << 16:
            shown = str(v.signed)  # small arguments read best as plain numbers: fmt_size = 17
        args.append(
            CallArg(f"r{n}", a.name, a.ctype, a.kind, shown, _pointee(v, a.ctype, size, state, env))
        )
    if h.variadic and state is not None:
        # "..." arguments: whatever initialized registers follow the declared ones.
        for n in range(len(h.args) + 1, 6):
            v = state.reg(n)
            if v.kind == "uninit":
                break
            small = v.signed is not None and abs(v.signed) < 1 << 16
            shown = str(v.signed) if small else v.describe()
            text = _pointee(v, "const char *", None, state, env)
            args.append(CallArg(f"r{n}", f"r{n}", "...", "vararg", shown, text))
    return CallInfo("helper", h.id, h.name, h.prototype, tuple(args))


def _pointee(v: Value, ctype: str, size: int | None, state: State | None, env: Env) -> str | None:
    """What a pointer argument points at, when the bytes are known: a string or bytes."""
    if v.kind != "ptr" or v.const is None or state is None:
        return None
    n = size if size is not None and 0 < size <= 512 else 64
    raw: bytes | None = None
    if v.base == "stack":
        got = bytearray()
        for off in range(v.const, v.const + n):
            b = state.stack.get(off)
            if b is None:
                break
            got.append(b)
        raw = bytes(got) if got else None
    elif v.base == "data" and v.region:
        for k in (n, 1):
            raw = env.read(v.region, v.const, k)
            if raw is not None:
                break
        if raw is not None and len(raw) == 1 and size is None:
            # Unknown length: read a C string byte by byte from read-only data.
            out = bytearray()
            off = v.const
            while len(out) < 256:
                ch = env.read(v.region, off, 1)
                if ch is None or ch == b"\0":
                    break
                out += ch
                off += 1
            raw = bytes(out) + b"\0"
    if not raw:
        return None
    if "char" in ctype:
        return c_string(raw.split(b"\0", 1)[0])
    return c_string(raw) if printable(raw) else raw.hex(" ")


def _summary(
    out: list[InsnExplanation], info: SectionInfo, exits: list[tuple[int, str]]
) -> tuple[str, ...]:
    lines = []
    if info.prog_type:
        lines.append(f"Section {info.name}: {info.attach}. Program type {info.prog_type}.")
        if info.context:
            lines.append(f"On entry r1 points to the context, {info.context}.")
    else:
        lines.append(f"Section {info.name}: {info.attach}.")
    for e in out:
        if e.call is not None and e.call.kind == "helper":
            lines.append(f"Instruction {e.index} calls helper {e.call.id}, {e.call.signature}.")
    for slot, r0 in exits:
        lines.append(f"Instruction {slot} returns r0 = {r0}.")
    return tuple(lines)
