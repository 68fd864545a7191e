"""Assembler expressions: integers, symbols, ``.``, operators, as llvm-mc evaluates them.

An expression evaluates to a :class:`Value` ``A - B + C`` (LLVM's ``MCValue``): two
optional symbols and a constant.  Symbols are resolved later (by the object builder);
only ``+``/``-`` may involve symbols, the other operators need constants.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

_TOKEN = re.compile(
    r"\s*(?:(?P<num>0[xX][0-9a-fA-F]+|0[bB][01]+|\d+)(?![\w.$])"
    r"|(?P<chr>'(?:\\.|[^'\\])')"
    r"|(?P<id>[A-Za-z_.$][\w.$]*|\"[^\"]*\")"
    r"|(?P<op><<|>>|==|!=|<=|>=|&&|\|\||[-+*/%&|^~!()<>]))"
)

# GNU-compatible precedence (llvm-mc, non-Darwin): larger binds tighter.
_BINARY: dict[str, int] = {
    "*": 6,
    "/": 6,
    "%": 6,
    "<<": 6,
    ">>": 6,
    "|": 5,
    "^": 5,
    "&": 5,
    "+": 4,
    "-": 4,
    "==": 3,
    "!=": 3,
    "<": 3,
    "<=": 3,
    ">": 3,
    ">=": 3,
    "&&": 2,
    "||": 1,
}


class Value(NamedTuple):
    """``a - b + c``: ``a``/``b`` are symbol objects of the builder (or None).

    A named tuple: the assembler makes one per symbolic operand, so it must be cheap.
    """

    a: Any = None
    b: Any = None
    c: int = 0

    @property
    def absolute(self) -> bool:
        """True when the value has no symbol."""
        return self.a is None and self.b is None


class ExprError(Exception):
    """A malformed expression; ``pos`` is the offset in the text."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


def parse_int(text: str) -> int:
    """An integer literal: decimal, ``0x`` hex, ``0b`` binary, leading-``0`` octal."""
    if text.isdigit() and (text[0] != "0" or len(text) == 1):
        return int(text)
    t = text.lower()
    if t.startswith("0x"):
        return int(t, 16)
    if t.startswith("0b"):
        return int(t[2:], 2)
    if len(t) > 1 and t.startswith("0"):
        return int(t, 8)
    return int(t)


def _char(text: str) -> int:
    body = text[1:-1]
    if body.startswith("\\"):
        esc = {"n": 10, "t": 9, "r": 13, "0": 0, "\\": 92, "'": 39, '"': 34}
        return esc.get(body[1], ord(body[1]))
    return ord(body)


def _apply(op: str, x: Value, y: Value, pos: int) -> Value:
    if op == "+":
        if x.a is not None and y.a is not None:
            raise ExprError("cannot add two symbols", pos)
        if x.b is not None and y.b is not None:
            raise ExprError("expression too complex", pos)
        return Value(x.a or y.a, x.b or y.b, x.c + y.c)
    if op == "-":
        if y.b is not None or (y.a is not None and x.b is not None):
            raise ExprError("expression too complex", pos)
        if y.a is not None and x.a is None:
            raise ExprError("cannot negate a symbol", pos)
        return Value(x.a, y.a if y.a is not None else x.b, x.c - y.c)
    if not (x.absolute and y.absolute):
        raise ExprError(f"operator '{op}' needs constant operands", pos)
    a, b = x.c, y.c
    if op in ("/", "%") and b == 0:
        raise ExprError("division by zero", pos)
    r: int
    if op == "*":
        r = a * b
    elif op == "/":
        r = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
    elif op == "%":
        r = a - b * (abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1))
    elif op == "<<":
        r = a << b
    elif op == ">>":
        r = a >> b
    elif op == "|":
        r = a | b
    elif op == "^":
        r = a ^ b
    elif op == "&":
        r = a & b
    elif op == "&&":
        r = int(bool(a) and bool(b))
    elif op == "||":
        r = int(bool(a) or bool(b))
    else:
        r = int(
            {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        )
        r = -r  # llvm-mc: true comparisons are -1
    return Value(None, None, r)


class ExprParser:
    """Parses one expression of ``text`` from a position; ``symbol(name)`` maps names."""

    def __init__(self, symbol: Callable[[str], Any], dot: Callable[[], Any]) -> None:
        self.symbol, self.dot = symbol, dot

    def parse(self, text: str, pos: int = 0) -> tuple[Value, int]:
        """``(value, end)``: the longest expression starting at ``pos``."""
        self.text = text
        v, pos = self._binary(pos, 0)
        return v, pos

    def _peek(self, pos: int) -> tuple[str, str, int, int] | None:
        m = _TOKEN.match(self.text, pos)
        if not m or m.end() == m.start():
            return None
        kind = m.lastgroup or ""
        return kind, m.group(kind), m.start(kind), m.end()

    def _primary(self, pos: int) -> tuple[Value, int]:
        tok = self._peek(pos)
        if tok is None:
            at = len(self.text) - len(self.text[pos:].lstrip())
            raise ExprError("expected an expression", at)
        kind, text, start, end = tok
        if kind == "num":
            try:
                return Value(None, None, parse_int(text)), end
            except ValueError:
                raise ExprError(f"invalid number '{text}'", start) from None
        if kind == "chr":
            return Value(None, None, _char(text)), end
        if kind == "id":
            if text == ".":
                return Value(self.dot(), None, 0), end
            sym = self.symbol(text.strip('"'))
            if getattr(sym, "absolute", False) and getattr(sym, "variable", None) is None:
                return Value(None, None, sym.offset), end  # a constant set earlier (.set/.equ)
            return Value(sym, None, 0), end
        if text == "(":
            v, pos = self._binary(end, 0)
            close = self._peek(pos)
            if close is None or close[1] != ")":
                raise ExprError("expected ')'", pos)
            return v, close[3]
        if text in ("-", "+", "~", "!"):
            v, pos = self._primary(end)
            if text == "+":
                return v, pos
            if not v.absolute:
                if text == "-":
                    raise ExprError("cannot negate a symbol", start)
                raise ExprError(f"operator '{text}' needs a constant", start)
            r = -v.c if text == "-" else (~v.c if text == "~" else int(not v.c))
            return Value(None, None, r), pos
        raise ExprError(f"unexpected '{text}' in expression", start)

    def _binary(self, pos: int, min_prec: int) -> tuple[Value, int]:
        left, pos = self._primary(pos)
        while True:
            tok = self._peek(pos)
            if tok is None or tok[0] != "op" or tok[1] not in _BINARY:
                return left, pos
            prec = _BINARY[tok[1]]
            if prec <= min_prec:
                return left, pos
            right, end = self._binary(tok[3], prec)
            left = _apply(tok[1], left, right, tok[2])
            pos = end
