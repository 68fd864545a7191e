"""The verifier's state in its log notation, per instruction, for explain and for reading
explain side by side with a kernel verifier log (``log_level`` 2):
``; R1=ctx() R2=pkt(r=14) R6=scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0;
0xff)) R10=fp0 fp-8=0000????``.

After each instruction the kernel prints the registers the instruction read or wrote
("scratched") and the stack slots it touched, as they are after it (after a conditional
jump: on the fall-through edge).  This module prints bpfkit's verifier's states
(:mod:`bpfkit.explain.states`) the same way; they are joined over every path the verifier
walked to the instruction, where the kernel prints one line per path.
"""

from __future__ import annotations

from bpfkit.isa.insn import Insn
from bpfkit.isa.table import Kind, Op
from bpfkit.verify.static import Reg, Slot
from bpfkit.verify.trace import Seen, Value, scratched


def notation(v: Value) -> str:
    """A register as the verifier writes it: ``17``, ``0xa74737572206d6f``, ``fp-32``,
    ``scalar(smin=0,...)``, ``ctx()``, ``map_value_or_null(id=1,map=m,ks=4,vs=8)``;
    ``?`` for uninitialized; ``scalar|ctx()`` for different kinds on different paths."""
    return v.text()


def slot_notation(s: Slot | None) -> str:
    """An 8-byte stack slot: a spilled register, or one mark per byte from the highest
    address down (``?`` never written, ``0`` a known zero, ``m`` anything else)."""
    if s is None:
        return "????????"
    if isinstance(s, Reg):
        return s.text()
    return s[::-1]


def registers(op: Op | None, insn: Insn, after: Seen | None) -> tuple[tuple[str, str], ...]:
    """``(register, state)`` of the registers ``insn`` touched, after it."""
    if op is None or after is None or op.kind in (Kind.EXIT, Kind.JA, Kind.MAY_GOTO):
        return ()
    return tuple(
        (f"R{r}", notation(v)) for r in scratched(op, insn) if (v := after.reg(r)) is not None
    )


def state_line(op: Op | None, insn: Insn, before: Seen | None, after: Seen | None) -> str:
    """The registers and stack slots ``insn`` touched, after it, in verifier notation
    (empty where the verifier prints nothing or did not get past the instruction)."""
    if op is None or before is None or after is None:
        return ""
    parts = [f"{r}={v}" for r, v in registers(op, insn, after)]
    if not parts:
        return ""
    mem: Value | None = None
    if op.kind in (Kind.STORE_IMM, Kind.STORE_REG, Kind.STORE_REL, Kind.ATOMIC):
        mem = before.reg(insn.dst)
    elif op.kind in (Kind.LOAD, Kind.LOAD_SX, Kind.LOAD_ACQ):
        mem = before.reg(insn.src)
    fp = before.reg(10)
    frame = fp.frame if isinstance(fp, Reg) and fp.t == "fp" else -1  # the running function's
    if isinstance(mem, Reg) and mem.t == "fp" and not mem.s.mask and mem.frame == frame:
        at = mem.off + insn.off
        for slot in sorted({(at // 8) * 8, ((at + op.size - 1) // 8) * 8}):
            parts.append(f"fp{slot}={slot_notation(after.stack.get(slot))}")
    return " ".join(parts)
