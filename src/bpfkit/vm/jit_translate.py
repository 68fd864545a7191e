"""The compiling engine's translation of a program (:mod:`bpfkit.vm.jit`): which programs it
takes (:func:`check_program`), their basic blocks with the budget counted per block, the
stubs of bad jumps, the shared exits (faults, budget, returns of local calls) and the whole
module's IR (:func:`translate`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpfkit.isa.insn import Insn
from bpfkit.isa.table import Kind, Op, lookup
from bpfkit.vm.cpu import writes_r10
from bpfkit.vm.jit_insn import BY_CLOSURE, NATIVE, insn_ir
from bpfkit.vm.jit_ir import (
    F_FRAMES,
    F_LEFT,
    F_PC,
    F_REGS,
    F_STATUS,
    S_BUDGET,
    S_MEM,
    S_STUB,
    Emitter,
    JitUnsupportedError,
    iconst,
)
from bpfkit.vm.jit_thunks import MEM_CHECK
from bpfkit.vm.memory import STACK_SIZE, STACK_SLOT

if TYPE_CHECKING:
    from bpfkit.vm.interp import Code, Interpreter


def _slots(code: Code) -> list[tuple[int, Insn]]:
    return [(pc, i) for pc, i in enumerate(code.insns[: code.length]) if i is not None]


def _ops(code: Code) -> dict[int, Op | None]:
    """Each instruction's row (None: unknown, or a register past r10)."""
    ops: dict[int, Op | None] = {}
    for pc, insn in _slots(code):
        op = lookup(insn)
        ops[pc] = None if op is not None and (insn.dst > 10 or insn.src > 10) else op
    return ops


def check_program(code: Code, m: Interpreter, ops: dict[int, Op | None] | None = None) -> None:
    """Raise :class:`JitUnsupportedError` if ``code`` has an instruction this engine leaves to
    the interpreter."""
    ops = _ops(code) if ops is None else ops
    for pc, insn in _slots(code):
        op = ops[pc]
        if op is None or op.kind not in NATIVE:
            continue  # invalid instructions are stubs (they fault as in the interpreter)
        if op.kind is Kind.CALL and op.key == "helper":
            if m.helper_names.get(insn.imm) == "bpf_loop":
                raise JitUnsupportedError("bpf_loop is run by the interpreter", pc=pc)
    for pc, insn in _slots(code):
        op = lookup(insn)
        if op is None or op.kind in NATIVE or op.kind in BY_CLOSURE:
            continue
        if insn.dst <= 10 and insn.src <= 10:
            raise JitUnsupportedError(f"{op.mnemonic} is run by the interpreter", pc=pc)


