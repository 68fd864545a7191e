"""Abstract values over registers and the stack: what explain says a program does.

A small abstract interpreter for what explain says in words and what bpfkit's verifier
does not track: known bytes (stack strings, read-only data, printk formats, helper
arguments).  Ranges and pointer kinds per instruction come from the verifier itself
(:mod:`bpfkit.explain.states`).  Each register holds a
:class:`Value` -- uninitialized, a scalar (a known 64-bit constant or unknown), or a
pointer with a *base* (``stack``, ``ctx``, ``map``, ``map value``, ``packet``, ...) and an
offset from it (known or not).  The 512-byte stack is tracked byte by byte, so a string
built with 8-byte stores reads back as text in memory order (little-endian: a value's
lowest byte is at the lowest address); pointers spilled to the stack are kept by slot.

Branches: the analysis is a forward data-flow over the control-flow graph.  Every
instruction gets one *in* state, the join of the states of every edge reaching it (a
register keeps its value only if all paths agree; a stack byte only if all paths wrote
the same byte), iterated to a fixed point -- so loops terminate and an explanation is
true on every path.  Branches whose condition is decided by known constants follow the
one edge taken; ``if rX == 0`` on a pointer that may be NULL refines it on both edges.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from bpfkit.isa import semantics
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import Kind, Op, lookup
from bpfkit.uapi.helpers import by_id

STACK_SIZE = 512
FP = 10  # r10, the read-only frame pointer
_M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1


@dataclass(frozen=True, slots=True)
class Value:
    """An abstract register (or spilled stack slot) value."""

    kind: str  # "uninit", "scalar" or "ptr"
    const: int | None = None  # scalar: the value (unsigned 64-bit); ptr: offset from base
    base: str = ""  # ptr: "stack", "ctx", "map", "map value", "packet", "packet end", ...
    region: str = ""  # ptr: which map / data section / helper result
    maybe_null: bool = False

    @staticmethod
    def uninit() -> Value:
        """A register never written (reading it is a verifier error)."""
        return _UNINIT

    @staticmethod
    def scalar(v: int | None = None) -> Value:
        """A number: ``v`` if known (taken modulo 2**64), else unknown."""
        return Value("scalar", None if v is None else v & _M64)

    @staticmethod
    def ptr(base: str, off: int | None = 0, region: str = "", maybe_null: bool = False) -> Value:
        """A pointer ``off`` bytes from the start of ``base`` (``stack``: from fp)."""
        return Value("ptr", off, base, region, maybe_null)

    @property
    def is_const(self) -> bool:
        """True for a scalar of known value."""
        return self.kind == "scalar" and self.const is not None

    @property
    def signed(self) -> int | None:
        """A known scalar as a signed 64-bit number."""
        if not self.is_const:
            return None
        assert self.const is not None
        return self.const - (1 << 64) if self.const >> 63 else self.const

    def describe(self) -> str:
        """Short text: ``17 (0x11)``, ``fp-32``, ``ctx``, ``map value of counts (or NULL)``."""
        if self.kind == "uninit":
            return "uninitialized"
        if self.kind == "scalar":
            if self.const is None:
                return "unknown scalar"
            s = self.signed
            assert s is not None
            return str(s) if -10 <= s <= 9 else f"{s} ({self.const:#x})"
        if self.base == "stack":
            if self.const is None:
                return "fp + unknown offset"
            return f"fp{self.const:+d}" if self.const else "fp"
        if self.base in ("map", "data", "func") and self.region:
            text = f"{self.base} {self.region}" if self.base != "data" else self.region
        else:
            text = self.base + (f" of {self.region}" if self.region else "")
        if self.const is None:
            text += " + unknown offset"
        elif self.const:
            text += f" {'+' if self.const > 0 else '-'} {abs(self.const)}"
        return text + (" (or NULL)" if self.maybe_null else "")


_UNINIT = Value("uninit")


def join(a: Value, b: Value) -> Value:
    """The value that is true of both ``a`` and ``b``."""
    if a == b:
        return a
    if a.kind == "uninit" or b.kind == "uninit":
        return _UNINIT
    if a.kind == b.kind == "ptr" and a.base == b.base and a.region == b.region:
        off = a.const if a.const == b.const else None
        return Value("ptr", off, a.base, a.region, a.maybe_null or b.maybe_null)
    return Value.scalar()


@dataclass(frozen=True)
class State:
    """Registers r0-r10, the stack bytes written (offset from fp -> byte, None if unknown)
    and the values spilled to 8-byte stack slots."""

    regs: tuple[Value, ...]
    stack: Mapping[int, int | None] = field(default_factory=dict)
    spills: Mapping[int, Value] = field(default_factory=dict)

    @staticmethod
    def entry(ctx: Value | None = None) -> State:
        """A program's first state: r1 is the context, r10 the frame pointer."""
        regs = [_UNINIT] * 11
        regs[1] = ctx if ctx is not None else Value.ptr("ctx")
        regs[FP] = Value.ptr("stack", 0)
        return State(tuple(regs))

    def reg(self, n: int) -> Value:
        """Register ``n`` (r0-r10); registers past r10 read as uninitialized."""
        return self.regs[n] if n < len(self.regs) else _UNINIT

    def set(self, **regs: Value) -> State:
        """A copy with some registers changed: ``state.set(r0=v)`` (writes to r10 and
        beyond are dropped)."""
        new = list(self.regs)
        for name, v in regs.items():
            n = int(name[1:])
            if n < FP:  # r10 is read-only and r11-r15 do not exist: the verifier rejects both
                new[n] = v
        return replace(self, regs=tuple(new))

    def stack_bytes(self, off: int, n: int) -> bytes | None:
        """The ``n`` stack bytes at fp+off if all are known."""
        out = bytearray()
        for i in range(off, off + n):
            b = self.stack.get(i)
            if b is None:
                return None
            out.append(b)
        return bytes(out)

    def stack_runs(self) -> list[tuple[int, bytes | None, int]]:
        """Contiguous written stack ranges: ``(start offset, bytes or None if not all known,
        length)``, lowest address first."""
        runs: list[tuple[int, bytes | None, int]] = []
        start: int | None = None
        length = 0
        for off in sorted(self.stack):
            if start is not None and off == start + length:
                length += 1
                continue
            if start is not None:
                runs.append((start, self.stack_bytes(start, length), length))
            start, length = off, 1
        if start is not None:
            runs.append((start, self.stack_bytes(start, length), length))
        return runs


