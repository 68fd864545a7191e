"""Plain sentences on what one instruction does and why, from its ISA row and tracked values."""

from __future__ import annotations

from dataclasses import replace

from bpfkit.explain.calls import CallInfo
from bpfkit.explain.sections import ctx_field
from bpfkit.explain.values import FP, STACK_SIZE, State, Value
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import Kind, Op

_ESCAPES = {0: "\\0", 9: "\\t", 10: "\\n", 13: "\\r", 34: '\\"', 92: "\\\\"}


def c_string(data: bytes) -> str:
    """``data`` as a C string literal, quotes included: ``"hello from rust\\n\\0"``."""
    out = []
    for b in data:
        if b in _ESCAPES:
            out.append(_ESCAPES[b])
        elif 32 <= b < 127:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return '"' + "".join(out) + '"'


def printable(data: bytes) -> bool:
    """True if ``data`` reads as text: printable ASCII, tab, newline, NULs at the end only."""
    body = data.rstrip(b"\0")
    return bool(body) and all(32 <= b < 127 or b in (9, 10, 13) for b in body)


def _reg(n: int) -> str:
    return "r10 (the frame pointer)" if n == FP else f"r{n}"


def _range(start: int, n: int) -> str:
    return f"fp{start:+d}" if n == 1 else f"fp{start:+d}..fp{start + n - 1:+d}"


def _bytes(n: int) -> str:
    return "one byte" if n == 1 else f"{n} bytes"


def _where(base: Value, off: int, size: int = 0, ctx_struct: str = "") -> str:
    """Text for memory at ``base + off``: ``fp-8``, ``skb->len``, ``map value of m + 4``."""
    if base.base == "ctx" and base.const is not None and ctx_struct:
        field = ctx_field(ctx_struct, base.const + off, size)
        if field:
            return field
    if base.kind != "ptr":
        return f"address {base.describe()} + {off}"
    if base.base == "stack" and base.const is not None:
        return _range(base.const + off, 1)
    if base.const is not None:
        return replace(base, const=base.const + off, maybe_null=False).describe()
    return f"{base.describe()} {'+' if off >= 0 else '-'} {abs(off)}"


def describe_insn(
    insn: Insn,
    op: Op | None,
    slot: int,
    before: State | None,
    after: State | None,
    call: CallInfo | None,
    reloc: object,
    ctx_struct: str = "",
) -> str:
    """One or two sentences on ``insn`` (slot ``slot``) given the states around it;
    ``ctx_struct`` (``struct __sk_buff``) names the context fields loads read."""
    if op is None:
        return "Unknown instruction: no form of the eBPF instruction set has this opcode."
    st = before or State.entry()
    k = op.kind
    d, s = insn.dst, insn.src
    after_st = after or st
    width = "" if op.width == 64 else f" (32-bit operation on w{d}: r{d}'s upper 32 bits become 0)"
    if k is Kind.LDDW:
        return _lddw(insn, op, after_st, reloc)
    if k is Kind.ALU:
        return _alu(insn, op, st, after_st) + width
    if k is Kind.NEG:
        return f"Negates r{d}; r{d} is now {after_st.reg(d).describe()}." + width
    if k is Kind.MOVSX:
        return (
            f"Copies r{s}'s low {insn.off} bits into r{d}, sign-extended; "
            f"r{d} is now {after_st.reg(d).describe()}."
        )
    if k is Kind.ENDIAN:
        return f"{op.doc.capitalize()} (r{d}); r{d} is now {after_st.reg(d).describe()}."
    if k in (Kind.STORE_REG, Kind.STORE_IMM, Kind.STORE_REL):
        return _store(insn, op, st, after_st, ctx_struct)
    if k in (Kind.LOAD, Kind.LOAD_SX, Kind.LOAD_ACQ):
        base = st.reg(s)
        v = after_st.reg(d)
        sx = ", sign-extended" if k is Kind.LOAD_SX else ""
        if base.base == "data" and v.is_const:
            sx += " (the value in the object file: a loader may set read-only data first)"
        return (
            f"Loads {op.size} byte{'s' if op.size > 1 else ''} from {_where(base, insn.off, op.size, ctx_struct)} "
            f"(r{s} {insn.off:+d}) into r{d}{sx}; r{d} is now {v.describe()}."
        )
    if k is Kind.ATOMIC:
        return (
            f"Atomic read-modify-write ({op.key}) of {op.size} bytes at "
            f"{_where(st.reg(d), insn.off)}: {op.doc}."
        )
    if k in (Kind.LD_ABS, Kind.LD_IND):
        return (
            f"Legacy packet load: {op.doc}; r0 gets the bytes in host order. "
            "These instructions also clobber r1-r5."
        )
    if k is Kind.JA:
        dist = insn.imm if op.width == 32 else insn.off
        return (
            f"Jumps to instruction {slot + 1 + dist} "
            f"(the offset {dist:+d} counts from the next instruction)."
        )
    if k is Kind.JCOND:
        return _jcond(insn, op, slot, st)
    if k is Kind.MAY_GOTO:
        return f"{op.doc.capitalize()}: then jumps to instruction {slot + 1 + insn.off}."
    if k is Kind.CALL:
        return _call(insn, op, slot, call)
    if k is Kind.EXIT:
        r0 = st.reg(0)
        return f"Returns from the function with r0 = {r0.describe()} as its return value."
    return op.doc.capitalize() + "."


