"""The compiling engine: a program's instructions as LLVM IR, compiled by llvmlite, run natively.

``Vm(..., engine="jit")`` runs programs through :class:`Jit`; ``engine="auto"`` does when
llvmlite is installed (``pip install bpfkit[jit]``) and the program has only instructions
this engine translates, and otherwise runs the interpreter (saying why once).

What it keeps from the interpreter (:mod:`bpfkit.vm.interp`), which stays the reference:

- **the same semantics**: ALU, byte swaps, sign extension, division and jump conditions
  are lowered from the expression trees of :mod:`bpfkit.isa.semantics`, the ones the
  interpreter renders as Python;
- **the same memory**: every load, store and atomic is checked against the VM's regions
  (a native table of ``host pointer, base, size, writable`` per address slot, rebuilt
  whenever :class:`~bpfkit.vm.memory.Memory` maps or unmaps a region), so the program reads
  and writes the very bytearrays the interpreter and the helpers use.  One check is
  dropped where it is proven: ``r10 + constant`` inside the stack, when no instruction
  writes r10 (r10 is then the top of the current frame's stack).  The optimizing tier
  first tries one region whose bounds it holds in registers (the current frame's stack
  for addresses derived from r10 in the block, else the packet) and looks the slot up in
  the table when that misses, so that LLVM can hoist the bounds out of loops;
- **the same budget**, counted per basic block: a block that would pass the budget does not
  start, and the error names the instruction where the interpreter stops;
- **local calls** with a frame stack (r6-r10 and the return pc) of the interpreter's depth
  limit, each frame on its own zeroed stack region; **helpers** called back in Python through
  one ctypes trampoline (tail calls included);
- **the same errors**: a fault returns a status to Python, which raises the interpreter's
  :class:`~bpfkit.errors.VmError` (pc, instruction, address, region) through
  :meth:`Interpreter.error <bpfkit.vm.interp.Interpreter.error>`.

This module is the VM's one use of ctypes (docs/design.md, tests/test_layers.py): it is
how native code is called, not a way to reach the kernel.

IR that LLVM's parser rejects raises :class:`JitUnsupportedError` (checked with ``parse_assembly``
and ``verify`` before any code generation, which could abort the process); compiled code
is cached on the :class:`~bpfkit.vm.interp.Code` it was made from.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bpfkit.errors import VmError
from bpfkit.isa import semantics
from bpfkit.isa.insn import Insn
from bpfkit.isa.semantics import Expr
from bpfkit.isa.table import Kind, Op, lookup
from bpfkit.vm.cpu import ProgramExit, writes_r10
from bpfkit.vm.handlers import ZERO_STACK
from bpfkit.vm.memory import (
    CODE_BASE,
    CTX_SLOT,
    MAX_FRAMES,
    PACKET_BASE,
    STACK_SIZE,
    STACK_SLOT,
    Fault,
    Region,
)

if TYPE_CHECKING:
    from bpfkit.vm.interp import Code, Interpreter

__all__ = ["Jit", "JitUnsupportedError", "available"]


class JitUnsupportedError(VmError):
    """The program has something this engine does not translate (the interpreter runs it)."""


_llvm: Any = None


def available() -> str | None:
    """None if the engine can run here, else why not (llvmlite missing)."""
    global _llvm
    if _llvm is None:
        try:
            import llvmlite.binding as llvm
        except ImportError:
            return "llvmlite is not installed (pip install 'bpfkit[jit]')"
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        _llvm = llvm
    return None


# --- the native state ----------------------------------------------------------------------

N_FRAME = 6  # return pc, r6, r7, r8, r9, r10


class _Env(ctypes.Structure):
    _fields_ = [
        ("regs", ctypes.c_uint64 * 11),
        ("left", ctypes.c_uint64),  # instruction budget left
        ("status", ctypes.c_uint64),
        ("pc", ctypes.c_uint64),  # where a fault happened
        ("addr", ctypes.c_uint64),  # the faulting address
        ("size", ctypes.c_uint64),  # access size | 256 for writes
        ("table", ctypes.c_uint64),  # region table: [host, base, size, writable] per slot
        ("nslots", ctypes.c_uint64),
        ("depth", ctypes.c_uint64),
        ("frames", ctypes.c_uint64 * (N_FRAME * MAX_FRAMES)),
    ]


_F_REGS, _F_LEFT, _F_STATUS, _F_PC, _F_ADDR, _F_SIZE = 0, 11, 12, 13, 14, 15
_F_TABLE, _F_NSLOTS, _F_DEPTH, _F_FRAMES = 16, 17, 18, 19
S_EXIT, S_MEM, S_BUDGET, S_STUB, S_HELPER, S_DEPTH = 0, 1, 2, 3, 4, 5

_HELPER = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64)
_ENTRY = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p)

# Kinds translated to native code; programs with others run in the interpreter.
_NATIVE = {
    Kind.ALU, Kind.NEG, Kind.MOVSX, Kind.ENDIAN, Kind.LDDW, Kind.LOAD, Kind.LOAD_SX,
    Kind.LOAD_ACQ, Kind.STORE_IMM, Kind.STORE_REG, Kind.STORE_REL, Kind.ATOMIC, Kind.JA,
    Kind.JCOND, Kind.CALL, Kind.CALLX, Kind.EXIT,
}  # fmt: skip
# Kinds run by calling the interpreter's closure from native code (rare, and free of
# control flow): legacy packet loads, address-space casts.
_BY_CLOSURE = {Kind.LD_ABS, Kind.LD_IND, Kind.ADDR_SPACE_CAST}
CLOSURE_FLAG = 1 << 62  # helper id of "run the closure of pc", for the trampoline
CALLX_FLAG = 1 << 63  # helper id of a callx, for the trampoline


# --- IR ----------------------------------------------------------------------------------


def _c(v: int, w: int) -> str:
    """An iW constant (LLVM wants it signed)."""
    return str(semantics.sext(v, w))


class _Emitter:
    """Builds one function's IR text.

    Registers live in allocas (SROA turns them into SSA values); inside a block each is
    loaded at most once and stored once, when the block branches away (:meth:`flush`).
    Faults and budget exits branch to one shared block each, whose phis say where.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.n = 0
        self.after_call: Callable[[], None] = lambda: None  # what follows a helper call
        self.cur: dict[int, str] = {}  # register -> its SSA value in this block
        self.dirty: set[int] = set()  # registers set in this block, not yet stored
        self.stackish: set[int] = {10}  # registers known to point into this frame's stack
        self.label = "entry"  # the block being written (phi edges name it)
        # incoming edges of the shared budget exit: (label, budget left, instruction index)
        self.budget_outs: list[tuple[str, str, int]] = []
        self.r10_fixed = False  # no instruction writes r10 (set by translate)
        self.top = ""  # host pointer of r10 in this block, once needed
        self.inline = False  # guess a region inline before calling @mem (optimizing tier)

    def tmp(self) -> str:
        self.n += 1
        return f"%t{self.n}"

    def emit(self, text: str) -> str:
        self.n += 1
        t = f"%t{self.n}"
        self.lines.append(f"  {t} = {text}")
        return t

    def raw(self, text: str) -> None:
        self.lines.append(text)

    def start(self, label: str) -> None:
        """A new IR block (inside the same BPF block: register values stay valid)."""
        self.lines.append(f"{label}:")
        self.label = label

    def begin(self, label: str) -> None:
        """A new BPF basic block: nothing is known about registers on entry."""
        self.start(label)
        self.cur.clear()
        self.dirty.clear()
        self.stackish = {10}
        self.top = ""

    # registers

    def reg(self, i: int) -> str:
        v = self.cur.get(i)
        if v is None:
            v = self.cur[i] = self.emit(f"load i64, ptr %r{i}")
        return v

    def setreg(self, i: int, v: str, stackish: bool = False) -> None:
        self.cur[i] = v
        self.dirty.add(i)
        if i == 10:
            self.top = ""
        if stackish:
            self.stackish.add(i)
        else:
            self.stackish.discard(i)

    def flush(self) -> None:
        """Store the registers this block set (before it branches away)."""
        for i in sorted(self.dirty):
            self.raw(f"  store i64 {self.cur[i]}, ptr %r{i}")
        self.dirty.clear()

    def br(self, label: str) -> None:
        self.flush()
        self.raw(f"  br label {label}")

    # the native state

    def field(self, index: int) -> str:
        return (
            f"%f{index}"
            if index < _F_FRAMES
            else self.emit(f"getelementptr inbounds i64, ptr %env, i64 {index}")
        )

    def load_field(self, index: int) -> str:
        return self.emit(f"load i64, ptr {self.field(index)}")

    def store_field(self, index: int, value: str) -> None:
        self.raw(f"  store i64 {value}, ptr {self.field(index)}")

    # the semantics trees

    def tree(self, e: Expr, w: int, a: str, b: str) -> str:
        """SSA value of tree ``e`` (iW, or i1 for conditions) with A = ``a``, B = ``b``."""
        t = f"i{w}"
        if isinstance(e, int):
            return _c(e, w)
        if isinstance(e, str):
            return a if e == "A" else b
        name = e[0]
        if name == "select":
            c = self.tree(e[1], w, a, b)
            x, y = self.tree(e[2], w, a, b), self.tree(e[3], w, a, b)
            return self.emit(f"select i1 {c}, {t} {x}, {t} {y}")
        x = self.tree(e[1], w, a, b)
        if name == "neg":
            return self.emit(f"sub {t} 0, {x}")
        if name in ("sext", "trunc", "bswap"):
            bits = e[2]
            if bits == w and name != "bswap":
                return x
            low = self.emit(f"trunc {t} {x} to i{bits}") if bits < w else x
            if name == "bswap":
                low = self.emit(f"call i{bits} @llvm.bswap.i{bits}(i{bits} {low})")
                return self.emit(f"zext i{bits} {low} to {t}") if bits < w else low
            return self.emit(f"{'sext' if name == 'sext' else 'zext'} i{bits} {low} to {t}")
        y = self.tree(e[2], w, a, b)
        if name in _ICMP:
            return self.emit(f"icmp {_ICMP[name]} {t} {x}, {y}")
        if name in ("udiv", "urem", "sdiv", "srem"):
            # Guarded by a select on B == 0 that evaluates both arms: never divide by zero
            # (or INT_MIN by -1), the arm's value is not used then.
            zero = self.emit(f"icmp eq {t} {y}, 0")
            safe = self.emit(f"select i1 {zero}, {t} 1, {t} {y}")
            if name[0] == "s":
                m1 = self.emit(f"icmp eq {t} {safe}, -1")
                mn = self.emit(f"icmp eq {t} {x}, {_c(1 << (w - 1), w)}")
                ovf = self.emit(f"and i1 {m1}, {mn}")
                safe = self.emit(f"select i1 {ovf}, {t} 1, {t} {safe}")
            return self.emit(f"{name} {t} {x}, {safe}")
        return self.emit(f"{_BINOP[name]} {t} {x}, {y}")

    # memory

    def table_entry(self, slot: str) -> str:
        tab = self.emit(f"inttoptr i64 {self.emit('load i64, ptr %tablep')} to ptr")
        return self.emit(f"getelementptr inbounds [4 x i64], ptr {tab}, i64 {slot}")

    def mem(self, pc: int, base: int, off: int, size: int, write: bool) -> str:
        """A checked host pointer for ``size`` bytes at register ``base`` + ``off``.

        ``r10 + off`` inside the stack needs no check when the program never writes r10
        (:attr:`r10_fixed`): r10 is then always the top of the current frame's stack.
        Every other access is looked up in the region table by ``@mem`` (its slot, the
        bounds and, for writes, the permission), which records a fault in the state.  The
        optimizing tier first tries one region whose bounds it holds in registers (a compare
        or two, which LLVM can hoist out of loops): for addresses derived from r10 in this
        block the current frame's stack, for the others the packet; ``@mem`` runs only when
        that guess misses.
        """
        if base == 10 and self.r10_fixed and -STACK_SIZE <= off <= -size:
            if not self.top:
                delta = self.emit("load i64, ptr %stkdelta")
                top = self.emit(f"add i64 {self.reg(10)}, {delta}")
                self.top = self.emit(f"inttoptr i64 {top} to ptr")
            return self.emit(f"getelementptr i8, ptr {self.top}, i64 {off}")
        addr = self.emit(f"add i64 {self.reg(base)}, {off}")
        flags = size | (256 if write else 0)
        if not self.inline:  # the fast tier: least code, a call that also records a fault
            hs = self.emit(
                f"call preserve_mostcc i64 @mem(ptr %env, i64 {addr}, i64 {flags | pc << 9})"
            )
            good = self.tmp()[1:]
            self.raw(f"  br i1 {self.emit(f'icmp ne i64 {hs}, 0')}, label %{good}, label %memout")
            self.start(good)
            return self.emit(f"inttoptr i64 {hs} to ptr")
        if base in self.stackish:
            lo = self.emit("load i64, ptr %stklo")
            o = self.emit(f"sub i64 {addr}, {lo}")
            inside = self.emit(f"icmp ule i64 {o}, {STACK_SIZE - size}")
            delta = "%stkdelta"
        else:
            lo = self.emit("load i64, ptr %pklo")
            o = self.emit(f"sub i64 {addr}, {lo}")
            limit = self.emit(f"load i64, ptr %pk{'w' if write else ''}lim{size}")
            inside = self.emit(f"icmp ult i64 {o}, {limit}")  # below data: o is huge
            delta = "%pkdelta"
        fast, slow, join = self.tmp()[1:], self.tmp()[1:], self.tmp()[1:]
        self.raw(f"  br i1 {inside}, label %{fast}, label %{slow}, !prof !0")
        self.start(fast)
        hf = self.emit(f"add i64 {addr}, {self.emit(f'load i64, ptr {delta}')}")
        self.raw(f"  br label %{join}")
        self.start(slow)  # the guess missed: the table says (out of line: rare)
        hs = self.emit(
            f"call preserve_mostcc i64 @mem(ptr %env, i64 {addr}, i64 {flags | pc << 9})"
        )
        ok = self.emit(f"icmp ne i64 {hs}, 0")
        self.raw(f"  br i1 {ok}, label %{join}, label %memout, !prof !0")
        self.start(join)
        h = self.emit(f"phi i64 [ {hf}, %{fast} ], [ {hs}, %{slow} ]")
        return self.emit(f"inttoptr i64 {h} to ptr")

    def load_regions(self) -> None:
        """Read the region table's place and the packet's bounds (at entry, after helpers)."""
        self.raw(f"  store i64 {self.load_field(_F_TABLE)}, ptr %tablep")
        self.raw(f"  store i64 {self.load_field(_F_NSLOTS)}, ptr %nslotsp")
        if not self.inline:
            return  # the fast tier makes no guesses
        ent = self.table_entry("0")  # slot 0: the packet (all zeros when there is none)
        vals = []
        for j in range(4):
            p = self.emit(f"getelementptr inbounds i64, ptr {ent}, i64 {j}")
            vals.append(self.emit(f"load i64, ptr {p}"))
        self.raw(f"  store i64 {vals[1]}, ptr %pklo")
        self.raw(f"  store i64 {self.emit(f'sub i64 {vals[0]}, {vals[1]}')}, ptr %pkdelta")
        # Per access size n: offsets below pklim<n> are inside (size - n + 1, or 0 when the
        # packet is shorter than n: nothing is); pkwlim<n> the same for writes.
        writable = self.emit(f"icmp ne i64 {vals[3]}, 0")
        for n in (1, 2, 4, 8):
            fits = self.emit(f"icmp uge i64 {vals[2]}, {n}")
            lim = self.emit(
                f"select i1 {fits}, i64 {self.emit(f'sub i64 {vals[2]}, {n - 1}')}, i64 0"
            )
            self.raw(f"  store i64 {lim}, ptr %pklim{n}")
            self.raw(
                f"  store i64 {self.emit(f'select i1 {writable}, i64 {lim}, i64 0')}, ptr %pkwlim{n}"
            )

    def set_stack(self, slot: str) -> None:
        """The frame whose stack is in ``slot`` is now the current one."""
        self.top = ""
        lo = self.emit(f"shl i64 {slot}, 32")
        host = self.emit(f"load i64, ptr {self.table_entry(slot)}")
        self.raw(f"  store i64 {lo}, ptr %stklo")
        self.raw(f"  store i64 {self.emit(f'sub i64 {host}, {lo}')}, ptr %stkdelta")


