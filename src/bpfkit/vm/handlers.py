"""The instruction handlers of the interpreter: one per :class:`~bpfkit.isa.table.Kind`.

A handler gets the machine, an instruction, its row of the ISA table, its pc and a
``target(pc, from_pc)`` function (the code index of a jump target, a stopping stub if the
target is bad) and returns the closure that executes the instruction and returns the
next pc.  :data:`HANDLERS` maps every row of :data:`bpfkit.isa.table.OPS` to its handler;
:meth:`bpfkit.vm.interp.Interpreter.compile` uses it.  Hot kinds (ALU, conditional jumps)
get closures generated from the expressions of :mod:`bpfkit.isa.semantics`; loads and
stores check the region of every access inline.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from bpfkit.errors import VmError
from bpfkit.isa import semantics
from bpfkit.isa.insn import Insn
from bpfkit.isa.semantics import M32, M64, sx32
from bpfkit.isa.table import OPS, Kind, Op
from bpfkit.vm.cpu import Closure, Cpu, ProgramExit
from bpfkit.vm.memory import CODE_BASE, MAX_FRAMES, STACK_SIZE, Fault, Region

Target = Callable[[int, int], int]
Handler = Callable[[Cpu, Insn, Op, int, Target], Closure]

_UNPACK = {
    n: struct.Struct(f"<{c}").unpack_from for n, c in ((1, "B"), (2, "H"), (4, "I"), (8, "Q"))
}
_UNPACK_SX = {n: struct.Struct(f"<{c}").unpack_from for n, c in ((1, "b"), (2, "h"), (4, "i"))}
_PACK = {n: struct.Struct(f"<{c}").pack_into for n, c in ((1, "B"), (2, "H"), (4, "I"), (8, "Q"))}
_MASK = {1: 0xFF, 2: 0xFFFF, 4: M32, 8: M64}
ZERO_STACK = bytes(STACK_SIZE)
BPF_MAX_LOOPS = 1 << 23  # bpf_loop's limit and each function's may_goto budget
SKF_NET_OFF = -0x100000  # LD_ABS/LD_IND offsets below 0 address headers (linux/filter.h)
SKF_LL_OFF = -0x200000


def _mem_fault(m: Cpu, address: int, size: int, write: bool) -> int:
    """Raise the fault of a failed access (the fast path already found it bad)."""
    m.memory.check(address, size, write)
    raise Fault(f"{'write' if write else 'read'} of {size} bytes refused", address=address)


_FACTORIES: dict[tuple[object, ...], Callable[..., Closure]] = {}


def _factory(key: tuple[object, ...], body: str, params: str) -> Callable[..., Closure]:
    """``make(params)``, returning ``def f(): body`` (compiled once per key)."""
    made = _FACTORIES.get(key)
    if made is None:
        src = f"def make({params}):\n    def f():\n{body}\n    return f\n"
        ns = dict(semantics.PY_NAMESPACE)
        exec(compile(src, f"<bpfkit.vm {key}>", "exec"), ns)  # noqa: S102 - from isa.semantics
        made = _FACTORIES[key] = ns["make"]
    return made


def _operand_source(op: Op) -> tuple[str, str]:
    """Python source of A (dst) and B (src, or ``b``: the immediate) at the row's width."""
    w = semantics.width(op)
    low = "" if w == 64 else f" & {semantics.mask(w):#x}"
    a = f"(R[d]{low})" if low else "R[d]"
    if op.source == "imm":
        return a, "b"
    return a, (f"(R[s]{low})" if low else "R[s]")


def _value(m: Cpu, insn: Insn, op: Op, pc: int, target: Target) -> Closure:
    """ALU, NEG, MOVSX and ENDIAN: ``dst = expr(A, B)``."""
    a, b = _operand_source(op)
    e = semantics.expr(op)
    w = semantics.width(op)
    body = f"        R[d] = {semantics.to_python(e, w, a, b)}\n        return nxt"
    if max(semantics.count(e, "A"), semantics.count(e, "B")) > 1:  # name each operand once
        body = (
            f"        A = {a}\n        B = {b}\n"
            f"        R[d] = {semantics.to_python(e, w, 'A', 'B')}\n        return nxt"
        )
    make = _factory(("value", op), body, "R, d, s, b, nxt")
    imm = insn.imm & semantics.mask(w)
    return make(m.regs, insn.dst, insn.src, imm, pc + 1)


