"""The mnemonic syntax of the BPF conformance suite: ``mov %r0, 1``, ``ldxw %r0, [%r1+4]``.

One instruction per line; ``label:`` on its own line (or before an instruction); ``#``
starts a comment; the first ``exit`` is also a label named ``exit``.  Jump targets are
``+N``/``-N`` (slots relative to the next instruction) or a label.  Mnemonics are those
of :data:`bpfkit.isa.table.OPS` (the row's ``mnemonic`` field), plus the suite's aliases
``swapN`` (``bswapN``), ``call %rN`` (``callx``) and ``call helper N``/``call runtime N``.

Forms the suite has no text for are written as :func:`format_mnemonic` writes them:
``lddw %r1, 3, map_fd`` (a pseudo ``src`` by its table key), ``ldabsw 12``,
``ldindh %r1, 4``, ``call kfunc 123, 2`` (BTF id, module fd index),
``addr_space_cast %r1, %r2, 1, 0``, ``may_goto +3``, ``gotox %r1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bpfkit.errors import AsmError, IsaError
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import BY_MNEMONIC, OPS, Kind, Op, lookup

_REG = re.compile(r"%?r(\d+)\Z")
_MEM = re.compile(r"\[\s*(%?r\d+)\s*(?:([+-])\s*(0x[0-9a-fA-F]+|\d+)\s*)?\]\Z")
_LABEL = re.compile(r"([A-Za-z_.$][\w.$]*)\s*:")
_NUM = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|\d+)\Z")

_LDDW_SRC = {op.key.removeprefix("lddw_"): op for op in OPS if op.kind is Kind.LDDW and op.src}


@dataclass(slots=True)
class _Operand:
    text: str
    column: int  # 1-based


@dataclass(slots=True)
class _Line:
    lineno: int
    source: str
    mnemonic: str
    column: int
    operands: list[_Operand]


class _Ctx:
    """Location of the line being assembled, for errors."""

    def __init__(self, filename: str, line: _Line) -> None:
        self.filename, self.line = filename, line

    def error(self, message: str, column: int | None = None) -> AsmError:
        return AsmError(
            message,
            file=self.filename,
            line=self.line.lineno,
            column=column if column is not None else self.line.column,
            text=self.line.source,
        )


def _split_operands(body: str, start: int) -> list[_Operand]:
    """Split at commas outside brackets, keeping each operand's 1-based column."""
    out: list[_Operand] = []
    depth = 0
    begin = 0
    for i, ch in enumerate(body + ","):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth <= 0:
            piece = body[begin:i]
            stripped = piece.strip()
            lead = len(piece) - len(piece.lstrip())
            out.append(_Operand(stripped, start + begin + lead + 1))
            begin = i + 1
    if len(out) == 1 and not out[0].text:
        return []
    return out


def _number(ctx: _Ctx, opnd: _Operand, what: str) -> int:
    t = opnd.text.replace(" ", "")
    if not _NUM.match(t):
        raise ctx.error(f"expected {what}, got {opnd.text!r}", opnd.column)
    neg = t.startswith("-")
    t = t.lstrip("+-")
    v = int(t, 16) if t[:2].lower() == "0x" else int(t, 10)
    return -v if neg else v


def _imm32(ctx: _Ctx, opnd: _Operand) -> int:
    v = _number(ctx, opnd, "an immediate")
    if not -(1 << 31) <= v < (1 << 32):
        raise ctx.error(f"immediate {opnd.text} out of range (32 bits)", opnd.column)
    return v - (1 << 32) if v >= (1 << 31) else v


def _imm64(ctx: _Ctx, opnd: _Operand) -> int:
    v = _number(ctx, opnd, "an immediate")
    if not -(1 << 63) <= v < (1 << 64):
        raise ctx.error(f"immediate {opnd.text} out of range (64 bits)", opnd.column)
    return v & 0xFFFFFFFFFFFFFFFF


