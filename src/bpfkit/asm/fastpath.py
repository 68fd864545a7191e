"""The assembler's fast path: instruction lines by shape, with generated encoders.

A line is split into atoms (names, numbers) and the separators between them; the
separators plus each atom's kind (register class, keyword, number, symbol) make its
*shape*.  The first line of a shape goes through the full tokenizer
(:func:`bpfkit.asm.llvm_syntax.tokenize`); if every operand came from one atom, a
:class:`Plan` records which atom feeds which operand, and — when the operands are
registers and numbers only — a small encoder function is generated for that row of the
ISA table (the way ``collections.namedtuple`` generates code), which packs the 8 or 16
bytes directly.  Any doubt (a value out of range, a repeated register that differs) makes
the encoder give up, and the caller takes the full path, which reports the error.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bpfkit.asm.builder import FK_CALL, FK_JUMP16, FK_JUMP32, FK_LDDW
from bpfkit.asm.expr import parse_int
from bpfkit.asm.llvm_syntax import KEYWORDS, PATTERNS, Pattern
from bpfkit.isa.insn import pack_regs
from bpfkit.isa.table import Kind

ATOMS = re.compile(r"([A-Za-z_.$][\w.$]*|\d\w*)")
DIGITS = frozenset("0123456789")
REG_NUM = {f"{c}{n}": n for c in "rw" for n in range(11)}


class _Kinds(dict[str, str]):
    """Atom -> kind: ``R``/``W`` registers, keywords as themselves, ``N`` numbers, ``S`` symbols.

    Unknown atoms are classified once and remembered, so that lookups stay in C
    (``map(KINDS.__getitem__, atoms)``).
    """

    def __missing__(self, atom: str) -> str:
        kind = "N" if atom[0] in DIGITS else "S"
        if len(self) > 500_000:  # a long-lived process: forget, keep the fixed names
            self.clear()
            self.update(_FIXED)
        self[atom] = kind
        return kind


_FIXED = {name: name[0].upper() for name in REG_NUM} | {k: k for k in KEYWORDS}
KINDS = _Kinds(_FIXED)

REG, NUM, NEG, SYM = 0, 1, 2, 3  # how an operand is read from its atom


class GiveUp(Exception):
    """The generated encoder cannot decide; the full path will (and report any error)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """How a shape's operands come from its atoms; ``encode`` when no symbol is involved."""

    key: tuple[str, ...]
    steps: tuple[tuple[int, int], ...]  # (atom index, REG/NUM/NEG/SYM) per operand
    encode: Callable[[list[str]], bytes] | None  # takes the parts of shape(), not the atoms
    fixups: tuple[tuple[str, int], ...] = ()  # (fixup kind, index in parts) of symbol operands


def shape(text: str) -> tuple[tuple[tuple[str, ...], tuple[str, ...]], list[str]]:
    """``((separators, atom kinds), parts)`` of an instruction line."""
    parts = ATOMS.split(text)
    return (tuple(parts[0::2]), tuple(map(KINDS.__getitem__, parts[1::2]))), parts


def derive(
    key: tuple[str, ...], vals: list[Any], parts: list[str], big_endian: bool
) -> Plan | None:
    """A plan for the shape of ``parts`` given what the full tokenizer found, or None."""
    atoms = parts[1::2]
    steps: list[tuple[int, int]] = []
    i = 0
    for v in vals:
        while i < len(atoms) and atoms[i] in KEYWORDS:
            i += 1
        if i >= len(atoms):
            return None
        atom = atoms[i]
        before = parts[2 * i].rstrip()
        after = parts[2 * i + 2].lstrip()
        if after[:1] and after[0] in "+-*/%<>&|^~!" and not (isinstance(v, int) or atom in REG_NUM):
            if not after.startswith(("=", ">=", "<=")):
                return None  # "1+2": an expression of several atoms
        if isinstance(v, int):
            if REG_NUM.get(atom) != v:
                return None
            steps.append((i, REG))
        elif v.a is None and v.b is None and atom[0] in DIGITS:
            n = parse_int(atom)
            if v.c == n and not before.endswith(("-", "~", "!")):
                steps.append((i, NUM))
            elif v.c == -n and n and before.endswith("-") and not before.endswith("--"):
                steps.append((i, NEG))
            else:
                return None
        elif v.a is not None and v.b is None and v.c == 0 and v.a.name == atom:
            if before.endswith(("-", "~", "!", "*", "/", "%", "&", "|", "^")):
                return None
            steps.append((i, SYM))
        else:
            return None
        i += 1
    if any(a not in KEYWORDS for a in atoms[i:]):
        return None
    pats = PATTERNS.get(key)
    if not pats:
        return Plan(key, tuple(steps), None)
    compiled = _compile(pats, tuple(steps), big_endian)
    if compiled is None:
        return Plan(key, tuple(steps), None)
    return Plan(key, tuple(steps), compiled[0], compiled[1])