def _addr_space_cast(m: Cpu, insn: Insn, op: Op, pc: int, target: Target) -> Closure:
    R, d, s, nxt = m.regs, insn.dst, insn.src, pc + 1
    to_as, from_as = insn.imm >> 16, insn.imm & 0xFFFF

    def f() -> int:
        if to_as == 1 and from_as == 0:  # to the user view of an arena: its low 32 bits
            R[d] = R[s] & M32
        elif R[s] == 0 or (to_as == from_as):
            R[d] = R[s]
        else:
            raise Fault("addr_space_cast into an arena: arenas are not emulated")
        return nxt

    return f


def _lddw(m: Cpu, insn: Insn, op: Op, pc: int, target: Target) -> Closure:
    R, d, nxt = m.regs, insn.dst, pc + 2
    value: int | None
    if op.key == "lddw":
        value = insn.imm64
    elif op.key == "lddw_func":
        t = pc + insn.imm + 1
        value = CODE_BASE + 8 * target(t, pc)
    else:
        resolve = m.resolve_lddw
        try:
            value = resolve(insn, op) if resolve else None
        except VmError as e:
            return m._stub(str(e))
        if value is None:
            return m._stub(f"{op.key} is not emulated: the VM has nothing for src={insn.src}")
    loaded: int = value

    def f() -> int:
        R[d] = loaded
        return nxt

    return f


def _ld_packet(m: Cpu, insn: Insn, op: Op, pc: int, target: Target) -> Closure:
    R, s, imm, n, nxt = m.regs, insn.src, insn.imm, op.size, pc + 1
    indirect = op.kind is Kind.LD_IND

    def f() -> int:
        off = sx32(R[s] + imm) if indirect else imm
        p = m.ld_packet
        if p is None:
            raise Fault("LD_ABS/LD_IND needs packet data (socket filter or tc context)")
        if off >= 0:
            o = m.ld_offset + off
        elif off >= SKF_NET_OFF:  # relative to the network header
            o = m.ld_net_offset + off - SKF_NET_OFF
        elif off >= SKF_LL_OFF:  # relative to the link-layer (mac) header
            o = off - SKF_LL_OFF
        else:
            o = -1
        if o < 0 or o + n > p.size:
            m.exit_program(0)  # the kernel's ld_abs fixup returns 0 from the program
        R[0] = int.from_bytes(p.buf[o : o + n], "big")
        return nxt

    return f


def _mem_operands(
    m: Cpu, insn: Insn, op: Op, pc: int
) -> tuple[list[int], Callable[[int], Region | None], int, int, int, int, int]:
    """What a load or store closure binds: the registers, the region lookup by address slot,
    dst, src, off, the access size and the next pc."""
    return m.regs, m.memory.slots.get, insn.dst, insn.src, insn.off, op.size, pc + 1


def _load(m: Cpu, insn: Insn, op: Op, pc: int, target: Target) -> Closure:
    R, get, d, s, off, n, nxt = _mem_operands(m, insn, op, pc)
    signed = op.kind is Kind.LOAD_SX
    unpack = _UNPACK_SX[n] if signed else _UNPACK[n]

    def f() -> int:
        a = R[s] + off
        r = get(a >> 32)
        if r is not None:
            o = a - r.base
            if 0 <= o <= r.size - n:
                R[d] = unpack(r.buf, o)[0]
                return nxt
        return _mem_fault(m, a, n, False)

    def fsx() -> int:
        a = R[s] + off
        r = get(a >> 32)
        if r is not None:
            o = a - r.base
            if 0 <= o <= r.size - n:
                R[d] = unpack(r.buf, o)[0] & M64
                return nxt
        return _mem_fault(m, a, n, False)

    return fsx if signed else f


def _store(m: Cpu, insn: Insn, op: Op, pc: int, target: Target) -> Closure:
    R, get, d, s, off, n, nxt = _mem_operands(m, insn, op, pc)
    pack, mask = _PACK[n], _MASK[n]
    value = insn.imm & mask

    def freg() -> int:
        a = R[d] + off
        r = get(a >> 32)
        if r is not None:
            o = a - r.base
            if 0 <= o <= r.size - n and r.writable:
                pack(r.buf, o, R[s] & mask)
                return nxt
        return _mem_fault(m, a, n, True)

    def fimm() -> int:
        a = R[d] + off
        r = get(a >> 32)
        if r is not None:
            o = a - r.base
            if 0 <= o <= r.size - n and r.writable:
                pack(r.buf, o, value)
                return nxt
        return _mem_fault(m, a, n, True)

    return fimm if op.kind is Kind.STORE_IMM else freg


