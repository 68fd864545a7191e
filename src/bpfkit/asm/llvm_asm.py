"""LLVM's BPF assembly (what ``llc``, ``clang -S`` and ``rustc --emit=asm`` write) to an ELF object.

One pass over the lines: labels, directives and instructions fill the sections of a
:class:`~bpfkit.asm.builder.Builder`; fixups are resolved at the end, where relocations are
made.  Instructions are matched against the ISA table's LLVM templates
(:mod:`bpfkit.asm.llvm_syntax`); directives are those llvm-mc accepts for ELF targets that
compilers emit.  Every error is an :class:`~bpfkit.errors.AsmError` at file:line:column.
"""

from __future__ import annotations

import gc
import re
import struct
from collections.abc import Callable
from typing import Any

from bpfkit.asm import directives, dwarf, fastpath
from bpfkit.asm.builder import (
    FK_CALL,
    FK_JUMP16,
    FK_JUMP32,
    FK_LDDW,
    Builder,
    Fixup,
    FixupError,
)
from bpfkit.asm.expr import ExprError, ExprParser, Value, parse_int
from bpfkit.asm.llvm_syntax import PATTERNS, Pattern, SyntaxProblem, tokenize
from bpfkit.asm.state import Assembling, DwarfState
from bpfkit.errors import AsmError
from bpfkit.isa.insn import pack_regs
from bpfkit.isa.table import Kind, Op
from bpfkit.obj import writer as w

_UNSEEN = object()
_split = fastpath.ATOMS.split
_kind = fastpath.KINDS.__getitem__
_LABEL = re.compile(r'\s*([A-Za-z_.$][\w.$]*|"[^"]*")\s*:(?!=)')
_LABEL_ONLY = re.compile(r"[A-Za-z_.$][\w.$]*")  # a line "name:" (fullmatch before the colon)


class Where:
    """A source location, for errors raised late (fixups).

    The column may be given later as ``(parts, index, col)``: the 0-based column ``col``
    of the text split into ``parts``, plus the length of the parts before ``index`` —
    computed only if an error is reported.
    """

    __slots__ = ("file", "line", "_column", "raw", "_lazy")

    def __init__(
        self, file: str, line: int, column: int, raw: str, lazy: tuple[Any, ...] | None = None
    ) -> None:
        self.file, self.line, self._column, self.raw, self._lazy = file, line, column, raw, lazy

    @property
    def column(self) -> int:
        """1-based column."""
        if self._lazy is not None:
            parts, index, col = self._lazy
            return int(col + len("".join(parts[:index])) + 1)
        return self._column

    @property
    def text(self) -> str:
        """The source line."""
        return self.raw.rstrip("\n")

    def error(self, message: str) -> AsmError:
        """An :class:`AsmError` here."""
        return AsmError(message, file=self.file, line=self.line, column=self.column, text=self.text)


def strip_comment(line: str) -> str:
    """The line without its ``#`` or ``//`` comment (quotes respected)."""
    if '"' not in line and "'" not in line:
        cut = line.find("#")
        if cut >= 0:
            line = line[:cut]
        cut = line.find("//")
        return line[:cut] if cut >= 0 else line
    quote = ""
    i = 0
    n = len(line)
    while i < n:
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            if ch == "'" and i + 2 < n and line[i + 2] == "'":  # a character literal
                i += 3
                continue
            quote = ch
        elif ch == "#" or line.startswith("//", i):
            return line[:i]
        i += 1
    return line