def _lddw(insn: Insn, op: Op, after: State, reloc: object) -> str:
    d = insn.dst
    if reloc is not None:
        sym = getattr(reloc, "symbol", "?")
        kind = getattr(getattr(reloc, "kind", None), "value", "")
        v = after.reg(d)
        what = v.describe()
        if kind == "global_data" and getattr(reloc, "symbol_type", "") != "STT_SECTION":
            what = f"the address of the global variable {sym} ({what})"
        elif kind == "map":
            what = f"the map {sym} (the loader puts the map's fd here)"
        return (
            f"Loads {what} into r{d}: the immediate is a placeholder that the loader "
            f"patches (relocation {getattr(reloc, 'type_name', '')} against {sym}, {kind})."
        )
    if insn.src != 0:
        return f"{op.doc.capitalize()}, into r{d} (pseudo source {insn.src})."
    value = insn.imm64
    raw = value.to_bytes(8, "little")
    text = (
        f"Loads the 64-bit constant {value:#018x} into r{d}, assembled from imm "
        f"{insn.imm & 0xFFFFFFFF:#010x} (low half) and the second slot's imm "
        f"{insn.imm_hi & 0xFFFFFFFF:#010x} (high half)."
    )
    if printable(raw.rstrip(b"\0") or b"\0") and value >= 1 << 24:
        text += (
            f" In memory (little-endian: lowest byte first) these are the bytes "
            f"{raw.hex(' ')}, the text {c_string(raw)} -- the immediate's lowest byte "
            f"{raw[0]:#04x} is {chr(raw[0])!r}, so it comes first."
        )
    return text


def _alu(insn: Insn, op: Op, st: State, after: State) -> str:
    d, s = insn.dst, insn.src
    v = after.reg(d)
    rhs = _reg(s) if op.source == "reg" else str(insn.imm)
    if op.width == 32 and op.source == "reg":
        rhs = f"w{s}"
    if op.key == "mov":
        if op.source == "reg" and s == FP:
            return (
                f"Copies r10, the read-only frame pointer, into r{d}: r{d} now points at the "
                f"top of the program's {STACK_SIZE}-byte stack (fp)."
            )
        if op.source == "reg":
            if op.width == 32:
                return f"Copies w{s} (r{s}'s low 32 bits) into r{d}; r{d} is now {v.describe()}."
            return f"Copies r{s} into r{d}; r{d} is now {v.describe()}."
        return f"Sets r{d} to {v.describe()}."
    prev = st.reg(d)
    if prev.kind == "ptr" and v.kind == "ptr" and op.key in ("add", "sub"):
        what = "the stack" if v.base == "stack" else v.base
        return (
            f"Pointer arithmetic: r{d} {op.llvm.split()[1]} {rhs} moves the pointer; r{d} now "
            f"points to {v.describe()} ({what})."
        )
    reg = f"w{d}" if op.width == 32 else f"r{d}"
    return f"{reg} {op.llvm.split()[1]} {rhs}: {op.doc}; r{d} is now {v.describe()}."