def join_states(a: State, b: State) -> State:
    """The state true on both paths (see the module docstring)."""
    regs = tuple(join(x, y) for x, y in zip(a.regs, b.regs, strict=True))
    stack = {k: (v if b.stack[k] == v else None) for k, v in a.stack.items() if k in b.stack}
    spills = {k: v for k, v in a.spills.items() if b.spills.get(k) == v}
    return State(regs, stack, spills)


@dataclass(frozen=True)
class Env:
    """What the interpreter may know about the world outside the instructions.

    ``lddw(index)`` names the value an ``lddw`` at instruction ``index`` loads after
    relocation (a map, global data); ``ctx_load(off, size)`` what a context field load
    gives (``packet`` pointers for XDP and tc); ``read(region, off, size)`` the bytes of
    read-only data (``.rodata``), for strings passed to helpers.
    """

    lddw: Callable[[int], Value | None] = lambda index: None
    ctx_load: Callable[[int, int], Value | None] = lambda off, size: None
    read: Callable[[str, int, int], bytes | None] = lambda region, off, size: None


@dataclass(frozen=True)
class Analysis:
    """The result: in and out state of every reached instruction (by list index)."""

    insns: tuple[Insn, ...]
    slots: tuple[int, ...]  # slot index of each instruction
    before: tuple[State | None, ...]  # None: not reached from the entry
    after: tuple[State | None, ...]  # the state on the fall-through/only edge


