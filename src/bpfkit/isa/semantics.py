"""What each instruction computes: the one definition of eBPF's value semantics.

Every value-computing row of the ISA table (:mod:`bpfkit.isa.table`: kinds ALU, NEG,
MOVSX, ENDIAN, JCOND and the atomic read-modify-write forms) has an *expression*: a small
tree over two operands, ``"A"`` (dst's value) and ``"B"`` (src's value or the immediate),
at a width ``W`` of 32 or 64 bits.  Backends consume the same trees:

- :func:`evaluate` computes on Python integers (explain's value tracker, the verifier,
  constant folding, tests);
- :func:`to_python` renders Python source (the interpreter compiles it once per program);
- the compiling engine (:mod:`bpfkit.vm.jit`) walks the trees into LLVM IR.

The API, in use order::

    op = lookup(insn)
    w = width(op)                    # 32 or 64: the width A, B and the result have
    a, b = operands(op, insn, R)     # A and B as W-bit unsigned values (R: registers)
    r = compute(op, a, b)            # dst's new value (64-bit, zero-extended); JCOND: 0/1
    e = expr(op)                     # the tree itself, for a backend
    count(e, "A")                    # how often it reads A (0: dst is only written)

Operand rules (kernel/bpf/core.c and RFC 9669): ``A`` is dst truncated to W bits; ``B`` is
src truncated to W bits, or the immediate as W bits (sign-extended first: ``imm & mask``).
ENDIAN rows work at W = 64 on the whole register.  Results are W-bit and zero-extended into
the 64-bit register.

Nodes (``x``, ``y`` are sub-trees; ints are W-bit unsigned constants)::

    add sub mul and or xor          (op, x, y)   wrapping at W bits
    shl lshr ashr                   (op, x, y)   y < W (the trees mask shift counts)
    udiv urem                       (op, x, y)   unsigned; y != 0 wherever the result is used
    sdiv srem                       (op, x, y)   signed, truncating toward zero, the
                                                 remainder has the dividend's sign;
                                                 INT_MIN / -1 = INT_MIN, INT_MIN % -1 = 0;
                                                 y != 0 wherever the result is used
    neg                             (neg, x)
    sext                            (sext, x, bits)   x's low ``bits`` sign-extended to W
    trunc                           (trunc, x, bits)  x's low ``bits``, zero-extended
    bswap                           (bswap, x, bits)  the low ``bits`` byte-reversed
    eq ne ult ule ugt uge slt sle sgt sge   (op, x, y)   a condition (0 or 1)
    select                          (select, c, x, y) x if c else y

``select`` guards divisions (``div``: ``select(B == 0, 0, udiv(A, B))``); a backend whose
division traps eagerly (LLVM) must keep a guarded division from trapping when the guard
says its result is unused.  The kernel's rules these trees encode: division by zero gives
0, modulo by zero leaves dst (its low half for 32-bit), shift counts are masked to 5 or 6
bits, signed division truncates toward zero and wraps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bpfkit.isa.insn import Insn
from bpfkit.isa.table import Kind, Op

M32 = 0xFFFF_FFFF
M64 = 0xFFFF_FFFF_FFFF_FFFF

Expr = int | str | tuple[Any, ...]

__all__ = [
    "ALU",
    "ATOMIC",
    "JUMP",
    "M32",
    "M64",
    "PY_NAMESPACE",
    "Expr",
    "bswap",
    "compute",
    "count",
    "evaluate",
    "expr",
    "mask",
    "operands",
    "sdiv",
    "sext",
    "smod",
    "sx32",
    "sx64",
    "to_python",
    "width",
]


# --- plain-integer rules -----------------------------------------------------------------


def mask(w: int) -> int:
    """All ones of ``w`` bits."""
    return (1 << w) - 1


def sext(v: int, bits: int) -> int:
    """``v``'s low ``bits`` bits as a signed number."""
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def sx32(v: int) -> int:
    """``v``'s low 32 bits as a signed number."""
    v &= M32
    return v - (1 << 32) if v >> 31 else v