def split_statements(line: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each ``;``-separated statement of a line (quotes respected)."""
    return directives.split_spans(line, ";", nest=False)


class Assembler:
    """Assembles one LLVM-syntax file into an object (use :meth:`run`)."""

    def __init__(self, filename: str, big_endian: bool) -> None:
        self.filename = filename
        self.b = Builder(big_endian)
        self.big_endian = big_endian
        self._insn = struct.Struct(">BBhi" if big_endian else "<BBhi")
        self.lineno = 0
        self.raw = ""
        self.column = 1
        self.expr = ExprParser(self.b.use, self._dot)
        self.dwarf = DwarfState()
        self.section_stack: list[tuple[Any, Any]] = []
        self.previous: object = None
        self.handlers: dict[str, Callable[[Assembling, str, int], None]] = directives.HANDLERS
        self._plans: dict[Any, fastpath.Plan | None | object] = {}
        self._cache: dict[str, bytes] = {}

    def release(self) -> None:
        """Break the reference cycles of a finished assembly (see :func:`assemble_llvm`)."""
        self.expr = None  # type: ignore[assignment]  # it holds bound methods of self
        self.dwarf = DwarfState()
        self.section_stack.clear()
        self.previous = None
        self.b.release()

    # --- helpers -------------------------------------------------------------------
    def _dot(self) -> object:
        return self.b.temp_here()

    @property
    def where(self) -> Where:
        """The current statement's location."""
        return Where(self.filename, self.lineno, self.column, self.raw.rstrip("\n"))

    def error(self, message: str, column: int | None = None) -> AsmError:
        """An :class:`AsmError` at the current line (1-based ``column``)."""
        return AsmError(
            message,
            file=self.filename,
            line=self.lineno,
            column=column if column is not None else self.column,
            text=self.raw.rstrip("\n"),
        )

    def here(self, column: int) -> Where:
        """The current line with another column."""
        return Where(self.filename, self.lineno, column, self.raw.rstrip("\n"))

    def parse_expr(self, text: str, pos: int, base: int) -> tuple[Value, int]:
        """An expression of ``text`` at ``pos``; ``base`` is the 0-based column of text[0]."""
        try:
            return self.expr.parse(text, pos)
        except ExprError as e:
            raise self.error(str(e), base + e.pos + 1) from None

    # --- the main loop -------------------------------------------------------------
    def run(self, text: str) -> bytes:
        """Assemble ``text``; returns the ELF object."""
        cache = self._cache
        plans = self._plans
        b = self.b
        use = b.use
        symbols, registered = b.symbols, b.registered
        new_tuple = tuple.__new__
        label_name = _LABEL_ONLY.fullmatch
        # Where instructions go while the fast paths may be taken: None in a NOBITS
        # section or while a .loc waits for the next instruction (refreshed after every
        # line that is not an instruction, since directives switch sections).
        data: bytearray | None = b.current.data
        for lineno, raw in enumerate(text.splitlines(), 1):
            stripped = raw.strip()
            if data is not None:
                done = cache.get(stripped)
                if done is not None:
                    data += done  # the same instruction text as before
                    continue
            if not stripped:
                continue
            self.lineno, self.raw = lineno, raw
            plain = "#" not in stripped and "//" not in stripped  # no comment to cut
            line = raw if plain else strip_comment(raw)
            if not plain:
                stripped = line.strip()
                if not stripped:
                    continue
            if ":" not in stripped and ";" not in stripped:
                col = len(line) - len(line.lstrip())
                self.column = col + 1
                if stripped[0] == ".":
                    self.directive(stripped, col)
                elif data is None:
                    self.instruction(stripped, col)
                else:
                    # An instruction whose shape has an encoder (fastpath); anything
                    # else, and any doubt, goes to instruction() below.
                    parts = _split(stripped)
                    plan: Any = plans.get((tuple(parts[0::2]), tuple(map(_kind, parts[1::2]))))
                    encode = plan.encode if plan.__class__ is fastpath.Plan else None
                    if encode is not None:
                        try:
                            done = encode(parts)
                        except (fastpath.GiveUp, ValueError):  # ValueError: "0xrff"
                            done = None
                        if done is not None:
                            if plan.fixups:
                                offset = len(data)
                                fixups = b.current.fixups
                                for kind, index in plan.fixups:
                                    sym = symbols.get(parts[index])
                                    if sym is None or sym.order < 0:
                                        sym = use(parts[index])
                                    # Named tuples made without their Python __new__; the
                                    # location stays a plain tuple until an error needs it.
                                    loc = (lineno, raw, parts, index, col)
                                    value = new_tuple(Value, (sym, None, 0))
                                    fixups.append(new_tuple(Fixup, (kind, offset, value, 0, loc)))
                            elif plain:
                                cache[stripped] = done
                            data += done
                            continue
                    self.instruction(stripped, col)
                    continue  # an instruction switches no section
            elif ";" in line:
                for start, end in split_statements(line):
                    self.statement(line[:end], start)
            elif stripped[-1] == ":" and label_name(stripped, 0, len(stripped) - 1):
                sym = symbols.get(stripped[:-1])
                if sym is None or sym.defined or sym.variable is not None:
                    self.label(stripped[:-1], len(line) - len(line.lstrip()) + 1)
                else:  # Builder.define, inline
                    cur = b.current
                    sym.section, sym.offset, sym.defined = cur, cur.size, True
                    if sym.order < 0:
                        sym.order = len(registered)
                        registered.append(sym)
                continue  # a label switches no section either
            else:
                self.statement(line, 0)
            cur = b.current
            fast = cur.type != w.SHT_NOBITS and self.dwarf.pending is None
            data = cur.data if fast else None
        dwarf.finish(self)
        try:
            return self.b.finish()
        except FixupError as e:
            where = e.where
            if isinstance(where, tuple):  # (lineno, raw, parts, index, col) of the fast path
                lineno, raw, parts, index, col = where
                where = Where(self.filename, lineno, 0, raw, (parts, index, col))
            if isinstance(where, Where):
                raise where.error(str(e)) from None
            raise AsmError(str(e), file=self.filename) from None

    def statement(self, line: str, pos: int) -> None:
        """One statement: labels, then a directive, an assignment or an instruction."""
        if ":" in line:
            while True:
                m = _LABEL.match(line, pos)
                if m is None:
                    break
                self.label(m.group(1).strip('"'), m.start(1) + 1)
                pos = m.end()
        rest = line[pos:]
        stripped = rest.lstrip()
        if not stripped:
            return
        col = pos + len(rest) - len(stripped)
        self.column = col + 1
        if stripped[0] == ".":
            self.directive(stripped.rstrip(), col)
            return
        self.instruction(stripped.rstrip(), col)

    def label(self, name: str, column: int) -> None:
        """Define a label at the current location."""
        sym = self.b.symbol(name)
        if sym.defined or sym.variable is not None:
            raise self.error(f"symbol '{name}' is already defined", column)
        self.b.define(sym)

    def directive(self, text: str, col: int) -> None:
        """Dispatch a directive (``text`` starts with its name)."""
        name = text.split(None, 1)[0]
        handler = self.handlers.get(name.lower())
        if handler is None:
            raise self.error(f"unknown directive '{name}'", col + 1)
        try:
            handler(self, text, col)
        except ValueError as e:  # the builder refusing data (e.g. bytes in a NOBITS section)
            raise self.error(str(e), col + 1) from None

    # --- instructions --------------------------------------------------------------
    def instruction(self, text: str, col: int) -> None:
        """Encode one instruction into the current section.

        A line whose shape was seen before is encoded from its plan
        (:mod:`bpfkit.asm.fastpath`); otherwise, and to report any error precisely, the
        full tokenizer runs.  Constant-only lines are remembered by their text.
        """
        if self.dwarf.pending is not None:
            dwarf.line_entry(self)
        parts = _split(text)
        key_shape = (tuple(parts[0::2]), tuple(map(_kind, parts[1::2])))
        plan: Any = self._plans.get(key_shape, _UNSEEN)
        if plan is not None and plan is not _UNSEEN:
            atoms = parts[1::2]
            sec = self.b.current
            if plan.encode is not None and sec.type != w.SHT_NOBITS:
                try:
                    data = plan.encode(parts)
                except (fastpath.GiveUp, ValueError):  # ValueError: "0xrff" is no number
                    pass
                else:
                    if plan.fixups:
                        offset = len(sec.data)
                        use, fixups = self.b.use, sec.fixups
                        for kind, index in plan.fixups:
                            loc = Where(
                                self.filename, self.lineno, 0, self.raw, (parts, index, col)
                            )
                            value = Value(use(parts[index]), None, 0)
                            fixups.append(Fixup(kind, offset, value, 0, loc))
                    else:
                        self._cache[text] = data
                    sec.data += data
                    return
            else:
                try:
                    vals = self._operands(plan, atoms)
                    where = [len("".join(parts[: 2 * i + 1])) for i, _ in plan.steps]
                    self._emit(text, col, plan.key, vals, where)
                    return
                except (AsmError, ValueError):
                    pass  # report it with exact columns from the full tokenizer
        try:
            key, vals, where = tokenize(text, self.b.use, self._dot)
        except SyntaxProblem as e:
            raise self.error(str(e), col + e.pos + 1) from None
        if plan is _UNSEEN:
            self._plans[key_shape] = fastpath.derive(key, vals, parts, self.big_endian)
        self._emit(text, col, key, vals, where)

    def _operands(self, plan: fastpath.Plan, atoms: list[str]) -> list[Any]:
        use = self.b.use
        vals: list[Any] = []
        for index, how in plan.steps:
            atom = atoms[index]
            if how == fastpath.REG:
                vals.append(fastpath.REG_NUM[atom])
            elif how == fastpath.NUM:
                vals.append(Value(None, None, parse_int(atom)))
            elif how == fastpath.NEG:
                vals.append(Value(None, None, -parse_int(atom)))
            else:
                vals.append(Value(use(atom), None, 0))
        return vals

    def _emit(
        self, text: str, col: int, key: tuple[str, ...], vals: list[Any], where: list[int] | None
    ) -> None:
        pats = PATTERNS.get(key)
        if pats is None:
            raise self.error(f"invalid instruction '{text}'", col + 1)
        if self.b.current.type == w.SHT_NOBITS:
            raise self.error(f"instructions in NOBITS section '{self.b.current.name}'", col + 1)
        if where is None:
            where = [0] * len(vals)
        pat = pats[0]
        op = pat.op
        if len(pats) > 1:
            op = self._choose(pats, vals, col, where)
        self._encode(op, pat.roles, vals, where, col)

    def _choose(self, pats: list[Pattern], vals: list[Any], col: int, where: list[int]) -> Op:
        first = pats[0]
        if first.op.kind is Kind.CALL:
            v = vals[0]
            want = "helper" if isinstance(v, Value) and v.absolute else "local"
            for p in pats:
                if p.op.key == want:
                    return p.op
        if first.op.kind is Kind.LDDW and "pseudo" in first.roles:
            v = vals[first.roles.index("pseudo")]
            src = self._const(v, col + where[first.roles.index("pseudo")] + 1)
            for p in pats:
                if p.op.src == src:
                    return p.op
            raise self.error(f"unknown ld_pseudo source {src}", col + 1)
        return first.op

    def _const(self, v: object, column: int) -> int:
        if not isinstance(v, Value):
            raise self.error("expected an immediate, got a register", column)
        try:
            return self.b.absolute(v, None)
        except FixupError:
            raise self.error("expected a constant expression", column) from None

    def _encode(
        self, op: Op, roles: tuple[str, ...], vals: list[Any], where: list[int], col: int
    ) -> None:
        dst = src = off = imm = 0
        imm_hi = 0
        fix: tuple[str, Value, int] | None = None
        as_dst = as_src = 0
        seen_dst = seen_src = False
        for role, v, p in zip(roles, vals, where, strict=True):
            column = col + p + 1
            if role[0] == "=":
                if v != int(role[1:]):
                    raise self.error(f"this instruction requires r{role[1:]} here", column)
            elif role in ("rd", "wd"):
                if seen_dst and v != dst:
                    raise self.error("both registers of this instruction must be the same", column)
                dst, seen_dst = v, True
            elif role in ("rs", "ws"):
                if seen_src and v != src:
                    raise self.error("both registers of this instruction must be the same", column)
                src, seen_src = v, True
            elif role == "off":
                if not (isinstance(v, Value) and v.absolute):
                    raise self.error("operand is not a 16-bit signed integer", column)
                o = v.c
                if not -0x8000 <= o <= 0x7FFF:
                    raise self.error("operand is not a 16-bit signed integer", column)
                off = o
            elif role == "imm":
                if op.kind is Kind.CALL and not (isinstance(v, Value) and v.absolute):
                    fix = (FK_CALL, v, column)
                    continue
                imm = self._imm32(v, column)
            elif role == "imm64":
                assert isinstance(v, Value)
                r = v if v.absolute else None
                if r is None:
                    fix = (FK_LDDW, v, column)
                    continue
                val = r.c
                if not -(1 << 63) <= val < (1 << 64):
                    raise self.error("immediate out of range (64 bits)", column)
                val &= (1 << 64) - 1
                imm = val & 0xFFFFFFFF
                imm_hi = val >> 32
            elif role == "target":
                assert isinstance(v, Value)
                if v.absolute:
                    t = v.c
                    if op.width == 32 and op.kind is Kind.JA:
                        imm = self._imm32(v, column)
                    else:
                        if not -0x8000 <= t <= 0x7FFF:
                            raise self.error(
                                "operand is not an identifier or 16-bit signed integer", column
                            )
                        off = t
                else:
                    kind = FK_JUMP32 if (op.width == 32 and op.kind is Kind.JA) else FK_JUMP16
                    fix = (kind, v, column)
            elif role == "as_dst":
                as_dst = self._const(v, column)
            elif role == "as_src":
                as_src = self._const(v, column)
            elif role == "pseudo":
                pass  # chose the row
            elif role == "imm_lo":
                imm = self._imm32(v, column)
        if op.kind is Kind.ADDR_SPACE_CAST:
            imm = ((as_dst & 0xFFFF) << 16) | (as_src & 0xFFFF)
        if op.off is not None:
            off = op.off
        if op.imm is not None:
            imm = op.imm
        if op.src is not None:
            src = op.src
        regs = pack_regs(dst, src, self.big_endian)
        sec = self.b.current
        offset = len(sec.data)
        imm_s = imm - (1 << 32) if imm & 0x80000000 else imm & 0xFFFFFFFF
        sec.data += self._insn.pack(op.opcode, regs, off, imm_s)
        if op.kind is Kind.LDDW:
            hi = imm_hi - (1 << 32) if imm_hi & 0x80000000 else imm_hi
            sec.data += struct.pack(">i" if self.big_endian else "<i", 0)
            sec.data += struct.pack(">i" if self.big_endian else "<i", hi)
        if fix is not None:
            kind, value, column = fix
            self.b.fixup(kind, offset, value, 0, self.here(column))

    def _imm32(self, v: object, column: int) -> int:
        val = self._const(v, column)
        if not -(1 << 31) <= val < (1 << 32):
            raise self.error(f"immediate {val} out of range (32 bits)", column)
        return val & 0xFFFFFFFF


def assemble_llvm(text: str, filename: str = "<input>", *, big_endian: bool = False) -> bytes:
    """Assemble LLVM-syntax BPF assembly into an ELF relocatable object."""
    asm = Assembler(filename, big_endian)
    # The assembly allocates about one object per line, nearly all alive until the end:
    # generational collections during the run would walk them again and again and find
    # nothing, so the collector pauses; release() then breaks the few reference cycles
    # so that reference counting frees everything at once, without a full collection.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return asm.run(text)
    except AsmError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, struct.error) as e:
        # A bug of ours, not of the input: still an AsmError at the line being read.
        raise asm.error(
            f"internal assembler error ({type(e).__name__}: {e}); please report this bug"
        ) from e
    finally:
        asm.release()
        if collecting:
            gc.enable()