def _reg(ctx: _Ctx, opnd: _Operand) -> int:
    m = _REG.match(opnd.text)
    if not m or int(m.group(1)) > 10:
        raise ctx.error(f"bad register {opnd.text!r} (expected %r0..%r10)", opnd.column)
    return int(m.group(1))


def _mem(ctx: _Ctx, opnd: _Operand) -> tuple[int, int]:
    m = _MEM.match(opnd.text)
    if not m:
        raise ctx.error(f"expected a memory operand [%rN+off], got {opnd.text!r}", opnd.column)
    reg = _reg(ctx, _Operand(m.group(1), opnd.column + 1))
    off = 0
    if m.group(3) is not None:
        t = m.group(3)
        off = int(t, 16) if t[:2].lower() == "0x" else int(t)
        if m.group(2) == "-":
            off = -off
        if not -0x8000 <= off <= 0x7FFF:
            raise ctx.error(f"offset {off} out of range (signed 16 bits)", opnd.column)
    return reg, off


def _count(ctx: _Ctx, ops: list[_Operand], n: int, mnemonic: str) -> None:
    if len(ops) != n:
        raise ctx.error(f"'{mnemonic}' takes {n} operand{'s' if n != 1 else ''}, got {len(ops)}")


class _Fixup:
    """A jump or call whose target is a label, resolved once all labels are known."""

    __slots__ = ("index", "slot", "label", "field", "bits", "opnd", "line")

    def __init__(
        self, index: int, slot: int, label: str, field: str, bits: int, opnd: _Operand, line: _Line
    ) -> None:
        self.index, self.slot, self.label, self.field = index, slot, label, field
        self.bits, self.opnd, self.line = bits, opnd, line


def _target(
    ctx: _Ctx, opnd: _Operand, bits: int, fixups: list[_Fixup], index: int, slot: int, field: str
) -> int:
    """A relative jump target: ``+N``/``-N``/``N``, or a label (fixed up later, 0 now)."""
    t = opnd.text
    if _NUM.match(t.replace(" ", "")):
        v = _number(ctx, opnd, "a jump offset")
        if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
            raise ctx.error(f"jump offset {t} out of range ({bits} bits)", opnd.column)
        return v
    if not re.match(r"[A-Za-z_.$][\w.$]*\Z", t):
        raise ctx.error(f"expected a jump target (+N, -N or a label), got {t!r}", opnd.column)
    fixups.append(_Fixup(index, slot, t, field, bits, opnd, ctx.line))
    return 0


def _pick(ctx: _Ctx, rows: tuple[Op, ...], source: str) -> Op:
    for op in rows:
        if op.source == source:
            return op
    raise ctx.error(f"'{rows[0].mnemonic}' has no {source} form")