def _compile(
    pats: list[Pattern], steps: tuple[tuple[int, int], ...], big_endian: bool
) -> tuple[Callable[[list[str]], bytes], tuple[tuple[str, int], ...]] | None:
    """Generate ``encode(atoms) -> bytes`` for a shape, and the fixups its symbols need."""
    pat = pats[0]
    op = pat.op
    if len(pats) > 1:
        if op.kind is Kind.CALL:
            want = "local" if any(how == SYM for _, how in steps) else "helper"
            pat = next(p for p in pats if p.op.key == want)
            op = pat.op
        else:
            return None  # ld_pseudo: the row depends on a value
    lines = ["def encode(a):", " dst = src = off = imm = hi = 0"]
    seen: set[str] = set()
    fixups: list[tuple[str, int]] = []
    for (index, how), role in zip(steps, pat.roles, strict=True):
        if how == SYM:
            if role == "target":
                wide = op.kind is Kind.JA and op.width == 32
                fixups.append((FK_JUMP32 if wide else FK_JUMP16, 2 * index + 1))
            elif role == "imm" and op.kind is Kind.CALL:
                fixups.append((FK_CALL, 2 * index + 1))
            elif role == "imm64":
                fixups.append((FK_LDDW, 2 * index + 1))
            else:
                return None  # a symbol where a constant is needed: the full path says so
            continue
        if how == REG:
            get = f"R[a[{2 * index + 1}]]"
        else:
            # parse_int inline for plain decimals (the usual case), a call otherwise
            x = f"a[{2 * index + 1}]"
            get = f"{'-' if how == NEG else ''}(int(x) if (x := {x}).isdigit() and x[0] != '0' else P(x))"
        if role[0] == "=":
            lines.append(f" if {get} != {role[1:]}: raise G")
        elif role in ("rd", "wd", "rs", "ws"):
            field = "dst" if role[1] == "d" else "src"
            if field in seen:
                lines.append(f" if {get} != {field}: raise G")
            else:
                lines.append(f" {field} = {get}")
                seen.add(field)
        elif role == "off" or (role == "target" and not (op.kind is Kind.JA and op.width == 32)):
            lines += [f" off = {get}", " if not -32768 <= off <= 32767: raise G"]
        elif role in ("imm", "imm_lo", "target"):
            lines += [f" imm = {get}", " if not -2147483648 <= imm <= 4294967295: raise G"]
        elif role == "imm64":
            lines += [
                f" v = {get}",
                " if not -9223372036854775808 <= v <= 18446744073709551615: raise G",
                " v &= 0xFFFFFFFFFFFFFFFF",
                " imm, hi = v & 0xFFFFFFFF, v >> 32",
            ]
        else:
            return None  # addr_space_cast and other rare forms take the full path
    if op.off is not None:
        lines.append(f" off = {op.off}")
    if op.imm is not None:
        lines.append(f" imm = {op.imm}")
    if op.src is not None:
        lines.append(f" src = {op.src}")
    regs = f"K(dst, src, {big_endian})"  # isa.insn.pack_regs
    lines.append(" imm &= 0xFFFFFFFF")
    lines.append(" imm -= (imm & 0x80000000) << 1")
    if op.kind is Kind.LDDW:
        lines.append(" hi -= (hi & 0x80000000) << 1")
        lines.append(f" return L({op.opcode}, {regs}, off, imm, 0, hi)")
    else:
        lines.append(f" return S({op.opcode}, {regs}, off, imm)")
    e = ">" if big_endian else "<"
    env: dict[str, Any] = {
        "R": REG_NUM,
        "P": parse_int,
        "G": GiveUp,
        "K": pack_regs,
        "S": struct.Struct(e + "BBhi").pack,
        "L": struct.Struct(e + "BBhiii").pack,
    }
    exec("\n".join(lines), env)  # noqa: S102 - code generated from the ISA table above
    fn: Callable[[list[str]], bytes] = env.pop("encode")  # no function <-> globals cycle
    return fn, tuple(fixups)