_ICMP = {"eq": "eq", "ne": "ne", "ult": "ult", "ule": "ule", "ugt": "ugt", "uge": "uge"}
_ICMP |= {"slt": "slt", "sle": "sle", "sgt": "sgt", "sge": "sge"}
_BINOP = {"add": "add", "sub": "sub", "mul": "mul", "and": "and", "or": "or", "xor": "xor"}
_BINOP |= {"shl": "shl", "lshr": "lshr", "ashr": "ashr"}


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
        if op is None or op.kind not in _NATIVE:
            continue  # invalid instructions are stubs (they fault as in the interpreter)
        if op.kind is Kind.CALL and op.key == "helper":
            if m.helper_names.get(insn.imm) == "bpf_loop":
                raise JitUnsupportedError("bpf_loop is run by the interpreter", pc=pc)
    for pc, insn in _slots(code):
        op = lookup(insn)
        if op is None or op.kind in _NATIVE or op.kind in _BY_CLOSURE:
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
    e = _Emitter()
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
        e.store_field(_F_STATUS, str(status))
        e.store_field(_F_PC, str(pc))
        # No registers and no budget: no fault's message needs them (a callx that needs
        # its registers stores them before asking Python), and saving them here would
        # make every fault edge keep every register alive.
        e.raw(f"  ret i64 {status}")

    def save_left() -> None:
        e.store_field(_F_LEFT, e.emit("load i64, ptr %left"))

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
    for i in range(_F_FRAMES):
        e.raw(f"  %f{i} = getelementptr inbounds i64, ptr %env, i64 {i}")
    for i in range(10):
        e.setreg(i, e.load_field(_F_REGS + i))
    # Every run starts in frame 0, whose stack top r10 is: say so (LLVM folds stack addresses).
    e.setreg(10, _c((STACK_SLOT << 32) + STACK_SIZE, 64))
    e.raw(f"  store i64 {e.load_field(_F_LEFT)}, ptr %left")
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
            terminated = _insn(e, m, code, op, insn, pc, nxt, target, fault_exit, save_left,
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
        e.store_field(_F_STATUS, str(S_BUDGET))
        e.store_field(_F_PC, "%bo_at")  # an instruction index: Python maps it to its pc
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
        _MEM_CHECK + decls + text + '\n!0 = !{!"branch_weights", i32 1000, i32 1}\n!1 = !{}\n',
        pcs_of_index,
    )


