"""The compiling engine's IR per instruction (:mod:`bpfkit.vm.jit`): which instruction kinds
are translated, and :func:`insn_ir`, one instruction as IR by its kind (ALU and jumps from
the semantics trees, wide loads, loads and stores, atomics, exits and local calls with their
frames, helper calls and callx through the trampoline, the closures the interpreter runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bpfkit.errors import VmError
from bpfkit.isa import semantics
from bpfkit.isa.insn import Insn
from bpfkit.isa.semantics import Expr
from bpfkit.isa.table import Kind, Op
from bpfkit.vm.jit_ir import (
    CALLX_FLAG,
    CLOSURE_FLAG,
    F_DEPTH,
    F_FRAMES,
    F_REGS,
    F_STATUS,
    N_FRAME,
    S_DEPTH,
    S_EXIT,
    S_HELPER,
    S_STUB,
    Emitter,
    JitUnsupportedError,
    iconst,
)
from bpfkit.vm.memory import CODE_BASE, MAX_FRAMES, STACK_SIZE, STACK_SLOT

if TYPE_CHECKING:
    from bpfkit.vm.interp import Code, Interpreter

# Kinds translated to native code; programs with others run in the interpreter.
NATIVE = {
    Kind.ALU, Kind.NEG, Kind.MOVSX, Kind.ENDIAN, Kind.LDDW, Kind.LOAD, Kind.LOAD_SX,
    Kind.LOAD_ACQ, Kind.STORE_IMM, Kind.STORE_REG, Kind.STORE_REL, Kind.ATOMIC, Kind.JA,
    Kind.JCOND, Kind.CALL, Kind.CALLX, Kind.EXIT,
}  # fmt: skip
# Kinds run by calling the interpreter's closure from native code (rare, and free of
# control flow): legacy packet loads, address-space casts.
BY_CLOSURE = {Kind.LD_ABS, Kind.LD_IND, Kind.ADDR_SPACE_CAST}


_TREES: dict[Op, tuple[int, Expr, bool, bool]] = {}


def _tree_of(op: Op) -> tuple[int, Expr, bool, bool]:
    """``op``'s width, semantics tree and whether it reads A and B (cached per row)."""
    got = _TREES.get(op)
    if got is None:
        tree = semantics.expr(op)
        got = _TREES[op] = (
            semantics.width(op),
            tree,
            semantics.count(tree, "A") > 0,
            semantics.count(tree, "B") > 0,
        )
    return got


def _push_frame(e: Emitter, fault_exit: Callable[..., None], pc: int, nxt: int) -> None:
    """A local call's frame: r6-r10 and the return pc saved, a zeroed stack, r10 at its top."""
    depth = e.load_field(F_DEPTH)
    deep = e.emit(f"icmp uge i64 {depth}, {MAX_FRAMES - 1}")
    bad, ok = e.tmp()[1:], e.tmp()[1:]
    e.raw(f"  br i1 {deep}, label %{bad}, label %{ok}, !prof !0")
    e.start(bad)
    fault_exit(S_DEPTH, pc)
    e.start(ok)
    base = e.emit(f"mul i64 {depth}, {N_FRAME}")
    base = e.emit(f"add i64 {base}, {F_FRAMES}")
    vals = [str(nxt)] + [e.reg(rn) for rn in (6, 7, 8, 9, 10)]
    for j, v in enumerate(vals):
        idx = e.emit(f"add i64 {base}, {j}")
        gep = e.emit(f"getelementptr inbounds i64, ptr %env, i64 {idx}")
        e.raw(f"  store i64 {v}, ptr {gep}")
    dp = e.emit(f"add i64 {depth}, 1")
    e.store_field(F_DEPTH, dp)
    # the new frame's stack: zeroed, r10 at its top
    slot = e.emit(f"add i64 {dp}, {STACK_SLOT}")
    e.set_stack(slot)
    hp = e.emit(f"inttoptr i64 {e.emit(f'load i64, ptr {e.table_entry(slot)}')} to ptr")
    e.raw(f"  call void @llvm.memset.p0.i64(ptr {hp}, i8 0, i64 {STACK_SIZE}, i1 false)")
    top = e.emit(f"shl i64 {slot}, 32")
    e.setreg(10, e.emit(f"add i64 {top}, {STACK_SIZE}"), stackish=True)