def _atomic(m: Cpu, insn: Insn, op: Op, pc: int, target: Target) -> Closure:
    R, mem, d, s, off, n, nxt = m.regs, m.memory, insn.dst, insn.src, insn.off, op.size, pc + 1
    mask = _MASK[n]
    key = op.key
    fetch = key.startswith("fetch_")
    rmw = None if key == "cmpxchg" else semantics.expr(op)
    w = semantics.width(op)

    def f() -> int:
        r, o = mem.check(R[d] + off, n, True)
        old = int.from_bytes(r.buf[o : o + n], "little")
        src = R[s] & mask
        if rmw is not None:
            new = semantics.evaluate(rmw, w, old, src)
            if fetch or key == "xchg":
                R[s] = old
        else:  # cmpxchg: compare with r0, r0 gets the old value
            new = src if old == R[0] & mask else old
            R[0] = old
        r.buf[o : o + n] = new.to_bytes(n, "little")
        return nxt

    return f


def _ja(m: Cpu, insn: Insn, op: Op, pc: int, target: Target) -> Closure:
    t = target(pc + 1 + (insn.imm if op.width == 32 else insn.off), pc)

    def f() -> int:
        return t

    return f


def _jcond(m: Cpu, insn: Insn, op: Op, pc: int, target: Target) -> Closure:
    a, b = _operand_source(op)
    cond = semantics.to_python(semantics.expr(op), op.width, a, b)
    body = f"        if {cond}:\n            return tgt\n        return nxt"
    make = _factory(("jcond", op), body, "R, d, s, b, nxt, tgt")
    imm = insn.imm & semantics.mask(op.width)
    return make(m.regs, insn.dst, insn.src, imm, pc + 1, target(pc + 1 + insn.off, pc))


def _may_goto(m: Cpu, insn: Insn, op: Op, pc: int, target: Target) -> Closure:
    """``may_goto``: falls through while the frame's loop budget lasts, then jumps.

    As in the kernel (6.9+), each function invocation gets BPF_MAX_LOOPS, shared by all
    its ``may_goto`` instructions.
    """
    t, nxt, counts = target(pc + 1 + insn.off, pc), pc + 1, m._may_goto

    def f() -> int:
        depth = len(m.frames)
        left = counts.get(depth, BPF_MAX_LOOPS)
        if left == 0:
            return t
        counts[depth] = left - 1
        return nxt

    return f


def _code_target(m: Cpu, value: int, length: int) -> int | None:
    """The pc a code address (``CODE_BASE + 8 * pc``) stands for, if it is one."""
    off = value - CODE_BASE
    if 0 <= off < 8 * length and off % 8 == 0:
        return off // 8
    return None


def _gotox(m: Cpu, insn: Insn, op: Op, pc: int, target: Target) -> Closure:
    R, d = m.regs, insn.dst

    def f() -> int:
        t = _code_target(m, R[d], m.code_length)
        if t is None:
            raise Fault(f"gotox to {R[d]:#x}, which is no instruction address")
        return t

    return f


def push_frame(m: Cpu, ret: int) -> None:
    frames = m.frames
    if len(frames) >= MAX_FRAMES - 1:
        raise Fault(f"call depth exceeds {MAX_FRAMES} frames")
    R = m.regs
    frames.append((ret, R[6], R[7], R[8], R[9], R[10]))
    m._may_goto.pop(len(frames), None)  # a new invocation: a fresh may_goto budget
    stack = m.stacks[len(frames)]
    stack.buf[:] = ZERO_STACK
    R[10] = stack.base + STACK_SIZE


def _call(m: Cpu, insn: Insn, op: Op, pc: int, target: Target) -> Closure:
    R, nxt = m.regs, pc + 1
    if op.key == "local":
        t = target(pc + 1 + insn.imm, pc)

        def local() -> int:
            push_frame(m, nxt)
            return t

        return local
    if op.key == "kfunc":
        return m._stub(f"kfunc calls are not emulated (BTF id {insn.imm})")
    if m.helper_names.get(insn.imm) == "bpf_loop":
        return _bpf_loop(m, nxt)
    fn = m.helpers.get(insn.imm)
    if fn is None:
        name = m.helper_names.get(insn.imm)
        what = f"helper {name} (id {insn.imm})" if name else f"unknown helper id {insn.imm}"
        return m._stub(f"{what} is not emulated by the VM")
    helper = fn

    def call() -> int:
        R[0] = helper(m, R[1], R[2], R[3], R[4], R[5]) & M64
        return nxt

    return call