# The region table lookup of the fast tier: the host address of ``size`` bytes at ``addr``,
# or 0 if no region holds them (or a write meets read-only memory), having then recorded the
# fault in the state.  ``how`` is ``size | 256 if a write | pc << 9``.
_MEM_CHECK = f"""
define internal preserve_mostcc i64 @mem(ptr %env, i64 %addr, i64 %how) noinline {{
entry:
  %tabp = getelementptr inbounds i64, ptr %env, i64 {_F_TABLE}
  %tabi = load i64, ptr %tabp
  %tab = inttoptr i64 %tabi to ptr
  %nsp = getelementptr inbounds i64, ptr %env, i64 {_F_NSLOTS}
  %nslots = load i64, ptr %nsp
  %size = and i64 %how, 255
  %w = and i64 %how, 256
  %write = icmp ne i64 %w, 0
  %slot = lshr i64 %addr, 32
  %inb = icmp ult i64 %slot, %nslots
  br i1 %inb, label %look, label %bad
look:
  %ent = getelementptr inbounds [4 x i64], ptr %tab, i64 %slot
  %basep = getelementptr inbounds i64, ptr %ent, i64 1
  %sizep = getelementptr inbounds i64, ptr %ent, i64 2
  %wrp = getelementptr inbounds i64, ptr %ent, i64 3
  %base = load i64, ptr %basep
  %rsize = load i64, ptr %sizep
  %wr = load i64, ptr %wrp
  %off = sub i64 %addr, %base
  %end = add i64 %off, %size
  %c1 = icmp ule i64 %off, %rsize
  %c2 = icmp ule i64 %end, %rsize
  %ro = icmp eq i64 %wr, 0
  %refused = and i1 %write, %ro
  %c3 = xor i1 %refused, true
  %c12 = and i1 %c1, %c2
  %ok = and i1 %c12, %c3
  br i1 %ok, label %good, label %bad
good:
  %host = load i64, ptr %ent
  %p = add i64 %host, %off
  ret i64 %p
bad:
  %pc = lshr i64 %how, 9
  %sz = and i64 %how, 511
  %stp = getelementptr inbounds i64, ptr %env, i64 {_F_STATUS}
  store i64 {S_MEM}, ptr %stp
  %pcp = getelementptr inbounds i64, ptr %env, i64 {_F_PC}
  store i64 %pc, ptr %pcp
  %ap = getelementptr inbounds i64, ptr %env, i64 {_F_ADDR}
  store i64 %addr, ptr %ap
  %szp = getelementptr inbounds i64, ptr %env, i64 {_F_SIZE}
  store i64 %sz, ptr %szp
  ret i64 0
}}
"""


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