def sx64(v: int) -> int:
    """``v``'s low 64 bits as a signed number."""
    v &= M64
    return v - (1 << 64) if v >> 63 else v


def sdiv(a: int, b: int) -> int:
    """Signed division truncating toward zero (``b`` != 0), on signed numbers."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def smod(a: int, b: int) -> int:
    """Signed remainder with the sign of the dividend (``b`` != 0), on signed numbers."""
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def bswap(v: int, bits: int) -> int:
    """The low ``bits`` of ``v`` with their bytes reversed."""
    n = bits // 8
    return int.from_bytes((v & ((1 << bits) - 1)).to_bytes(n, "little"), "big")


# --- the trees ---------------------------------------------------------------------------

_A, _B = "A", "B"


def _alu_tree(key: str, w: int) -> Expr:
    sh = ("and", _B, w - 1)
    trees: dict[str, Expr] = {
        "add": ("add", _A, _B),
        "sub": ("sub", _A, _B),
        "mul": ("mul", _A, _B),
        "div": ("select", ("eq", _B, 0), 0, ("udiv", _A, _B)),
        "mod": ("select", ("eq", _B, 0), _A, ("urem", _A, _B)),
        "sdiv": ("select", ("eq", _B, 0), 0, ("sdiv", _A, _B)),
        "smod": ("select", ("eq", _B, 0), _A, ("srem", _A, _B)),
        "or": ("or", _A, _B),
        "and": ("and", _A, _B),
        "xor": ("xor", _A, _B),
        "lsh": ("shl", _A, sh),
        "rsh": ("lshr", _A, sh),
        "arsh": ("ashr", _A, sh),
        "mov": _B,
    }
    return trees[key]


_ALU_KEYS = "add sub mul div mod sdiv smod or and xor lsh rsh arsh mov".split()

# ``A op= B`` per (semantics key, width).
ALU: dict[tuple[str, int], Expr] = {(k, w): _alu_tree(k, w) for k in _ALU_KEYS for w in (32, 64)}

# The condition of a conditional jump, per semantics key (at the row's width).
JUMP: dict[str, Expr] = {
    "eq": ("eq", _A, _B),
    "ne": ("ne", _A, _B),
    "gt": ("ugt", _A, _B),
    "ge": ("uge", _A, _B),
    "lt": ("ult", _A, _B),
    "le": ("ule", _A, _B),
    "set": ("ne", ("and", _A, _B), 0),
    "sgt": ("sgt", _A, _B),
    "sge": ("sge", _A, _B),
    "slt": ("slt", _A, _B),
    "sle": ("sle", _A, _B),
}

# The new memory value of an atomic read-modify-write: A the old value, B src (at the
# access's width; ``fetch_`` forms also return A in src, xchg returns A in src, cmpxchg
# compares with r0 and returns A in r0).
ATOMIC: dict[str, Expr] = {
    "add": ("add", _A, _B),
    "or": ("or", _A, _B),
    "and": ("and", _A, _B),
    "xor": ("xor", _A, _B),
    "xchg": _B,
}


def width(op: Op) -> int:
    """The width (32 or 64) at which ``op``'s expression computes."""
    if op.kind is Kind.ENDIAN:
        return 64
    if op.kind is Kind.ATOMIC:
        return 8 * op.size
    return op.width


def expr(op: Op) -> Expr:
    """The expression of a row (kinds ALU, NEG, MOVSX, ENDIAN, JCOND; ATOMIC read-modify-write).

    Raises ``KeyError`` for rows that compute no value (loads, stores, calls, ...).
    """
    k = op.kind
    if k is Kind.ALU:
        return ALU[(op.key, op.width)]
    if k is Kind.NEG:
        return ("neg", _A)
    if k is Kind.MOVSX:
        assert op.off is not None
        return ("sext", _B, op.off)
    if k is Kind.ENDIAN:
        return ("trunc", _A, op.width) if op.key == "le" else ("bswap", _A, op.width)
    if k is Kind.JCOND:
        return JUMP[op.key]
    if k is Kind.ATOMIC:
        return ATOMIC[op.key.removeprefix("fetch_")]
    raise KeyError(f"{op.mnemonic} computes no value")


