"""What each instruction does, as Python expressions keyed by the ISA table's semantics keys.

The interpreter (:mod:`bpfkit.vm.interp`) turns every instruction into a small closure once
per program.  Closures of the hot kinds (ALU, conditional jumps) are made by *factories*
generated from the expressions below, so each closure does only its own arithmetic:
no table lookups and no helper calls on the hot path.

Values are unsigned 64-bit integers.  ``A`` is the destination's value and ``B`` the
operand's (already truncated to 32 bits for 32-bit forms, already sign-extended for 64-bit
immediates); the results follow the kernel (kernel/bpf/core.c and the verifier's fixups):

- 32-bit results are zero-extended; shifts are masked to 5 or 6 bits;
- ``div`` by zero gives 0, ``mod`` by zero leaves dst (for 32-bit: its low half);
- ``sdiv``/``smod`` truncate toward zero; ``INT_MIN / -1`` wraps to ``INT_MIN`` and
  ``INT_MIN % -1`` is 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

M32 = 0xFFFF_FFFF
M64 = 0xFFFF_FFFF_FFFF_FFFF


def sx32(v: int) -> int:
    """``v``'s low 32 bits as a signed number."""
    v &= M32
    return v - (1 << 32) if v >> 31 else v


def sx64(v: int) -> int:
    """``v``'s low 64 bits as a signed number."""
    v &= M64
    return v - (1 << 64) if v >> 63 else v