def _push_frame(e: _Emitter, fault_exit: Callable[..., None], pc: int, nxt: int) -> None:
    """A local call's frame: r6-r10 and the return pc saved, a zeroed stack, r10 at its top."""
    depth = e.load_field(_F_DEPTH)
    deep = e.emit(f"icmp uge i64 {depth}, {MAX_FRAMES - 1}")
    bad, ok = e.tmp()[1:], e.tmp()[1:]
    e.raw(f"  br i1 {deep}, label %{bad}, label %{ok}, !prof !0")
    e.start(bad)
    fault_exit(S_DEPTH, pc)
    e.start(ok)
    base = e.emit(f"mul i64 {depth}, {N_FRAME}")
    base = e.emit(f"add i64 {base}, {_F_FRAMES}")
    vals = [str(nxt)] + [e.reg(rn) for rn in (6, 7, 8, 9, 10)]
    for j, v in enumerate(vals):
        idx = e.emit(f"add i64 {base}, {j}")
        gep = e.emit(f"getelementptr inbounds i64, ptr %env, i64 {idx}")
        e.raw(f"  store i64 {v}, ptr {gep}")
    dp = e.emit(f"add i64 {depth}, 1")
    e.store_field(_F_DEPTH, dp)
    # the new frame's stack: zeroed, r10 at its top
    slot = e.emit(f"add i64 {dp}, {STACK_SLOT}")
    e.set_stack(slot)
    hp = e.emit(f"inttoptr i64 {e.emit(f'load i64, ptr {e.table_entry(slot)}')} to ptr")
    e.raw(f"  call void @llvm.memset.p0.i64(ptr {hp}, i8 0, i64 {STACK_SIZE}, i1 false)")
    top = e.emit(f"shl i64 {slot}, 32")
    e.setreg(10, e.emit(f"add i64 {top}, {STACK_SIZE}"), stackish=True)