def count(e: Expr, leaf: str) -> int:
    """How often operand ``leaf`` (``"A"`` or ``"B"``) appears in ``e`` (0: not read)."""
    if isinstance(e, tuple):
        return sum(count(x, leaf) for x in e[1:])
    return int(e == leaf)


def operands(op: Op, insn: Insn, regs: Sequence[int]) -> tuple[int, int]:
    """``(A, B)`` for ``insn`` with register values ``regs``, as W-bit unsigned values."""
    m = mask(width(op))
    b = regs[insn.src] if op.source == "reg" else insn.imm
    return regs[insn.dst] & m, b & m


def compute(op: Op, a: int, b: int) -> int:
    """``op``'s result on operands ``a`` (dst) and ``b`` (src or immediate), truncated to
    the row's width first; the 64-bit value written to dst (JCOND: 1 if taken)."""
    w = width(op)
    return evaluate(expr(op), w, a & mask(w), b & mask(w))


# --- backend: evaluation -----------------------------------------------------------------

_BINARY: dict[str, Callable[[int, int, int], int]] = {
    "add": lambda x, y, w: (x + y) & mask(w),
    "sub": lambda x, y, w: (x - y) & mask(w),
    "mul": lambda x, y, w: (x * y) & mask(w),
    "and": lambda x, y, w: x & y,
    "or": lambda x, y, w: x | y,
    "xor": lambda x, y, w: x ^ y,
    "shl": lambda x, y, w: (x << y) & mask(w),
    "lshr": lambda x, y, w: x >> y,
    "ashr": lambda x, y, w: (sext(x, w) >> y) & mask(w),
    "udiv": lambda x, y, w: x // y,
    "urem": lambda x, y, w: x % y,
    "sdiv": lambda x, y, w: sdiv(sext(x, w), sext(y, w)) & mask(w),
    "srem": lambda x, y, w: smod(sext(x, w), sext(y, w)) & mask(w),
    "eq": lambda x, y, w: int(x == y),
    "ne": lambda x, y, w: int(x != y),
    "ult": lambda x, y, w: int(x < y),
    "ule": lambda x, y, w: int(x <= y),
    "ugt": lambda x, y, w: int(x > y),
    "uge": lambda x, y, w: int(x >= y),
    "slt": lambda x, y, w: int(sext(x, w) < sext(y, w)),
    "sle": lambda x, y, w: int(sext(x, w) <= sext(y, w)),
    "sgt": lambda x, y, w: int(sext(x, w) > sext(y, w)),
    "sge": lambda x, y, w: int(sext(x, w) >= sext(y, w)),
}


def evaluate(e: Expr, w: int, a: int, b: int) -> int:
    """The value of tree ``e`` at width ``w`` with ``A = a`` and ``B = b`` (W-bit unsigned)."""
    if isinstance(e, int):
        return e & mask(w)
    if isinstance(e, str):
        return a if e == _A else b
    name = e[0]
    if name == "select":
        return evaluate(e[2] if evaluate(e[1], w, a, b) else e[3], w, a, b)
    x = evaluate(e[1], w, a, b)
    if name == "neg":
        return -x & mask(w)
    if name == "sext":
        return sext(x, e[2]) & mask(w)
    if name == "trunc":
        return x & mask(e[2])
    if name == "bswap":
        return bswap(x, e[2])
    return _BINARY[name](x, evaluate(e[2], w, a, b), w)


# --- backend: Python source --------------------------------------------------------------

# Names the source from :func:`to_python` uses; exec it with these in its globals.
PY_NAMESPACE: dict[str, Any] = {
    "sx32": sx32,
    "sx64": sx64,
    "sdiv": sdiv,
    "smod": smod,
    "bswap": bswap,
}