def slot_indices(insns: Sequence[Insn]) -> tuple[int, ...]:
    """The 8-byte slot index of each instruction (``lddw`` takes two)."""
    out, slot = [], 0
    for i in insns:
        out.append(slot)
        slot += i.width
    return tuple(out)


def analyze(insns: Sequence[Insn], entry: State | None = None, env: Env | None = None) -> Analysis:
    """Run the interpreter to a fixed point over ``insns`` (one function)."""
    insns = tuple(insns)
    env = env or Env()
    slots = slot_indices(insns)
    by_slot = {s: i for i, s in enumerate(slots)}
    n = len(insns)
    before: list[State | None] = [None] * n
    if n == 0:
        return Analysis(insns, slots, (), ())
    before[0] = entry or State.entry()
    work = [0]
    budget = 64 * n + 1000  # the lattice is finite; this only guards against a bug
    while work and budget:
        budget -= 1
        i = work.pop()
        state = before[i]
        assert state is not None
        for succ, out in successors(insns[i], i, state, env, slots, by_slot):
            if succ is None or not 0 <= succ < n:
                continue
            old = before[succ]
            new = out if old is None else join_states(old, out)
            if new != old:
                before[succ] = new
                work.append(succ)
    after: list[State | None] = []
    for i, s in enumerate(before):
        after.append(None if s is None else step(insns[i], i, s, env))
    return Analysis(insns, slots, tuple(before), tuple(after))


def successors(
    insn: Insn,
    i: int,
    state: State,
    env: Env,
    slots: Sequence[int],
    by_slot: Mapping[int, int],
) -> list[tuple[int | None, State]]:
    """``(next instruction index, state on that edge)`` for each edge out of ``insn``."""
    op = lookup(insn)
    nxt = i + 1
    if op is None:
        return [(nxt, step(insn, i, state, env))]
    if op.kind is Kind.EXIT:
        return []
    if op.kind in (Kind.JA, Kind.JCOND, Kind.MAY_GOTO):
        dist = insn.imm if (op.kind is Kind.JA and op.width == 32) else insn.off
        target = by_slot.get(slots[i] + insn.width + dist)
        if op.kind is Kind.JA:
            return [(target, state)]
        if op.kind is Kind.MAY_GOTO:
            return [(nxt, state), (target, state)]
        return _cond_edges(insn, op, state, nxt, target)
    return [(nxt, step(insn, i, state, env))]


def _sx(v: int, bits: int) -> int:
    return semantics.sext(v, bits)


def _cond_edges(
    insn: Insn, op: Op, state: State, nxt: int, target: int | None
) -> list[tuple[int | None, State]]:
    a = state.reg(insn.dst)
    b = state.reg(insn.src) if op.source == "reg" else Value.scalar(insn.imm)
    mask = _M32 if op.width == 32 else _M64
    if a.is_const and b.is_const:
        assert a.const is not None and b.const is not None
        taken = semantics.compute(op, a.const & mask, b.const & mask)
        return [(target, state)] if taken else [(nxt, state)]
    # A NULL check on a pointer that may be NULL: each edge knows which it is.
    if a.kind == "ptr" and a.maybe_null and b.is_const and b.const == 0 and op.key in ("eq", "ne"):
        null = state.set(**{f"r{insn.dst}": Value.scalar(0)})
        ok = state.set(**{f"r{insn.dst}": replace(a, maybe_null=False)})
        if op.key == "eq":
            return [(target, null), (nxt, ok)]
        return [(target, ok), (nxt, null)]
    return [(nxt, state), (target, state)]


