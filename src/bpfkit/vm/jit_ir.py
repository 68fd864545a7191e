"""The compiling engine's IR text builder (:mod:`bpfkit.vm.jit`): the native state's layout
and :class:`Emitter`, which writes one function's LLVM IR (registers in allocas, fields of the
native state, the semantics trees of :mod:`bpfkit.isa.semantics`, checked memory accesses).

The field indices here are the order of the fields of ``jit._Env`` (the ctypes structure the
native code reads and writes): change both together.
"""

from __future__ import annotations

from collections.abc import Callable

from bpfkit.errors import VmError
from bpfkit.isa import semantics
from bpfkit.isa.semantics import Expr
from bpfkit.vm.memory import STACK_SIZE


class JitUnsupportedError(VmError):
    """The program has something this engine does not translate (the interpreter runs it)."""


# --- the native state ----------------------------------------------------------------------

N_FRAME = 6  # return pc, r6, r7, r8, r9, r10


F_REGS, F_LEFT, F_STATUS, F_PC, F_ADDR, F_SIZE = 0, 11, 12, 13, 14, 15
F_TABLE, F_NSLOTS, F_DEPTH, F_FRAMES = 16, 17, 18, 19
S_EXIT, S_MEM, S_BUDGET, S_STUB, S_HELPER, S_DEPTH = 0, 1, 2, 3, 4, 5
CLOSURE_FLAG = 1 << 62  # helper id of "run the closure of pc", for the trampoline
CALLX_FLAG = 1 << 63  # helper id of a callx, for the trampoline


# --- IR -----------------------------------------------------------------------------------


def iconst(v: int, w: int) -> str:
    """An iW constant (LLVM wants it signed)."""
    return str(semantics.sext(v, w))


class Emitter:
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
            if index < F_FRAMES
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
            return iconst(e, w)
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
                mn = self.emit(f"icmp eq {t} {x}, {iconst(1 << (w - 1), w)}")
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
        self.raw(f"  store i64 {self.load_field(F_TABLE)}, ptr %tablep")
        self.raw(f"  store i64 {self.load_field(F_NSLOTS)}, ptr %nslotsp")
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