def _store(insn: Insn, op: Op, st: State, after: State, ctx_struct: str) -> str:
    d, s, n = insn.dst, insn.src, op.size
    base = st.reg(d)
    what = f"r{s}'s {n} bytes" if n == 8 else f"r{s}'s low {n * 8} bits ({_bytes(n)})"
    if op.kind is Kind.STORE_IMM:
        what = f"the immediate {insn.imm} as {_bytes(n)}"
    if base.kind == "ptr" and base.base == "stack" and base.const is not None:
        at = base.const + insn.off
        if d == FP:
            text = (
                f"r10 is the read-only frame pointer, so this stores {what} in the "
                f"{STACK_SIZE}-byte stack at {_range(at, n)}."
            )
        else:
            text = (
                f"r{d} points to {base.describe()}, so this stores {what} in the "
                f"{STACK_SIZE}-byte stack at {_range(at, n)}."
            )
        written = after.stack_bytes(at, n)
        if written is not None:
            text += f" Bytes written, lowest address first: {written.hex(' ')}."
        for start, data, length in after.stack_runs():
            if start <= at < start + length and data is not None and printable(data):
                text += f" The stack now holds {c_string(data)} at {_range(start, length)}."
        return text
    return f"Stores {what} at {_where(base, insn.off, n, ctx_struct)} (r{d} {insn.off:+d})."


def _jcond(insn: Insn, op: Op, slot: int, st: State) -> str:
    d = insn.dst
    rhs = f"r{insn.src}" if op.source == "reg" else str(insn.imm)
    sym = op.llvm.split()[2]
    target = slot + 1 + insn.off
    a = st.reg(d)
    known = f" (r{d} is {a.describe()})" if a.kind != "uninit" else ""
    text = (
        f"If r{d} {sym} {rhs}{' (32-bit compare)' if op.width == 32 else ''}, jumps to "
        f"instruction {target} (offset {insn.off:+d} from the next one); otherwise continues"
        f"{known}."
    )
    if a.kind == "ptr" and a.maybe_null and op.source == "imm" and insn.imm == 0:
        text += " This is the NULL check the verifier requires before the pointer is used."
    return text


def _call(insn: Insn, op: Op, slot: int, call: CallInfo | None) -> str:
    if op.key == "local" and call is not None and not call.name.startswith("pc"):
        return (
            f"Calls the BPF function {call.name} (a bpf-to-bpf call the loader resolves through "
            "a relocation; arguments in r1-r5, result in r0, r6-r9 preserved)."
        )
    if op.key == "kfunc" and call is not None and "btf_id" not in call.name:
        return f"Calls the kernel function (kfunc) {call.name}, resolved by the loader via BTF."
    if op.key == "local":
        return (
            f"Calls the BPF function at instruction {slot + 1 + insn.imm} (a bpf-to-bpf call; "
            "arguments in r1-r5, result in r0, r6-r9 preserved)."
        )
    if op.key == "kfunc":
        return f"Calls the kernel function (kfunc) with BTF id {insn.imm}."
    if call is None or not call.prototype:
        return f"Calls helper {insn.imm}, which this kernel's uapi does not define."
    return (
        f"Calls helper {call.id}, {call.signature}. Its prototype is {call.prototype}: "
        "arguments go in r1-r5, the result comes back in r0, and r1-r5 are clobbered."
    )