def step(insn: Insn, i: int, state: State, env: Env) -> State:
    """The state after ``insn`` (for a jump: the state on its edges, which is unchanged)."""
    op = lookup(insn)
    if op is None:
        return state  # unknown instruction: nothing can be said about its effect
    k = op.kind
    d, s = insn.dst, insn.src
    rd = f"r{d}"
    if k in (Kind.ALU, Kind.NEG, Kind.MOVSX, Kind.ENDIAN, Kind.ADDR_SPACE_CAST):
        return state.set(**{rd: alu(op, insn, state)})
    if k is Kind.LDDW:
        v = env.lddw(i)
        if v is None:
            v = Value.scalar(insn.imm64) if insn.src == 0 else _pseudo_lddw(insn)
        return state.set(**{rd: v})
    if k in (Kind.LD_ABS, Kind.LD_IND):
        return _clobber_args(state).set(r0=Value.scalar())
    if k in (Kind.LOAD, Kind.LOAD_SX, Kind.LOAD_ACQ):
        return state.set(**{rd: _load(op, insn, state, env)})
    if k is Kind.STORE_IMM:
        return _store(state, state.reg(d), insn.off, op.size, Value.scalar(insn.imm))
    if k in (Kind.STORE_REG, Kind.STORE_REL):
        return _store(state, state.reg(d), insn.off, op.size, state.reg(s))
    if k is Kind.ATOMIC:
        new = _store(state, state.reg(d), insn.off, op.size, Value.scalar())
        if op.key == "cmpxchg":
            return new.set(r0=Value.scalar())
        if op.key.startswith("fetch_") or op.key == "xchg":
            return new.set(**{f"r{s}": Value.scalar()})
        return new
    if k is Kind.CALL:
        return _call(op, insn, state)
    if k is Kind.CALLX:
        return _clobber_args(state).set(r0=Value.scalar())
    return state


def _pseudo_lddw(insn: Insn) -> Value:
    if insn.src in (1, 5):
        return Value.ptr("map", None if insn.src == 1 else 0, f"#{insn.imm}")
    if insn.src in (2, 6):
        return Value.ptr("map value", insn.imm_hi, f"map #{insn.imm}")
    if insn.src == 4:
        return Value.ptr("func", insn.imm)
    return Value.ptr("kernel", None, "btf id " + str(insn.imm))


def _clobber_args(state: State) -> State:
    return state.set(**{f"r{n}": _UNINIT for n in range(1, 6)})


def _call(op: Op, insn: Insn, state: State) -> State:
    # Helpers and functions take r1-r5 and leave them undefined (the kernel calling convention).
    after = _clobber_args(state)
    if op.key != "helper":
        return after.set(r0=Value.scalar())
    h = by_id(insn.imm)
    if h is None:
        return after.set(r0=Value.scalar())
    # Memory a helper writes through a stack pointer argument is no longer known.
    for n, arg in enumerate(h.args, start=1):
        v = state.reg(n)
        if arg.kind == "ptr" and not arg.ctype.startswith("const") and v.base == "stack":
            size = _arg_size(h.args, n, state)
            if v.const is None:
                after = _forget(after, -STACK_SIZE, STACK_SIZE)
            else:
                # Without a known size the helper may write up to the top of the stack.
                after = _forget(after, v.const, size or max(0, -v.const))
    if h.ret_kind != "ptr":
        return after.set(r0=Value.scalar())
    if h.short_name in ("map_lookup_elem", "map_lookup_percpu_elem") or h.short_name.endswith(
        "_storage_get"
    ):
        m = state.reg(1)
        region = m.region if m.base == "map" else ""
        return after.set(r0=Value.ptr("map value", 0, region, maybe_null=True))
    if h.short_name == "ringbuf_reserve":
        m = state.reg(1)
        return after.set(r0=Value.ptr("ringbuf sample", 0, m.region, maybe_null=True))
    return after.set(r0=Value.ptr("kernel", 0, h.name, maybe_null=True))


def _arg_size(args: Sequence[object], n: int, state: State) -> int | None:
    if n < len(args) and getattr(args[n], "kind", "") == "size":
        v = state.reg(n + 1)
        return v.const if v.is_const and v.const is not None and v.const <= STACK_SIZE else None
    return None