_EINVAL, _E2BIG = 22, 7


def _bpf_loop(m: Cpu, nxt: int) -> Closure:
    """``long bpf_loop(nr_loops, callback_fn, callback_ctx, flags)``.

    The callback runs as a local call whose return lands on the loop driver (the slot
    after the program's end), which calls it again or returns to ``nxt``: everything runs
    in the interpreter's one loop, under its budget.
    """
    R = m.regs

    def f() -> int:
        n, fn, ctx, flags = R[1], R[2], R[3], R[4]
        if flags:
            R[0] = -_EINVAL & M64
            return nxt
        if n > BPF_MAX_LOOPS:
            R[0] = -_E2BIG & M64
            return nxt
        if n == 0:
            R[0] = 0
            return nxt
        t = _code_target(m, fn, m.code_length)
        if t is None:
            raise Fault(f"bpf_loop callback {fn:#x} is not a function address (lddw src=4)")
        m.loops.append([t, ctx, 0, n, nxt])
        R[1], R[2] = 0, ctx
        push_frame(m, m.code_length + 1)
        return t

    return f


def loop_driver(m: Cpu) -> Closure:
    """Where a bpf_loop callback returns: next iteration, or back after the call."""
    R = m.regs

    def f() -> int:
        if not m.loops:
            raise Fault("return to the bpf_loop driver outside bpf_loop")
        state = m.loops[-1]
        t, ctx, i, n, ret = state
        i += 1
        if R[0] or i >= n:  # the callback returned 1 (stop), or the count is done
            m.loops.pop()
            R[0] = i
            return ret
        state[2] = i
        R[1], R[2] = i, ctx
        push_frame(m, m.code_length + 1)
        return t

    return f


def _callx(m: Cpu, insn: Insn, op: Op, pc: int, target: Target) -> Closure:
    R, d, nxt = m.regs, insn.dst, pc + 1

    def f() -> int:
        v = R[d]
        t = _code_target(m, v, m.code_length)
        if t is not None:
            push_frame(m, nxt)
            return t
        fn = m.helpers.get(v) if v < 1 << 31 else None
        if fn is None:  # a helper id, as the conformance suite's callx test uses
            raise Fault(f"callx to {v:#x}: neither a function address nor an emulated helper")
        R[0] = fn(m, R[1], R[2], R[3], R[4], R[5]) & M64
        return nxt

    return f


def _exit(m: Cpu, insn: Insn, op: Op, pc: int, target: Target) -> Closure:
    R, frames = m.regs, m.frames

    def f() -> int:
        if frames:
            ret, R[6], R[7], R[8], R[9], R[10] = frames.pop()
            return ret
        raise ProgramExit()

    return f


_BY_KIND: dict[Kind, Handler] = {
    Kind.ALU: _value,
    Kind.NEG: _value,
    Kind.MOVSX: _value,
    Kind.ENDIAN: _value,
    Kind.ADDR_SPACE_CAST: _addr_space_cast,
    Kind.LDDW: _lddw,
    Kind.LD_ABS: _ld_packet,
    Kind.LD_IND: _ld_packet,
    Kind.LOAD: _load,
    Kind.LOAD_SX: _load,
    Kind.STORE_IMM: _store,
    Kind.STORE_REG: _store,
    Kind.ATOMIC: _atomic,
    Kind.LOAD_ACQ: _load,  # one CPU: ordering is trivially kept
    Kind.STORE_REL: _store,
    Kind.JA: _ja,
    Kind.JCOND: _jcond,
    Kind.MAY_GOTO: _may_goto,
    Kind.GOTOX: _gotox,
    Kind.CALL: _call,
    Kind.CALLX: _callx,
    Kind.EXIT: _exit,
}

# The dispatch table, one entry per row of the ISA table (built once, at import).
HANDLERS: dict[Op, Handler] = {op: _BY_KIND[op.kind] for op in OPS}


def handled_rows() -> list[Op]:
    """Every row of the ISA table the interpreter has a handler for (all of them)."""
    return [op for op in OPS if op in HANDLERS]