_PY_OP = {"add": "+", "sub": "-", "mul": "*", "and": "&", "or": "|", "xor": "^", "shl": "<<"}
_PY_OP |= {"lshr": ">>", "udiv": "//", "urem": "%"}
_PY_CMP = {"eq": "==", "ne": "!=", "ult": "<", "ule": "<=", "ugt": ">", "uge": ">="}
_PY_CMP |= {"slt": "<", "sle": "<=", "sgt": ">", "sge": ">="}
_WRAPS = frozenset({"add", "sub", "mul", "shl"})  # results that may exceed W bits


def to_python(e: Expr, w: int, a: str | int, b: str | int) -> str:
    """Python source computing tree ``e`` at width ``w``.

    ``a`` and ``b`` are the operands: Python expressions (already W-bit unsigned, e.g.
    ``"r3"`` or ``"(r3 & 0xFFFFFFFF)"``) or known integers, which are folded.  Conditions
    render as Python booleans.  The source may name :data:`PY_NAMESPACE`'s functions.
    """
    if isinstance(a, int) and isinstance(b, int):
        return str(evaluate(e, w, a & mask(w), b & mask(w)))
    return _py(e, w, a, b)


def _lit(v: int) -> str:
    return str(v) if v < 256 else hex(v)


def _known(e: Expr, a: str | int, b: str | int) -> bool:
    """True if ``e`` reads only constants (and operands given as integers)."""
    if isinstance(e, tuple):
        return all(_known(x, a, b) for x in e[1:] if not (e[0] in _BITS and x is e[2]))
    if isinstance(e, str):
        return isinstance(a if e == _A else b, int)
    return True


_BITS = frozenset({"sext", "trunc", "bswap"})  # their second field is a bit count


def _py(e: Expr, w: int, a: str | int, b: str | int) -> str:
    if isinstance(e, tuple) and _known(e, a, b):  # fold what is known
        av = a & mask(w) if isinstance(a, int) else 0
        bv = b & mask(w) if isinstance(b, int) else 0
        v = evaluate(e, w, av, bv)
        return _lit(v) if e[0] not in _PY_CMP else str(bool(v))
    if isinstance(e, int):
        return _lit(e & mask(w))
    if isinstance(e, str):
        leaf = a if e == _A else b
        return _lit(leaf & mask(w)) if isinstance(leaf, int) else leaf
    name = e[0]
    m = hex(mask(w))
    sx = "sx32" if w == 32 else "sx64"
    if name == "select":
        c = _py(e[1], w, a, b)
        return f"({_py(e[2], w, a, b)} if {c} else {_py(e[3], w, a, b)})"
    x = _py(e[1], w, a, b)
    if name == "neg":
        return f"(-{x} & {m})"
    if name == "sext":
        bits = e[2]
        sign = 1 << (bits - 1)
        return f"(((({x}) & {hex(mask(bits))}) ^ {hex(sign)}) - {hex(sign)} & {m})"
    if name == "trunc":
        return f"({x} & {hex(mask(e[2]))})"
    if name == "bswap":
        return f"bswap({x}, {e[2]})"
    y = _py(e[2], w, a, b)
    if name in _PY_CMP:
        if name[0] == "s":
            x, y = _signed(x, w), _signed(y, w)
        return f"({x} {_PY_CMP[name]} {y})"
    if name == "ashr":
        return f"(({sx}({x}) >> {y}) & {m})"
    if name == "sdiv":
        return f"(sdiv({sx}({x}), {sx}({y})) & {m})"
    if name == "srem":
        return f"(smod({sx}({x}), {sx}({y})) & {m})"
    text = f"({x} {_PY_OP[name]} {y})"
    return f"({text} & {m})" if name in _WRAPS else text


def _signed(x: str, w: int) -> str:
    """``x`` (source) as a signed number; literals are folded."""
    try:
        v = int(x, 0)
    except ValueError:
        return f"{'sx32' if w == 32 else 'sx64'}({x})"
    return str(sext(v, w))