def sdiv(a: int, b: int) -> int:
    """Signed division truncating toward zero (``b`` != 0)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def smod(a: int, b: int) -> int:
    """Signed remainder with the sign of the dividend (``b`` != 0)."""
    r = abs(a) % abs(b)
    return -r if a < 0 else r


# Result of `A op= B`, per semantics key and width.
ALU: dict[tuple[str, int], str] = {
    ("add", 64): "(A + B) & 0xFFFFFFFFFFFFFFFF",
    ("sub", 64): "(A - B) & 0xFFFFFFFFFFFFFFFF",
    ("mul", 64): "(A * B) & 0xFFFFFFFFFFFFFFFF",
    ("div", 64): "A // B if B else 0",
    ("mod", 64): "A % B if B else A",
    ("or", 64): "A | B",
    ("and", 64): "A & B",
    ("xor", 64): "A ^ B",
    ("lsh", 64): "(A << (B & 63)) & 0xFFFFFFFFFFFFFFFF",
    ("rsh", 64): "A >> (B & 63)",
    ("arsh", 64): "(sx64(A) >> (B & 63)) & 0xFFFFFFFFFFFFFFFF",
    ("mov", 64): "B",
    ("sdiv", 64): "sdiv(sx64(A), sx64(B)) & 0xFFFFFFFFFFFFFFFF if B else 0",
    ("smod", 64): "smod(sx64(A), sx64(B)) & 0xFFFFFFFFFFFFFFFF if B else A",
    ("add", 32): "(A + B) & 0xFFFFFFFF",
    ("sub", 32): "(A - B) & 0xFFFFFFFF",
    ("mul", 32): "(A * B) & 0xFFFFFFFF",
    ("div", 32): "A // B if B else 0",
    ("mod", 32): "A % B if B else A",
    ("or", 32): "A | B",
    ("and", 32): "A & B",
    ("xor", 32): "A ^ B",
    ("lsh", 32): "(A << (B & 31)) & 0xFFFFFFFF",
    ("rsh", 32): "A >> (B & 31)",
    ("arsh", 32): "(sx32(A) >> (B & 31)) & 0xFFFFFFFF",
    ("mov", 32): "B",
    ("sdiv", 32): "sdiv(sx32(A), sx32(B)) & 0xFFFFFFFF if B else 0",
    ("smod", 32): "smod(sx32(A), sx32(B)) & 0xFFFFFFFF if B else A",
}

# Condition of a conditional jump, per semantics key; S(x) is the signed view.
JUMP: dict[str, str] = {
    "eq": "A == B",
    "ne": "A != B",
    "gt": "A > B",
    "ge": "A >= B",
    "lt": "A < B",
    "le": "A <= B",
    "set": "A & B",
    "sgt": "S(A) > S(B)",
    "sge": "S(A) >= S(B)",
    "slt": "S(A) < S(B)",
    "sle": "S(A) <= S(B)",
}

# Atomic read-modify-write operations on (old, src), without the final mask.
ATOMIC: dict[str, Callable[[int, int], int]] = {
    "add": lambda a, b: a + b,
    "or": lambda a, b: a | b,
    "and": lambda a, b: a & b,
    "xor": lambda a, b: a ^ b,
}

_NAMESPACE: dict[str, Any] = {"sx32": sx32, "sx64": sx64, "sdiv": sdiv, "smod": smod}
_CACHE: dict[tuple[str, ...], Callable[..., Callable[[], int]]] = {}


def _factory(key: tuple[str, ...], source: str) -> Callable[..., Callable[[], int]]:
    made = _CACHE.get(key)
    if made is None:
        ns = dict(_NAMESPACE)
        exec(compile(source, f"<bpfkit.vm {'/'.join(key)}>", "exec"), ns)
        made = _CACHE[key] = ns["make"]
    return made


def alu_factory(key: str, width: int, source: str) -> Callable[..., Callable[[], int]]:
    """A factory ``make(R, d, s, b, nxt)`` of closures doing one ALU instruction.

    ``source`` is ``"imm"`` (operand ``b``, prepared by the caller) or ``"reg"``
    (operand ``R[s]``).  The closure returns ``nxt``, the next pc.
    """
    a = "R[d]" if width == 64 else "(R[d] & 0xFFFFFFFF)"
    if source == "imm":
        b = "b"
    else:
        b = "R[s]" if width == 64 else "(R[s] & 0xFFFFFFFF)"
    expr = ALU[(key, width)]
    if key == "mov":
        body = f"R[d] = {b}"
    else:
        # Hex literals here are all F's, so "A" and "B" only ever name the operands.
        if expr.count("A") == 1 and expr.count("B") == 1:
            body = f"R[d] = {expr.replace('A', a).replace('B', b)}"
        else:
            body = f"A = {a}\n        B = {b}\n        R[d] = {expr}"
    src = f"def make(R, d, s, b, nxt):\n    def f():\n        {body}\n        return nxt\n    return f\n"
    return _factory(("alu", key, str(width), source), src)


def jump_factory(key: str, width: int, source: str) -> Callable[..., Callable[[], int]]:
    """A factory ``make(R, d, s, b, nxt, tgt)`` of closures doing one conditional jump.

    For immediates, ``b`` must already be in the compared form: unsigned (64-bit value
    of the sign-extended immediate, or its low 32 bits) for unsigned conditions, signed
    for signed ones.
    """
    signed = key.startswith("s") and key != "set"
    mask = "" if width == 64 else " & 0xFFFFFFFF"
    a = f"R[d]{mask}"
    b = "b" if source == "imm" else f"R[s]{mask}"
    s = "sx64" if width == 64 else "sx32"
    cond = JUMP[key]
    if signed:
        cond = cond.replace("S(A)", f"{s}({a})")
        cond = cond.replace("S(B)", "b" if source == "imm" else f"{s}(R[s])")
    else:
        cond = cond.replace("A", f"({a})" if mask else a).replace("B", f"({b})" if mask else b)
    src = (
        "def make(R, d, s, b, nxt, tgt):\n    def f():\n"
        f"        if {cond}:\n            return tgt\n        return nxt\n    return f\n"
    )
    return _factory(("jmp", key, str(width), source), src)


def alu_value(key: str, width: int, a: int, b: int) -> int:
    """The result of one ALU operation on plain values (for tests and constant folding)."""
    mk = alu_factory(key, width, "imm")
    regs = [a & M64, 0]
    f = mk(regs, 0, 1, (b & M64) if width == 64 else (b & M32), 0)
    f()
    return regs[0]