def _encode(
    ctx: _Ctx, mn: str, ops: list[_Operand], fixups: list[_Fixup], index: int, slot: int
) -> Insn:
    """Encode one instruction line (mnemonic already normalised)."""
    rows = BY_MNEMONIC.get(mn)
    if rows is None:
        raise ctx.error(f"unknown mnemonic '{mn}'")
    op = rows[0]
    kind = op.kind
    if kind is Kind.ALU:
        _count(ctx, ops, 2, mn)
        dst = _reg(ctx, ops[0])
        if ops[1].text.startswith(("%", "r")) and not _NUM.match(ops[1].text):
            row = _pick(ctx, rows, "reg")
            return Insn(row.opcode, dst, _reg(ctx, ops[1]), row.off or 0)
        row = _pick(ctx, rows, "imm")
        return Insn(row.opcode, dst, 0, row.off or 0, _imm32(ctx, ops[1]))
    if kind is Kind.NEG or kind is Kind.ENDIAN:
        _count(ctx, ops, 1, mn)
        return Insn(op.opcode, _reg(ctx, ops[0]), 0, 0, op.imm or 0)
    if kind is Kind.MOVSX:
        _count(ctx, ops, 2, mn)
        return Insn(op.opcode, _reg(ctx, ops[0]), _reg(ctx, ops[1]), op.off or 0)
    if kind is Kind.ADDR_SPACE_CAST:
        _count(ctx, ops, 4, mn)
        das, sas = (
            _number(ctx, ops[2], "an address space"),
            _number(ctx, ops[3], "an address space"),
        )
        if not (0 <= das <= 0xFFFF and 0 <= sas <= 0xFFFF):
            raise ctx.error("address spaces must be 0..65535", ops[2].column)
        imm = (das << 16) | sas
        imm = imm - (1 << 32) if imm >= (1 << 31) else imm
        return Insn(op.opcode, _reg(ctx, ops[0]), _reg(ctx, ops[1]), 1, imm)
    if kind is Kind.LDDW:
        if len(ops) == 3:
            pseudo = _LDDW_SRC.get(ops[2].text)
            if pseudo is None:
                names = ", ".join(sorted(_LDDW_SRC))
                raise ctx.error(f"unknown lddw source {ops[2].text!r} ({names})", ops[2].column)
            return Insn.lddw(_reg(ctx, ops[0]), _imm64(ctx, ops[1]), pseudo.src or 0)
        _count(ctx, ops, 2, mn)
        return Insn.lddw(_reg(ctx, ops[0]), _imm64(ctx, ops[1]))
    if kind is Kind.LD_ABS:
        _count(ctx, ops, 1, mn)
        return Insn(op.opcode, 0, 0, 0, _imm32(ctx, ops[0]))
    if kind is Kind.LD_IND:
        _count(ctx, ops, 2, mn)
        return Insn(op.opcode, 0, _reg(ctx, ops[0]), 0, _imm32(ctx, ops[1]))
    if kind in (Kind.LOAD, Kind.LOAD_SX, Kind.LOAD_ACQ):
        _count(ctx, ops, 2, mn)
        src, off = _mem(ctx, ops[1])
        return Insn(op.opcode, _reg(ctx, ops[0]), src, off, op.imm or 0)
    if kind is Kind.STORE_IMM:
        _count(ctx, ops, 2, mn)
        dst, off = _mem(ctx, ops[0])
        return Insn(op.opcode, dst, 0, off, _imm32(ctx, ops[1]))
    if kind in (Kind.STORE_REG, Kind.ATOMIC, Kind.STORE_REL):
        _count(ctx, ops, 2, mn)
        dst, off = _mem(ctx, ops[0])
        return Insn(op.opcode, dst, _reg(ctx, ops[1]), off, op.imm or 0)
    if kind is Kind.JA or kind is Kind.MAY_GOTO:
        _count(ctx, ops, 1, mn)
        if op.width == 32:  # ja32 (gotol): the target is in imm
            return Insn(op.opcode, 0, 0, 0, _target(ctx, ops[0], 32, fixups, index, slot, "imm"))
        return Insn(op.opcode, 0, 0, _target(ctx, ops[0], 16, fixups, index, slot, "off"))
    if kind is Kind.JCOND:
        _count(ctx, ops, 3, mn)
        dst = _reg(ctx, ops[0])
        off = _target(ctx, ops[2], 16, fixups, index, slot, "off")
        if ops[1].text.startswith(("%", "r")) and not _NUM.match(ops[1].text):
            row = _pick(ctx, rows, "reg")
            return Insn(row.opcode, dst, _reg(ctx, ops[1]), off)
        row = _pick(ctx, rows, "imm")
        return Insn(row.opcode, dst, 0, off, _imm32(ctx, ops[1]))
    if kind is Kind.GOTOX or kind is Kind.CALLX:
        _count(ctx, ops, 1, mn)
        return Insn(op.opcode, _reg(ctx, ops[0]))
    if kind is Kind.CALL:
        if op.key == "local":
            _count(ctx, ops, 1, mn)
            imm = _target(ctx, ops[0], 32, fixups, index, slot, "imm")
            return Insn(op.opcode, 0, op.src or 0, 0, imm)
        if op.key == "kfunc" and len(ops) == 2:
            off = _number(ctx, ops[1], "a module index")
            if not -0x8000 <= off <= 0x7FFF:
                raise ctx.error(f"offset {off} out of range (signed 16 bits)", ops[1].column)
            return Insn(op.opcode, 0, op.src or 0, off, _imm32(ctx, ops[0]))
        _count(ctx, ops, 1, mn)
        return Insn(op.opcode, 0, op.src or 0, 0, _imm32(ctx, ops[0]))
    if kind is Kind.EXIT:
        _count(ctx, ops, 0, mn)
        return Insn(op.opcode)
    raise ctx.error(f"'{mn}' cannot be assembled")  # pragma: no cover - every Kind is above