def _insn(
    e: _Emitter,
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
                b = _c(insn.imm & semantics.mask(w), w)
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
        setreg(d, _c(value, 64))
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
            v = _c(insn.imm & semantics.mask(8 * n), 8 * n)
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
        depth = e.load_field(_F_DEPTH)
        top = e.emit(f"icmp eq i64 {depth}, 0")
        done, pop = e.tmp()[1:], e.tmp()[1:]
        e.raw(f"  br i1 {top}, label %{done}, label %{pop}")
        e.start(done)
        e.store_field(_F_REGS, reg(0))
        save_left()
        e.store_field(_F_STATUS, str(S_EXIT))
        e.raw(f"  ret i64 {S_EXIT}")
        e.start(pop)
        dm = e.emit(f"sub i64 {depth}, 1")
        e.store_field(_F_DEPTH, dm)
        base = e.emit(f"mul i64 {dm}, {N_FRAME}")
        base = e.emit(f"add i64 {base}, {_F_FRAMES}")
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
    if k in _BY_CLOSURE:
        for rn in range(11):
            e.store_field(_F_REGS + rn, reg(rn))
        save_left()
        e.emit(f"call i64 %helper(ptr %env, i64 {CLOSURE_FLAG | pc}, i64 {pc})")
        st = e.load_field(_F_STATUS)
        bad = e.emit(f"icmp ne i64 {st}, 0")
        out, ok = e.tmp()[1:], e.tmp()[1:]
        e.raw(f"  br i1 {bad}, label %{out}, label %{ok}, !prof !0")
        e.start(out)
        e.raw(f"  ret i64 {st}")
        e.start(ok)
        for rn in range(11):
            setreg(rn, e.load_field(_F_REGS + rn))
        return False
    if k is Kind.CALLX:
        # A function address: a local call through a switch on the entries; else a helper id.
        v = reg(d)
        for rn in range(11):
            reg(rn)  # loaded before the branches: every arm below may use them
        e.flush()
        off = e.emit(f"sub i64 {v}, {_c(CODE_BASE, 64)}")
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
            e.store_field(_F_REGS + rn, reg(rn))
        save_left()
        hid = e.emit(f"or i64 {v}, {_c(CALLX_FLAG, 64)}")
        r0 = e.emit(f"call i64 %helper(ptr %env, i64 {hid}, i64 {pc})")
        st = e.load_field(_F_STATUS)
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
            e.store_field(_F_REGS + rn, reg(rn))
        save_left()
        r0 = e.emit(f"call i64 %helper(ptr %env, i64 {insn.imm}, i64 {pc})")
        st = e.load_field(_F_STATUS)
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


# --- compiling and running ---------------------------------------------------------------


class _Compiled:
    """Native code of one :class:`Code`."""

    def __init__(self, engine: Any, fn: Any, pcs: list[int], ir: str, optimized: bool) -> None:
        self.engine = engine  # keeps the code alive
        self.fn = fn
        self.pcs = pcs
        self.ir = ir
        self.optimized = optimized
        self.executed = 0  # instructions run by this code, for tiering up


def compile_ir(ir: str, name: str = "", optimize: bool = False) -> tuple[Any, int]:
    """Compile IR text; return the execution engine and the address of ``@prog``.

    Two tiers: without ``optimize``, registers promoted (SROA) and LLVM's fast instruction
    selection (a few ms for a hundred instructions: what tests and one-off runs want); with
    it (IR translated with region guesses), SROA, instruction combining (which folds the
    bounds checks that a loop's own test already implies), CFG simplification and GVN, and
    the -O2 code generator (what a program run millions of times wants; LLVM's whole -O2 pipeline
    gave no faster code on these programs and took three times as long to compile).
    """
    why = available()
    if why:
        raise JitUnsupportedError(why)
    llvm = _llvm
    try:  # parse and verify first: code generation on bad IR may abort the process
        mod = llvm.parse_assembly(ir)
        mod.verify()
    except RuntimeError as e:
        why = f"LLVM refused the translation of {name or 'the program'}: {e}"
        raise JitUnsupportedError(why) from None
    # The execution engine owns its target machine: one each.
    tm = llvm.Target.from_default_triple().create_target_machine(opt=2 if optimize else 0, jit=True)
    pto = llvm.create_pipeline_tuning_options(speed_level=2 if optimize else 1)
    pb = llvm.create_pass_builder(tm, pto)
    fpm = llvm.create_new_function_pass_manager()
    fpm.add_sroa_pass()  # registers out of memory: cheap, and much better code
    if optimize:
        fpm.add_instruction_combine_pass()
        fpm.add_simplify_cfg_pass()
        fpm.add_new_gvn_pass()
    for f in mod.functions:
        if not f.is_declaration:
            fpm.run(f, pb)
    ee = llvm.create_mcjit_compiler(mod, tm)
    ee.finalize_object()
    return ee, ee.get_function_address("prog")


class Jit:
    """Runs :class:`~bpfkit.vm.interp.Code` natively for one :class:`~bpfkit.vm.interp.Interpreter`."""

    def __init__(self, machine: Interpreter, *, optimize: bool = False) -> None:
        why = available()
        if why:
            raise JitUnsupportedError(why)
        self.m = machine
        self.optimize = optimize  # compile with the optimizing tier from the start
        self.tier_up_after = 2_000_000  # instructions run before the optimizing tier
        self.env = _Env()
        self._table: Any = None
        self._views: dict[int, Any] = {}
        self._version = -1
        self._error: BaseException | None = None
        self._code: Code | None = None
        self._batch_packet: Region | None = None  # the packet region while a batch runs
        self._trampoline = _HELPER(self._helper)
        self._trampoline_ptr = ctypes.cast(self._trampoline, ctypes.c_void_p).value

    def prepare(self, code: Code, optimize: bool | None = None) -> _Compiled:
        """Native code for ``code`` (compiled once, then cached on it; optimized when asked,
        or once it has run :attr:`tier_up_after` instructions)."""
        got: _Compiled | None = getattr(code, "native", None)
        if optimize is None:
            optimize = self.optimize or (got is not None and got.executed > self.tier_up_after)
        if got is None or (optimize and not got.optimized):
            ir, pcs = translate(code, self.m, optimize)
            ee, addr = compile_ir(ir, code.name, optimize)
            got = _Compiled(ee, _ENTRY(addr), pcs, ir, optimize)
            code.native = got  # type: ignore[attr-defined]
        return got

    def _sync_table(self) -> None:
        mem = self.m.memory
        if mem.version == self._version:
            return
        top = max(mem.slots, default=0) + 1
        table = (ctypes.c_uint64 * (4 * top))()
        views: dict[int, Any] = {}
        for slot, r in mem.slots.items():
            view = self._views.get(id(r.buf))
            if view is None or view[0] is not r.buf:
                if r.size == 0:
                    view = (r.buf, None, 0)
                else:
                    try:
                        arr = (ctypes.c_char * r.size).from_buffer(r.buf)
                    except TypeError:  # read-only memory: a copy reads the same
                        arr = (ctypes.c_char * r.size).from_buffer_copy(r.buf)
                    view = (r.buf, arr, ctypes.addressof(arr))
            views[id(r.buf)] = view
            table[4 * slot] = view[2]
            table[4 * slot + 1] = r.base
            table[4 * slot + 2] = r.size
            table[4 * slot + 3] = 1 if r.writable else 0
        self._views = views
        self._table = table
        self.env.table = ctypes.addressof(table)
        self.env.nslots = top
        self._version = mem.version

    def _helper(self, env: int, helper_id: int, pc: int) -> int:
        m = self.m
        R = m.regs
        regs = self.env.regs
        for i in range(11):
            R[i] = regs[i]
        if self._batch_packet is not None:  # this packet's size, as the native table has it
            self._batch_packet.size = ctypes.c_uint64.from_address(self.env.table + 16).value
        try:
            if helper_id & CLOSURE_FLAG:
                assert self._code is not None
                self._code.closures[helper_id & ~CLOSURE_FLAG]()
                for i in range(11):
                    regs[i] = R[i]
                return 0
            if helper_id & CALLX_FLAG:  # callx to what is no function: a helper id?
                v = helper_id & ~CALLX_FLAG
                got = m.helpers.get(v) if v < 1 << 31 else None
                if got is None:  # the interpreter's closure says why
                    self.env.status = S_STUB
                    self.env.pc = pc
                    return 0
                fn = got
            else:
                fn = m.helpers[helper_id]
            r0 = fn(m, R[1], R[2], R[3], R[4], R[5]) & semantics.M64
            self._sync_table()
            return r0
        except BaseException as e:  # noqa: BLE001 - reported to execute() by status
            for i in range(11):  # what the helper left (bpf_tail_call sets r1)
                regs[i] = R[i]
            self._error = e
            self.env.status = S_HELPER
            self.env.pc = pc
            return 0

    def execute(self, code: Code, r1: int = 0, r2: int = 0) -> int:
        """Run ``code`` from pc 0 (as :meth:`Interpreter.execute <bpfkit.vm.interp.Interpreter.execute>`)."""
        m = self.m
        env = self.env
        compiled = self.prepare(code)
        self._code = code
        m.tail_calls = 0
        m.executed = 0
        m.frames.clear()
        R = m.regs
        R[:] = [0] * 11
        here = ctypes.addressof(env)
        ctypes.memset(here, 0, 88)  # r0-r10
        env.regs[1], env.regs[2] = r1 & semantics.M64, r2 & semantics.M64
        env.left = m.budget
        stack0 = m.stacks[0]
        while True:
            stack0.buf[:] = ZERO_STACK
            env.regs[10] = stack0.base + STACK_SIZE
            env.depth = 0
            env.status = 0
            self._error = None
            if m.memory.version != self._version:
                self._sync_table()
            before = env.left
            status = compiled.fn(here, self._trampoline_ptr)
            compiled.executed += before - env.left
            m.executed = m.budget - env.left
            R[:] = env.regs  # as the interpreter leaves them
            if status == S_EXIT:
                return R[0]
            pc = int(env.pc)
            if status == S_BUDGET:
                m.executed = m.budget
                raise m.budget_error(code, compiled.pcs[pc] if pc < len(compiled.pcs) else pc)
            if status == S_MEM:
                write = bool(env.size & 256)
                size = int(env.size & 255)
                try:
                    m.memory.check(int(env.addr), size, write)
                    err: BaseException = Fault(
                        f"{'write' if write else 'read'} of {size} bytes refused",
                        address=int(env.addr),
                    )  # noqa: E501
                except Fault as f:
                    err = f
                raise m.error(code, pc, err) from None
            if status == S_DEPTH:
                raise m.error(code, pc, Fault(f"call depth exceeds {MAX_FRAMES} frames"))
            if status == S_STUB:
                try:
                    code.closures[pc]()
                    err = Fault("the compiled program reached an instruction it cannot run")
                except BaseException as f:  # noqa: BLE001
                    err = f
                raise m.error(code, pc, err) from None
            # a helper raised
            exc = self._error
            from bpfkit.vm.interp import TailCall

            if isinstance(exc, TailCall):
                code = exc.code
                compiled = self.prepare(code)
                self._code = code
                for i in range(11):
                    env.regs[i] = R[i]
                env.regs[1] = R[1]
                env.status = 0
                continue
            if isinstance(exc, ProgramExit):
                return R[0]
            if isinstance(exc, KeyboardInterrupt):
                raise exc
            assert exc is not None
            raise m.error(code, pc, exc) from None


# --- batches -------------------------------------------------------------------------------


def _run_once(r1: str, r2: str) -> str:
    """The IR of one run of a driver loop (batch and repeat): registers zeroed, r1 and r2
    set to these IR values, r10 and the budget set, frame 0's stack zeroed, the program
    called; a fault branches to %fault, else to %next."""
    return f"""  call void @llvm.memset.p0.i64(ptr %env, i8 0, i64 88, i1 false)
  %r1p = getelementptr inbounds i64, ptr %env, i64 1
  store i64 {r1}, ptr %r1p
  %r2p = getelementptr inbounds i64, ptr %env, i64 2
  store i64 {r2}, ptr %r2p
  %r10p = getelementptr inbounds i64, ptr %env, i64 10
  store i64 {(STACK_SLOT << 32) + STACK_SIZE}, ptr %r10p
  %leftp = getelementptr inbounds i64, ptr %env, i64 {_F_LEFT}
  store i64 %budget, ptr %leftp
  %stp = getelementptr inbounds i64, ptr %env, i64 {_F_STATUS}
  store i64 0, ptr %stp
  %dp = getelementptr inbounds i64, ptr %env, i64 {_F_DEPTH}
  store i64 0, ptr %dp
  call void @llvm.memset.p0.i64(ptr %stack0, i8 0, i64 {STACK_SIZE}, i1 false)
  %rc = call i64 %prog(ptr %env, ptr %helper)
  %bad = icmp ne i64 %rc, 0
  br i1 %bad, label %fault, label %next"""


# One native loop over many packets for an XDP program: per packet, copy it into the packet
# region (its table entry gets the packet's size), reset the context from a pristine copy
# with data_end set, zero the registers and frame 0's stack, call @prog; stop at the first
# fault (its index is returned; Python replays that packet to raise its VmError).
_BATCH = f"""
declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)
declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)

define i64 @batch(ptr %env, ptr %helper, ptr %prog, ptr %data, ptr %lens, i64 %n, ptr %out,
                  ptr %pkt, ptr %ctx, ptr %ctx0, i64 %ctxlen, ptr %stack0, i64 %budget,
                  i64 %stride) {{
entry:
  %none = icmp eq i64 %n, 0
  br i1 %none, label %done, label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %next ]
  %at = phi i64 [ 0, %entry ], [ %at1, %next ]
  %i1 = add i64 %i, 1
  %fixed = icmp ne i64 %stride, 0
  br i1 %fixed, label %strided, label %listed
strided:
  %s0 = mul i64 %i, %stride
  br label %copy
listed:
  %lp = getelementptr inbounds i64, ptr %lens, i64 %i
  %l1 = load i64, ptr %lp
  br label %copy
copy:
  %start = phi i64 [ %s0, %strided ], [ %at, %listed ]
  %len = phi i64 [ %stride, %strided ], [ %l1, %listed ]
  %src = getelementptr inbounds i8, ptr %data, i64 %start
  call void @llvm.memcpy.p0.p0.i64(ptr %pkt, ptr %src, i64 %len, i1 false)
  %tabp = getelementptr inbounds i64, ptr %env, i64 {_F_TABLE}
  %tabi = load i64, ptr %tabp
  %tab = inttoptr i64 %tabi to ptr
  %sizep = getelementptr inbounds i64, ptr %tab, i64 2
  store i64 %len, ptr %sizep
  call void @llvm.memcpy.p0.p0.i64(ptr %ctx, ptr %ctx0, i64 %ctxlen, i1 false)
  %dend = add i64 %len, {PACKET_BASE}
  %dend32 = trunc i64 %dend to i32
  %dendp = getelementptr inbounds i8, ptr %ctx, i64 4
  store i32 %dend32, ptr %dendp, align 1
{_run_once(str(CTX_SLOT << 32), "%ctxlen")}
next:
  %at1 = add i64 %start, %len
  %r0 = load i64, ptr %env
  %op = getelementptr inbounds i64, ptr %out, i64 %i
  store i64 %r0, ptr %op
  %more = icmp ult i64 %i1, %n
  br i1 %more, label %loop, label %done
fault:
  ret i64 %i
done:
  ret i64 %n
}}
"""
_BATCH_FN = ctypes.CFUNCTYPE(
    ctypes.c_uint64,
    *([ctypes.c_void_p] * 5),
    ctypes.c_uint64,
    *([ctypes.c_void_p] * 3),
    ctypes.c_void_p,
    ctypes.c_uint64,
    ctypes.c_void_p,
    ctypes.c_uint64,
    ctypes.c_uint64,
)
_batch_driver: tuple[Any, Any] | None = None


def _driver() -> Any:
    global _batch_driver
    if _batch_driver is None:
        ee, _ = compile_ir(_BATCH.replace("@batch", "@prog"), "the batch driver", True)
        _batch_driver = (ee, _BATCH_FN(ee.get_function_address("prog")))
    return _batch_driver[1]


# The same program many times on one context, as BPF_PROG_TEST_RUN's ``repeat`` runs it (what
# bench/vm.py measures against the kernel's JIT): per run, registers zeroed, r1/r2/r10 set, the
# budget reset, frame 0's stack zeroed; stop at the first fault (its index is returned).
_REPEAT = f"""
declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)

define i64 @prog(ptr %env, ptr %helper, ptr %prog, i64 %n, i64 %r1, i64 %r2, ptr %stack0,
                 i64 %budget) {{
entry:
  %none = icmp eq i64 %n, 0
  br i1 %none, label %done, label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %next ]
  %i1 = add i64 %i, 1
{_run_once("%r1", "%r2")}
next:
  %more = icmp ult i64 %i1, %n
  br i1 %more, label %loop, label %done
fault:
  ret i64 %i
done:
  ret i64 %n
}}
"""
_REPEAT_FN = ctypes.CFUNCTYPE(
    ctypes.c_uint64,
    *([ctypes.c_void_p] * 3),
    *([ctypes.c_uint64] * 3),
    ctypes.c_void_p,
    ctypes.c_uint64,
)
_repeat_driver: tuple[Any, Any] | None = None


def repeat(jit: Jit, code: Code, r1: int, r2: int, n: int) -> tuple[int, int]:
    """Run ``code`` ``n`` times on the same context in one native call; ``(r0 of the last
    run, runs done)``: fewer than ``n`` when one faults (:meth:`Jit.execute` then gives its
    VmError)."""
    global _repeat_driver
    if _repeat_driver is None:
        ee, addr = compile_ir(_REPEAT, "the repeat driver", True)
        _repeat_driver = (ee, _REPEAT_FN(addr))
    m = jit.m
    compiled = jit.prepare(code)
    jit._code = code
    m.tail_calls = 0
    jit._sync_table()
    stack_host = jit._views[id(m.stacks[0].buf)][2]
    done = _repeat_driver[1](
        ctypes.addressof(jit.env),
        jit._trampoline_ptr,
        ctypes.cast(compiled.fn, ctypes.c_void_p).value,
        n,
        r1 & semantics.M64,
        r2 & semantics.M64,
        stack_host,
        m.budget,
    )
    m.executed = m.budget - int(jit.env.left)
    compiled.executed += m.executed * int(done)
    return int(jit.env.regs[0]), int(done)


def _address(buf: Any) -> int:
    return ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))