def insn_ir(
    e: Emitter,
    m: Interpreter,
    code: Code,
    op: Op,
    insn: Insn,
    pc: int,
    nxt: int,
    target: Callable[[int, int], str],
    fault_exit: Callable[..., None],
    save_left: Callable[[], None],
    returns: list[int],
    functions: set[int],
) -> bool:
    """Emit one instruction; True if it ended the block."""
    k = op.kind
    d, s = insn.dst, insn.src
    reg, setreg = e.reg, e.setreg
    if k in (Kind.ALU, Kind.NEG, Kind.MOVSX, Kind.ENDIAN, Kind.JCOND):
        w, tree, reads_a, reads_b = _tree_of(op)
        a = b = "undef"
        if reads_a:
            a = reg(d)
            if w == 32:
                a = e.emit(f"trunc i64 {a} to i32")
        if reads_b:
            if op.source == "reg":
                b = reg(s)
                if w == 32:
                    b = e.emit(f"trunc i64 {b} to i32")
            else:
                b = iconst(insn.imm & semantics.mask(w), w)
        v = e.tree(tree, w, a, b)
        if k is Kind.JCOND:
            t = target(pc + 1 + insn.off, pc)
            f = target(nxt, pc)
            e.flush()
            e.raw(f"  br i1 {v}, label {t}, label {f}")
            return True
        if w == 32:
            v = e.emit(f"zext i32 {v} to i64")
        # Still a pointer into this frame's stack: r10 moved by a constant or a register.
        stack = (
            w == 64
            and k is Kind.ALU
            and (
                (op.key == "mov" and op.source == "reg" and s in e.stackish)
                or (op.key in ("add", "sub") and d in e.stackish)
                or (op.key == "add" and op.source == "reg" and s in e.stackish)
            )
        )
        setreg(d, v, stackish=stack)
        return False
    if k is Kind.LDDW:
        if op.key == "lddw":
            value: int | None = insn.imm64
        elif op.key == "lddw_func":
            value = CODE_BASE + 8 * (pc + insn.imm + 1)
        else:
            try:
                value = m.resolve_lddw(insn, op) if m.resolve_lddw else None
            except VmError:
                value = None
        if value is None:
            fault_exit(S_STUB, pc)  # the interpreter's stub says why
            return True
        setreg(d, iconst(value, 64))
        return False
    if k in (Kind.LOAD, Kind.LOAD_SX, Kind.LOAD_ACQ):
        n = op.size
        p = e.mem(pc, s, insn.off, n, False)
        v = e.emit(f"load i{8 * n}, ptr {p}, align 1")
        if n < 8:
            v = e.emit(f"{'sext' if k is Kind.LOAD_SX else 'zext'} i{8 * n} {v} to i64")
        setreg(d, v)
        return False
    if k in (Kind.STORE_IMM, Kind.STORE_REG, Kind.STORE_REL):
        n = op.size
        if k is Kind.STORE_IMM:
            v = iconst(insn.imm & semantics.mask(8 * n), 8 * n)
        else:
            v = reg(s)
            if n < 8:
                v = e.emit(f"trunc i64 {v} to i{8 * n}")
        p = e.mem(pc, d, insn.off, n, True)
        e.raw(f"  store i{8 * n} {v}, ptr {p}, align 1")
        return False
    if k is Kind.ATOMIC:
        n = op.size
        w = 8 * n
        p = e.mem(pc, d, insn.off, n, True)
        old = e.emit(f"load i{w}, ptr {p}, align 1")
        src = reg(s)
        if w == 32:
            src = e.emit(f"trunc i64 {src} to i32")
        wide = old if w == 64 else e.emit(f"zext i32 {old} to i64")
        if op.key == "cmpxchg":
            r0 = reg(0)
            r0w = r0 if w == 64 else e.emit(f"trunc i64 {r0} to i32")
            same = e.emit(f"icmp eq i{w} {old}, {r0w}")
            new = e.emit(f"select i1 {same}, i{w} {src}, i{w} {old}")
            setreg(0, wide)
        else:
            new = e.tree(semantics.expr(op), w, old, src)
            if op.key.startswith("fetch_") or op.key == "xchg":
                setreg(s, wide)
        e.raw(f"  store i{w} {new}, ptr {p}, align 1")
        return False
    if k is Kind.JA:
        dist = insn.imm if op.width == 32 else insn.off
        e.br(target(pc + 1 + dist, pc))
        return True
    if k is Kind.EXIT:
        depth = e.load_field(F_DEPTH)
        top = e.emit(f"icmp eq i64 {depth}, 0")
        done, pop = e.tmp()[1:], e.tmp()[1:]
        e.raw(f"  br i1 {top}, label %{done}, label %{pop}")
        e.start(done)
        e.store_field(F_REGS, reg(0))
        save_left()
        e.store_field(F_STATUS, str(S_EXIT))
        e.raw(f"  ret i64 {S_EXIT}")
        e.start(pop)
        dm = e.emit(f"sub i64 {depth}, 1")
        e.store_field(F_DEPTH, dm)
        base = e.emit(f"mul i64 {dm}, {N_FRAME}")
        base = e.emit(f"add i64 {base}, {F_FRAMES}")
        vals = []
        for j in range(N_FRAME):
            idx = e.emit(f"add i64 {base}, {j}")
            gep = e.emit(f"getelementptr inbounds i64, ptr %env, i64 {idx}")
            vals.append(e.emit(f"load i64, ptr {gep}"))
        e.raw(f"  store i64 {vals[0]}, ptr %retpc")
        for j, rn in enumerate((6, 7, 8, 9, 10), start=1):
            setreg(rn, vals[j])
        e.set_stack(e.emit(f"add i64 {dm}, {STACK_SLOT}"))
        e.br("%ret_dispatch")
        return True
    if k in BY_CLOSURE:
        for rn in range(11):
            e.store_field(F_REGS + rn, reg(rn))
        save_left()
        e.emit(f"call i64 %helper(ptr %env, i64 {CLOSURE_FLAG | pc}, i64 {pc})")
        st = e.load_field(F_STATUS)
        bad = e.emit(f"icmp ne i64 {st}, 0")
        out, ok = e.tmp()[1:], e.tmp()[1:]
        e.raw(f"  br i1 {bad}, label %{out}, label %{ok}, !prof !0")
        e.start(out)
        e.raw(f"  ret i64 {st}")
        e.start(ok)
        for rn in range(11):
            setreg(rn, e.load_field(F_REGS + rn))
        return False
    if k is Kind.CALLX:
        # A function address: a local call through a switch on the entries; else a helper id.
        v = reg(d)
        for rn in range(11):
            reg(rn)  # loaded before the branches: every arm below may use them
        e.flush()
        off = e.emit(f"sub i64 {v}, {iconst(CODE_BASE, 64)}")
        t = e.emit(f"lshr i64 {off}, 3")
        low = e.emit(f"and i64 {off}, 7")
        iscode = e.emit(f"icmp ult i64 {off}, {8 * len(code.insns[: code.length])}")
        aligned = e.emit(f"icmp eq i64 {low}, 0")
        iscode = e.emit(f"and i1 {iscode}, {aligned}")
        tocode, tohelper, push = e.tmp()[1:], e.tmp()[1:], e.tmp()[1:]
        e.raw(f"  br i1 {iscode}, label %{tocode}, label %{tohelper}")
        e.start(tocode)
        entries = sorted(functions)
        cases = " ".join(f"i64 {x}, label %{push}_{x}" for x in entries)
        e.raw(f"  switch i64 {t}, label %{tohelper} [ {cases} ]")
        saved = dict(e.cur)
        for entry in entries:
            e.start(f"{push}_{entry}")
            _push_frame(e, fault_exit, pc, nxt)
            e.br(target(entry, pc))
            e.cur = dict(saved)
        e.start(tohelper)
        for rn in range(11):
            e.store_field(F_REGS + rn, reg(rn))
        save_left()
        hid = e.emit(f"or i64 {v}, {iconst(CALLX_FLAG, 64)}")
        r0 = e.emit(f"call i64 %helper(ptr %env, i64 {hid}, i64 {pc})")
        st = e.load_field(F_STATUS)
        bad = e.emit(f"icmp ne i64 {st}, 0")
        out, ok = e.tmp()[1:], e.tmp()[1:]
        e.raw(f"  br i1 {bad}, label %{out}, label %{ok}, !prof !0")
        e.start(out)
        e.raw(f"  ret i64 {st}")
        e.start(ok)
        e.after_call()
        setreg(0, r0)
        e.br(target(nxt, pc))
        return True
    if k is Kind.CALL:
        if op.key == "local":
            _push_frame(e, fault_exit, pc, nxt)
            e.br(target(pc + 1 + insn.imm, pc))
            return True
        fn = m.helpers.get(insn.imm) if op.key == "helper" else None
        if fn is None:
            fault_exit(S_STUB, pc)  # kfuncs and helpers not emulated: the stub says why
            return True
        for rn in range(1, 6):
            e.store_field(F_REGS + rn, reg(rn))
        save_left()
        r0 = e.emit(f"call i64 %helper(ptr %env, i64 {insn.imm}, i64 {pc})")
        st = e.load_field(F_STATUS)
        bad = e.emit(f"icmp ne i64 {st}, 0")
        out, ok = e.tmp()[1:], e.tmp()[1:]
        e.raw(f"  br i1 {bad}, label %{out}, label %{ok}, !prof !0")
        e.start(out)
        e.raw(f"  ret i64 {S_HELPER}")
        e.start(ok)
        e.after_call()
        for rn in (1, 2, 3, 4, 5):
            e.stackish.discard(rn)
        setreg(0, r0)
        return False
    raise JitUnsupportedError(f"{op.mnemonic} is run by the interpreter", pc=pc)