def _forget(state: State, off: int, n: int) -> State:
    """Bytes fp+off .. fp+off+n-1 become unknown (those never written stay unwritten
    unless the range is small: a store writes them)."""
    stack = dict(state.stack)
    if n >= STACK_SIZE or n > 64:
        for j in [k for k in stack if off <= k < off + n]:
            stack[j] = None
    else:
        for j in range(off, off + n):
            stack[j] = None
    spills = {k: v for k, v in state.spills.items() if not (off - 8 < k < off + n)}
    return replace(state, stack=stack, spills=spills)


def _store(state: State, base: Value, off: int, size: int, v: Value) -> State:
    if base.kind != "ptr" or base.base != "stack":
        return state  # memory other than the stack is not tracked
    if base.const is None:
        # A store somewhere in the stack: any byte written so far may have changed.
        return _forget(state, -STACK_SIZE, STACK_SIZE)
    at = base.const + off
    new = _forget(state, at, size)
    stack = dict(new.stack)
    if v.is_const:
        assert v.const is not None
        for j, b in enumerate((v.const & ((1 << (8 * size)) - 1)).to_bytes(size, "little")):
            stack[at + j] = b
    spills = dict(new.spills)
    if v.kind == "ptr" and size == 8:
        spills[at] = v
    return replace(new, stack=stack, spills=spills)


def _load(op: Op, insn: Insn, state: State, env: Env) -> Value:
    base = state.reg(insn.src)
    signed = op.kind is Kind.LOAD_SX
    if base.kind != "ptr" or base.const is None:
        return Value.scalar()
    at = base.const + insn.off
    raw: bytes | None = None
    if base.base == "stack":
        if op.size == 8 and at in state.spills:
            return state.spills[at]
        raw = state.stack_bytes(at, op.size)
    elif base.base == "ctx":
        v = env.ctx_load(at, op.size)
        if v is not None:
            return v
    elif base.base in ("data", "map value") and base.region:
        raw = env.read(base.region, at, op.size)
    if raw is None:
        return Value.scalar()
    n = int.from_bytes(raw, "little")
    return Value.scalar(_sx(n, 8 * op.size) if signed else n)


def alu(op: Op, insn: Insn, state: State) -> Value:
    """The value an ALU instruction leaves in dst."""
    dst = state.reg(insn.dst)
    src = state.reg(insn.src) if op.source == "reg" else Value.scalar(insn.imm)
    w = op.width if op.kind is Kind.ALU or op.kind is Kind.NEG or op.kind is Kind.MOVSX else 64
    key = op.key
    if op.kind is Kind.ALU and key == "mov":
        if w == 64 or src.kind != "ptr":
            return src if w == 64 else _trunc(src, 32)
        return Value.scalar()
    if op.kind is Kind.ADDR_SPACE_CAST:
        return src
    # Pointer arithmetic: a known constant added to or subtracted from a pointer.
    if dst.kind == "ptr" and op.kind is Kind.ALU and w == 64 and key in ("add", "sub"):
        if src.kind == "scalar":
            if dst.const is None or src.signed is None:
                return replace(dst, const=None)
            delta = src.signed if key == "add" else -src.signed
            return replace(dst, const=dst.const + delta)
        if key == "sub" and src.kind == "ptr" and src.base == dst.base and src.region == dst.region:
            if dst.const is not None and src.const is not None:
                return Value.scalar(dst.const - src.const)
            return Value.scalar()
    if src.kind == "ptr" and key == "add" and dst.is_const and w == 64:
        return replace(src, const=None if src.const is None else src.const + (dst.signed or 0))
    a = dst.const if dst.is_const else None
    b = src.const if src.is_const else None
    # Only the operands the row's expression reads need to be known.
    e = semantics.expr(op)
    if (a is None and semantics.count(e, "A")) or (b is None and semantics.count(e, "B")):
        return Value.scalar()
    return Value.scalar(semantics.compute(op, a or 0, b or 0))


def _trunc(v: Value, w: int) -> Value:
    return Value.scalar(v.const & semantics.mask(w)) if v.is_const and v.const is not None else v
