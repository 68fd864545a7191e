"""Tracked state in the kernel verifier's log notation, for reading explain side by side
with a verifier log (``log_level`` 2): ``; R1=fp-32 R10=fp0 fp-24=0xa74737572206d6f``.

After each instruction the verifier prints the registers the instruction read or wrote
("scratched") and the stack slots it touched.  This module prints bpfkit's abstract values
the same way.  It is an approximation of the notation, not of the verifier: bpfkit tracks
constants and pointer bases, not ranges, so an unknown scalar is always ``scalar()``.
"""

from __future__ import annotations

from bpfkit.explain.values import State, Value
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import Kind, Op

_PTR_KIND = {
    "ctx": "ctx",
    "map": "map_ptr",
    "map value": "map_value",
    "data": "map_value",
    "packet": "pkt",
    "packet end": "pkt_end",
    "packet meta": "pkt_meta",
    "ringbuf sample": "mem",
    "func": "func",
}


def notation(v: Value) -> str:
    """A value as the verifier writes it: ``17``, ``0xa74737572206d6f``, ``fp-32``,
    ``scalar()``, ``ctx()``, ``map_value_or_null()``; ``?`` for uninitialized."""
    if v.kind == "uninit":
        return "?"
    if v.kind == "scalar":
        s = v.signed
        if s is None or v.const is None:
            return "scalar()"
        return str(s) if -(2**31) <= s < 2**31 else f"{v.const:#x}"
    if v.base == "stack":
        if v.const is None:
            return "fp(var_off)"
        return f"fp{v.const:+d}" if v.const else "fp0"
    kind = _PTR_KIND.get(v.base, "ptr") + ("_or_null" if v.maybe_null else "")
    inner = "var_off" if v.const is None else (f"off={v.const}" if v.const else "")
    return f"{kind}({inner})"


def _slot(state: State, slot: int) -> str:
    """An 8-byte stack slot: a spilled value, or one character per byte from the highest
    address down (``?`` never written, ``0`` a known zero, ``m`` anything else)."""
    if slot in state.spills:
        return notation(state.spills[slot])
    raw = state.stack_bytes(slot, 8)
    if raw is not None:
        return notation(Value.scalar(int.from_bytes(raw, "little")))
    # The verifier marks bytes zero (``0``) only when the whole write was a zero; bpfkit
    # keeps bytes, not writes, so a slot's written bytes are ``0`` only if all are zero.
    written = [state.stack[off] for off in range(slot, slot + 8) if off in state.stack]
    mark = "0" if written and all(b == 0 for b in written) else "m"
    return "".join("?" if off not in state.stack else mark for off in range(slot + 7, slot - 1, -1))


def _scratched(op: Op, insn: Insn) -> list[int]:
    regs = set()
    if op.kind is Kind.CALL or op.kind is Kind.CALLX or op.kind in (Kind.LD_ABS, Kind.LD_IND):
        regs.add(0)
    if op.kind in (Kind.LD_ABS, Kind.LD_IND):
        regs.add(6)  # legacy packet loads read the skb from r6
    if op.key == "cmpxchg":
        regs.add(0)
    if "dst" in op.uses:
        regs.add(insn.dst)
    if "src" in op.uses and op.kind is not Kind.LDDW:
        regs.add(insn.src)
    return sorted(r for r in regs if r <= 10)


def state_line(op: Op | None, insn: Insn, before: State | None, after: State | None) -> str:
    """The registers and stack slots ``insn`` touched, after it, in verifier notation."""
    if op is None or before is None or after is None or op.kind in (Kind.EXIT, Kind.JA):
        return ""
    if op.kind is Kind.MAY_GOTO:
        return ""
    if op.kind is Kind.JCOND:  # the registers compared, as they were
        return " ".join(f"R{r}={notation(before.reg(r))}" for r in _scratched(op, insn))
    parts = [f"R{r}={notation(after.reg(r))}" for r in _scratched(op, insn)]
    mem = None
    if op.kind in (Kind.STORE_IMM, Kind.STORE_REG, Kind.STORE_REL, Kind.ATOMIC):
        mem = before.reg(insn.dst)
    elif op.kind in (Kind.LOAD, Kind.LOAD_SX, Kind.LOAD_ACQ):
        mem = before.reg(insn.src)
    if mem is not None and mem.kind == "ptr" and mem.base == "stack" and mem.const is not None:
        at = mem.const + insn.off
        for slot in sorted({(at // 8) * 8, ((at + op.size - 1) // 8) * 8}):
            parts.append(f"fp{slot:+d}={_slot(after, slot)}")
    return " ".join(parts)