def run_batch(
    jit: Jit,
    code: Code,
    packets: bytes,
    lens: Any,
    size: int | None,
    n: int,
    ctx: Region,
    pkt: Region,
) -> tuple[list[int], int]:
    """Run ``code`` once for each of ``n`` packets back to back in ``packets`` (of lengths
    ``lens``, an ``array("Q")``, or each ``size`` bytes) in one native call; ``(r0 of each
    run, runs done)``: fewer runs than packets when one faults (the caller replays it for
    its VmError)."""
    import array

    m = jit.m
    compiled = jit.prepare(code)
    jit._code = code
    data = bytes(packets)  # read in place (a c_char_p shares the bytes object's buffer)
    offs = lens if lens is not None else array.array("Q")
    out = array.array("Q", bytes(8 * n))
    ctx0 = bytearray(ctx.buf)
    m.tail_calls = 0
    jit._sync_table()
    pkt_host = jit._views[id(pkt.buf)][2]
    ctx_host = jit._views[id(ctx.buf)][2]
    stack_host = jit._views[id(m.stacks[0].buf)][2]
    jit._batch_packet = pkt
    try:
        done = _driver()(
            ctypes.addressof(jit.env),
            jit._trampoline_ptr,
            ctypes.cast(compiled.fn, ctypes.c_void_p).value,
            ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value,
            offs.buffer_info()[0],
            n,
            out.buffer_info()[0],
            pkt_host,
            ctx_host,
            _address(ctx0),
            len(ctx0),
            stack_host,
            m.budget,
            0 if lens is not None else size or 0,
        )
    finally:
        jit._batch_packet = None
        pkt.size = len(pkt.buf)
        jit._version = -1  # the packet's table entry was changed: rebuild it next time
    return (out.tolist() if done == n else out[:done].tolist()), int(done)