def translate(code: Code, m: Interpreter, optimize: bool = False) -> tuple[str, list[int]]:
    """The LLVM IR of ``code`` and the pc of each instruction index (for budget errors);
    ``optimize``: for the optimizing tier (region guesses inline)."""
    ops = _ops(code)
    check_program(code, m, ops)
    slots = _slots(code)
    n = len(code.insns[: code.length])
    valid = {pc for pc, _ in slots}
    # Leaders: the entry, jump targets, what follows jumps, calls and exits.
    leaders = {0}
    returns: list[int] = []
    functions: set[int] = set()  # where callx may go: every function entry
    for pc, insn in slots:
        op = ops[pc]
        if op is None:
            continue
        nxt = pc + insn.width
        if op.kind in (Kind.JA, Kind.JCOND):
            dist = insn.imm if (op.kind is Kind.JA and op.width == 32) else insn.off
            leaders.add(pc + 1 + dist)
            leaders.add(nxt)
        elif op.kind is Kind.CALL and op.key == "local":
            leaders.add(pc + 1 + insn.imm)
            functions.add(pc + 1 + insn.imm)
            leaders.add(nxt)
            returns.append(nxt)
        elif op.kind is Kind.EXIT:
            leaders.add(nxt)
        elif op.kind is Kind.CALLX:
            leaders.add(nxt)
            returns.append(nxt)
        elif op.kind is Kind.LDDW and op.key == "lddw_func":
            functions.add(pc + 1 + insn.imm)
    functions &= {pc for pc, _ in slots}
    functions.add(0)
    leaders |= functions
    order = [pc for pc, _ in slots]
    index_of = {pc: i for i, pc in enumerate(order)}
    e = Emitter()
    e.inline = optimize
    e.r10_fixed = not any(writes_r10(op, insn) for pc, insn in slots if (op := ops[pc]))

    def block(pc: int) -> str:
        """The label a jump to ``pc`` goes to (a stub for a bad target)."""
        if pc in valid and pc in leaders:
            return f"%b{pc}"
        return ""

    stubs: list[tuple[str, int]] = []  # (label, closure index) for bad jumps

    def target(t: int, at: int) -> str:
        lab = block(t)
        if lab:
            return lab
        if (at, t) not in code.bad_jumps:
            return "%fell"  # falling through past the last instruction
        idx = code.bad_jumps[(at, t)]
        label = f"%stub{len(stubs)}"
        stubs.append((label[1:], idx))
        return label

    def fault_exit(status: int, pc: int) -> None:
        e.store_field(F_STATUS, str(status))
        e.store_field(F_PC, str(pc))
        # No registers and no budget: no fault's message needs them (a callx that needs
        # its registers stores them before asking Python), and saving them here would
        # make every fault edge keep every register alive.
        e.raw(f"  ret i64 {status}")

    def save_left() -> None:
        e.store_field(F_LEFT, e.emit("load i64, ptr %left"))

    def reload_table() -> None:
        """The region table may have moved (a helper mapped memory): read it again."""
        e.load_regions()
        e.set_stack(e.emit(f"lshr i64 {e.emit('load i64, ptr %stklo')}, 32"))

    e.after_call = reload_table
    e.raw("define i64 @prog(ptr %env, ptr %helper) {")
    e.raw("entry:")
    for i in range(11):
        e.raw(f"  %r{i} = alloca i64")
    pk = [f"pk{w}lim{n}" for w in ("", "w") for n in (1, 2, 4, 8)]
    for name in ("left", "retpc", "tablep", "nslotsp", "stklo", "stkdelta", "pklo", "pkdelta",
                 *pk):  # fmt: skip
        e.raw(f"  %{name} = alloca i64")
    for i in range(F_FRAMES):
        e.raw(f"  %f{i} = getelementptr inbounds i64, ptr %env, i64 {i}")
    for i in range(10):
        e.setreg(i, e.load_field(F_REGS + i))
    # Every run starts in frame 0, whose stack top r10 is: say so (LLVM folds stack addresses).
    e.setreg(10, iconst((STACK_SLOT << 32) + STACK_SIZE, 64))
    e.raw(f"  store i64 {e.load_field(F_LEFT)}, ptr %left")
    e.load_regions()
    e.set_stack(str(STACK_SLOT))
    e.br(target(0, 0) if n else "%fell")

    pcs_of_index = list(order)
    for pc0 in sorted(x for x in leaders if x in valid):
        # the block: pc0 up to the next leader (or a terminator)
        body: list[int] = []
        pc = pc0
        while pc < n and (pc == pc0 or pc not in leaders):
            if pc in valid:
                body.append(pc)
                op = ops[pc]
                ins = code.insns[pc]
                assert ins is not None
                if op is None or op.kind in (Kind.JA, Kind.JCOND, Kind.EXIT):
                    break
                if (op.kind is Kind.CALL and op.key == "local") or op.kind is Kind.CALLX:
                    break
                pc += ins.width
            else:
                pc += 1
        k = len(body)
        first = index_of[pc0]
        e.begin(f"b{pc0}")
        left = e.emit("load i64, ptr %left")
        enough = e.emit(f"icmp uge i64 {left}, {k}")
        e.budget_outs.append((e.label, left, first))
        go = f"go{pc0}"
        e.raw(f"  br i1 {enough}, label %{go}, label %budget, !prof !0")
        e.start(go)
        e.raw(f"  store i64 {e.emit(f'sub i64 {left}, {k}')}, ptr %left")
        terminated = False
        for pc in body:
            got = code.insns[pc]
            assert got is not None
            insn = got
            op = ops[pc]
            nxt = pc + insn.width
            if op is None:  # an invalid instruction: its interpreter stub says why
                fault_exit(S_STUB, pc)
                terminated = True
                break
            terminated = insn_ir(e, m, code, op, insn, pc, nxt, target, fault_exit, save_left,
                               returns, functions)  # fmt: skip
            if terminated:
                break
        if not terminated:
            last = code.insns[body[-1]] or Insn(0)
            e.br(target(body[-1] + last.width, body[-1]) if body else "%fell")
    e.raw("fell:")
    fault_exit(S_STUB, n)  # falling off the end: the interpreter's stub at n says so
    for label, idx in stubs:
        e.raw(f"{label}:")
        fault_exit(S_STUB, idx)
    e.raw("memout:")  # @mem has recorded the fault
    e.raw(f"  ret i64 {S_MEM}")
    if e.budget_outs:  # the budget ran out before a block: at which instruction index
        e.raw("budget:")
        lefts = ", ".join(f"[ {b[1]}, %{b[0]} ]" for b in e.budget_outs)
        firsts = ", ".join(f"[ {b[2]}, %{b[0]} ]" for b in e.budget_outs)
        e.raw(f"  %bo_left = phi i64 {lefts}")
        e.raw(f"  %bo_first = phi i64 {firsts}")
        e.raw("  %bo_at = add i64 %bo_left, %bo_first")
        e.store_field(F_STATUS, str(S_BUDGET))
        e.store_field(F_PC, "%bo_at")  # an instruction index: Python maps it to its pc
        e.raw(f"  ret i64 {S_BUDGET}")
    # Returns from local calls: pop a frame, switch on the return pc.
    e.raw("ret_dispatch:")
    e.raw("  %rpc = load i64, ptr %retpc")
    cases = " ".join(f"i64 {p}, label {target(p, p)}" for p in returns)
    e.raw(f"  switch i64 %rpc, label %fell [ {cases} ]")
    e.raw("}")
    text = "\n".join(e.lines)
    decls = (
        "\n".join(f"declare i{b} @llvm.bswap.i{b}(i{b})" for b in (16, 32, 64))
        + "\ndeclare void @llvm.memset.p0.i64(ptr, i8, i64, i1)\n"
    )
    return (
        MEM_CHECK + decls + text + '\n!0 = !{!"branch_weights", i32 1000, i32 1}\n!1 = !{}\n',
        pcs_of_index,
    )
