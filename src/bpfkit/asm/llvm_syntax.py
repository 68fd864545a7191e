"""LLVM's C-like BPF instruction syntax (``r0 = *(u32 *)(r1 + 4)``), matched from the ISA table.

Every row's ``llvm`` template becomes a token pattern: registers (``R``/``W``),
immediates (``I``), memory offsets (``O``) and literal words and punctuation.  A line is
tokenized the way LLVM's BPF parser does it (operators are single characters, commas are
ignored, ``+``/``-`` before a number starts a number, any other operand is an expression)
and its pattern is looked up in a dictionary built once.  Narrow loads, stores and 32-bit
atomics also accept the 64-bit register name for the value register, as llvm-mc does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bpfkit.asm.expr import ExprError, ExprParser, Value
from bpfkit.isa.table import OPS, Kind, Op

_PLACEHOLDER = re.compile(r"\{(\w+)\}|([A-Za-z_][\w]*)|(\S)")
_LEX = re.compile(
    r"\s*(?:(?P<id>[A-Za-z_.$][\w.$]*)|(?P<num>0[xX][0-9a-fA-F]+|0[bB][01]+|\d+|'(?:\\.|[^'\\])')"
    r"|(?P<p>\S))"
)
_BADREG = re.compile(r"[rw]\d+\Z")
_REGS: dict[str, tuple[str, int]] = {}
for _n in range(11):
    _REGS[f"r{_n}"] = ("R", _n)
    _REGS[f"w{_n}"] = ("W", _n)

_ROLE_KIND = {
    "rd": "R",
    "wd": "W",
    "rs": "R",
    "ws": "W",
    "imm": "I",
    "imm64": "I",
    "target": "I",
    "off": "O",
    "as_dst": "I",
    "as_src": "I",
    "pseudo": "I",
    "imm_lo": "I",
}


@dataclass(frozen=True, slots=True)
class Pattern:
    """One way to write a row: the roles of its operand tokens, in order."""

    op: Op
    roles: tuple[str, ...]  # per operand token: "rd", "imm", ... or "=N" for a fixed register


def _template_tokens(template: str) -> tuple[list[str], list[str]]:
    key: list[str] = []
    roles: list[str] = []
    for m in _PLACEHOLDER.finditer(template):
        ph, word, punct = m.groups()
        if ph:
            key.append(_ROLE_KIND[ph])
            roles.append(ph)
        elif word:
            if word in _REGS:
                kind, num = _REGS[word]
                key.append(kind)
                roles.append(f"={num}")
            else:
                key.append(word)
        elif punct != ",":
            key.append(punct)
    return key, roles


def _variants(op: Op) -> list[str]:
    """The row's template plus the 64-bit-register spelling of a narrow value register."""
    out = [op.llvm]
    narrow = op.kind in (Kind.LOAD, Kind.STORE_REG) or (
        op.kind is Kind.ATOMIC and op.width == 32 and op.key in ("add", "or", "and", "xor")
    )
    if narrow:
        alt = op.llvm.replace("{wd}", "{rd}").replace("{ws}", "{rs}")
        if alt != op.llvm:
            out.append(alt)
    return out


def _build() -> tuple[dict[tuple[str, ...], list[Pattern]], frozenset[str], frozenset[str]]:
    table: dict[tuple[str, ...], list[Pattern]] = {}
    words: set[str] = set()
    starts: set[str] = set()
    for op in OPS:
        for template in _variants(op):
            if any(ph not in _ROLE_KIND for ph in re.findall(r"\{(\w+)\}", template)):
                continue  # a placeholder this assembler does not know: the row is not written
            key, roles = _template_tokens(template)
            table.setdefault(tuple(key), []).append(Pattern(op, tuple(roles)))
            words.update(k for k in key if k[0].isalpha() and k not in ("R", "W", "I", "O"))
            if key[0] not in ("R", "W"):
                starts.add(key[0])
    return table, frozenset(words), frozenset(starts)


PATTERNS, KEYWORDS, STARTS = _build()


class SyntaxProblem(Exception):
    """A line that is not an instruction; ``pos`` is the 0-based offset of the problem."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


def tokenize(
    text: str, symbol: Callable[[str], Any], dot: Callable[[], Any]
) -> tuple[tuple[str, ...], list[Any], list[int]]:
    """``(key, operand values, operand positions)`` of an instruction line."""
    key: list[str] = []
    vals: list[Any] = []
    where: list[int] = []
    parser = ExprParser(symbol, dot)
    pos, n = 0, len(text)
    while pos < n:
        m = _LEX.match(text, pos)
        if m is None or m.end() == pos:
            break
        kind = m.lastgroup
        start = m.start(kind) if kind else pos
        tok = m.group(kind) if kind else ""
        expr = False
        if kind == "id":
            reg = _REGS.get(tok)
            if reg is not None:
                key.append(reg[0])
                vals.append(reg[1])
                where.append(start)
                pos = m.end()
                continue
            if _BADREG.match(tok):
                raise SyntaxProblem(f"bad register '{tok}' (r0..r10, w0..w10)", start)
            if tok in KEYWORDS:
                key.append(tok)
                pos = m.end()
                continue
            if not key:
                raise SyntaxProblem(f"unknown instruction '{tok}'", start)
            expr = True
        elif kind == "num":
            expr = True
        elif tok == ",":
            pos = m.end()
            continue
        elif tok in "+-":
            nxt = _LEX.match(text, m.end())
            if nxt is not None and nxt.lastgroup == "num":
                expr = True
            elif key and key[-1] in ("R", "W") and nxt is not None and nxt.lastgroup == "id":
                expr = True  # (r1 + sym): an offset that is not a number, refused later
        if not expr:
            if not key and tok not in STARTS:
                raise SyntaxProblem(f"unknown instruction '{tok}'", start)
            key.append(tok)
            pos = m.end()
            continue
        try:
            value, end = parser.parse(text, start)
        except ExprError as e:
            raise SyntaxProblem(str(e), e.pos) from None
        offset = tok in "+-" and bool(key) and key[-1] in ("R", "W")
        key.append("O" if offset else "I")
        vals.append(value)
        where.append(start)
        pos = end
    return tuple(key), vals, where


def lookup(key: tuple[str, ...]) -> list[Pattern] | None:
    """The patterns a token key matches, or None."""
    return PATTERNS.get(key)


def is_register_value(v: Any) -> bool:
    """True for a register operand (an int), False for an expression."""
    return isinstance(v, int)


__all__ = ["KEYWORDS", "PATTERNS", "Pattern", "SyntaxProblem", "Value", "lookup", "tokenize"]