_CALL_MODES = {"local": "call local", "kfunc": "call kfunc", "runtime": "call kfunc"}


def _normalise(line: _Line) -> tuple[str, list[_Operand]]:
    """The table mnemonic of a line, resolving ``lock``, ``call`` forms and aliases."""
    mn, ops = line.mnemonic, line.operands
    if mn.startswith("swap") and mn[4:] in ("16", "32", "64"):
        return "bswap" + mn[4:], ops
    if mn == "call" and ops:
        first = ops[0].text
        word, _, rest = first.partition(" ")
        if word in _CALL_MODES or word == "helper":
            rest = rest.strip()
            moved = _Operand(rest, ops[0].column + len(first) - len(rest))
            return (_CALL_MODES.get(word, "call"), [moved, *ops[1:]])
        if _REG.match(first):
            return "callx", ops
    if mn == "lock" and ops:
        words = ops[0].text.split()
        # "lock fetch add [%r1+0], %r2": the mnemonic words, then the memory operand.
        names = [w for w in words if not w.startswith("[")]
        memtext = ops[0].text[ops[0].text.find("[") :] if "[" in ops[0].text else ""
        col = ops[0].column + (ops[0].text.find("[") if memtext else len(ops[0].text))
        return "lock " + " ".join(names), [_Operand(memtext, col), *ops[1:]]
    return mn, ops


def _lines(text: str) -> list[_Line]:
    out: list[_Line] = []
    for lineno, source in enumerate(text.splitlines(), 1):
        code = (
            source.split("#", 1)[0].split("//", 1)[0] if "#" in source or "//" in source else source
        )
        pos = len(code) - len(code.lstrip())
        rest = code.strip()
        while rest:
            m = _LABEL.match(rest)
            if not m:
                break
            out.append(_Line(lineno, source, m.group(1) + ":", pos + 1, []))
            consumed = m.end()
            tail = rest[consumed:]
            pos += consumed + len(tail) - len(tail.lstrip())
            rest = tail.strip()
        if not rest:
            continue
        word = rest.split(None, 1)[0]
        body_start = pos + len(word)
        body = code[body_start:]
        out.append(_Line(lineno, source, word.lower(), pos + 1, _split_operands(body, body_start)))
    return out


def assemble_mnemonic(text: str, filename: str = "<input>") -> list[Insn]:
    """Assemble conformance-suite mnemonic text into instructions.

    Raises :class:`~bpfkit.errors.AsmError` (file:line:column and the text) for an
    unknown mnemonic, a bad register, an immediate or offset out of range, a malformed
    operand, a duplicate or undefined label, or a jump that does not fit its field.
    """
    insns: list[Insn] = []
    labels: dict[str, int] = {}
    fixups: list[_Fixup] = []
    slot = 0
    for line in _lines(text):
        ctx = _Ctx(filename, line)
        if line.mnemonic.endswith(":"):
            name = line.mnemonic[:-1]
            if name in labels and name != "exit":
                raise ctx.error(f"duplicate label '{name}'")
            labels[name] = slot
            continue
        if line.mnemonic == "exit" and "exit" not in labels:
            labels["exit"] = slot
        mn, ops = _normalise(line)
        try:
            insn = _encode(ctx, mn, ops, fixups, len(insns), slot)
        except IsaError as e:  # a field the table's encoder refuses
            raise ctx.error(str(e)) from None
        insns.append(insn)
        slot += insn.width
    for fx in fixups:
        ctx = _Ctx(filename, fx.line)
        if fx.label not in labels:
            raise ctx.error(f"undefined label '{fx.label}'", fx.opnd.column)
        rel = labels[fx.label] - (fx.slot + insns[fx.index].width)
        if not -(1 << (fx.bits - 1)) <= rel < (1 << (fx.bits - 1)):
            raise ctx.error(
                f"jump to '{fx.label}' out of range ({rel} slots; {fx.bits}-bit field)",
                fx.opnd.column,
            )
        old = insns[fx.index]
        if fx.field == "off":
            insns[fx.index] = Insn(old.opcode, old.dst, old.src, rel, old.imm)
        else:
            insns[fx.index] = Insn(old.opcode, old.dst, old.src, old.off, rel)
    return insns


def _mem_text(reg: int, off: int) -> str:
    if off == 0:
        return f"[%r{reg}]"
    return f"[%r{reg}{'+' if off > 0 else '-'}{abs(off)}]"


def _rel(v: int) -> str:
    return f"+{v}" if v >= 0 else str(v)


def format_mnemonic(insn: Insn) -> str:
    """One instruction in the mnemonic syntax (jump targets as ``+N``/``-N``).

    :func:`assemble_mnemonic` reads it back to the same instruction for every valid form.
    Raises :class:`~bpfkit.errors.IsaError` for an instruction that is not in the table.
    """
    op = lookup(insn)
    if op is None:
        raise IsaError(f"opcode {insn.opcode:#04x} is not a valid instruction")
    k, mn = op.kind, op.mnemonic
    d, s = f"%r{insn.dst}", f"%r{insn.src}"
    if k is Kind.ALU:
        return f"{mn} {d}, {s if op.source == 'reg' else insn.imm}"
    if k is Kind.NEG or k is Kind.ENDIAN:
        return f"{mn} {d}"
    if k is Kind.MOVSX:
        return f"{mn} {d}, {s}"
    if k is Kind.ADDR_SPACE_CAST:
        imm = insn.imm & 0xFFFFFFFF
        return f"{mn} {d}, {s}, {imm >> 16}, {imm & 0xFFFF}"
    if k is Kind.LDDW:
        extra = f", {op.key.removeprefix('lddw_')}" if op.src else ""
        return f"{mn} {d}, {insn.imm64:#x}{extra}"
    if k is Kind.LD_ABS:
        return f"{mn} {insn.imm}"
    if k is Kind.LD_IND:
        return f"{mn} {s}, {insn.imm}"
    if k in (Kind.LOAD, Kind.LOAD_SX, Kind.LOAD_ACQ):
        return f"{mn} {d}, {_mem_text(insn.src, insn.off)}"
    if k is Kind.STORE_IMM:
        return f"{mn} {_mem_text(insn.dst, insn.off)}, {insn.imm}"
    if k in (Kind.STORE_REG, Kind.ATOMIC, Kind.STORE_REL):
        return f"{mn} {_mem_text(insn.dst, insn.off)}, {s}"
    if k is Kind.JA or k is Kind.MAY_GOTO:
        return f"{mn} {_rel(insn.imm if op.width == 32 else insn.off)}"
    if k is Kind.JCOND:
        rhs = s if op.source == "reg" else str(insn.imm)
        return f"{mn} {d}, {rhs}, {_rel(insn.off)}"
    if k is Kind.GOTOX:
        return f"{mn} {d}"
    if k is Kind.CALLX:
        return f"call {d}"
    if k is Kind.CALL:
        if op.key == "local":
            return f"{mn} {_rel(insn.imm)}"
        if op.key == "kfunc" and insn.off:
            return f"{mn} {insn.imm}, {insn.off}"
        return f"{mn} {insn.imm}"
    return mn
