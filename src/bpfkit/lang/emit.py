"""IR to LLVM-syntax BPF assembly (what bpfkit's assembler reads), one function at a time.

Virtual registers live where :mod:`bpfkit.lang.regalloc` put them (r6-r9 or a stack
slot); r0-r5 are scratch.  The emitter counts the bytes it emits, so the line-info and
CO-RE records of ``.BTF.ext`` get exact instruction offsets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bpfkit.errors import CompileError
from bpfkit.lang.ir import (
    Alu,
    Arg,
    Atomic,
    Br,
    Call,
    CallLocal,
    CoreImm,
    DataRef,
    Ext,
    FrameAddr,
    FuncRef,
    Function,
    Jmp,
    Label,
    Load,
    Loc,
    MapRef,
    Mov,
    Neg,
    Ret,
    Slot,
    Store,
    Swap,
    VReg,
)
from bpfkit.lang.regalloc import Allocation, allocate

STACK_LIMIT = 512
_ALU = {
    "add": "+=", "sub": "-=", "mul": "*=", "div": "/=", "sdiv": "s/=", "mod": "%=",
    "smod": "s%=", "or": "|=", "and": "&=", "xor": "^=", "lsh": "<<=", "rsh": ">>=",
    "arsh": "s>>=",
}  # fmt: skip
_JMP = {
    "eq": "==", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<=",
    "sgt": "s>", "sge": "s>=", "slt": "s<", "sle": "s<=",
}  # fmt: skip
_ATOMIC = {"add": "+=", "or": "|=", "and": "&=", "xor": "^="}
_SIZE = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}


def _imm32(v: int) -> bool:
    return -(1 << 31) <= v < (1 << 31)


@dataclass
class Emitted:
    """A function's assembly and what ``.BTF.ext`` needs about it."""

    name: str
    section: str
    lines: list[str]
    size: int  # bytes of code
    line_info: list[tuple[int, int, int]] = field(default_factory=list)  # (offset, line, col)
    core: list[tuple[int, int, str, int]] = field(default_factory=list)  # (off, type, access, kind)
    stack: int = 0
    static: bool = False  # a BPF function of .text (a local symbol), not a program
    param_names: list[str] = field(default_factory=list)


def layout(fn: Function, alloc: Allocation, where: str) -> int:
    """Give every slot its offset below r10; the stack size used."""
    off = 0

    def place(slot: Slot, base: int) -> int:
        end = base + slot.size
        end = (end + slot.align - 1) // slot.align * slot.align
        slot.offset = -end
        return end

    for s in fn.slots:
        if s.temp_offset is None:
            off = place(s, off)
    temp_base = (off + 7) // 8 * 8
    temp_end = temp_base
    for s in fn.slots:
        if s.temp_offset is not None:
            end = place(s, temp_base + s.temp_offset)
            temp_end = max(temp_end, end)
    off = temp_end
    for s in alloc.spills:
        off = place(s, off)
    if off > STACK_LIMIT:
        raise CompileError(
            f"{where}: function {fn.name} needs {off} bytes of stack; BPF allows {STACK_LIMIT}: "
            "use fewer or smaller local arrays/structs (or keep big ones in a PerCpuArray map)"
        )
    return off


class Emitter:
    """Turns one function into assembly lines."""

    def __init__(self, fn: Function, where: str) -> None:
        self.fn = fn
        self.alloc = allocate(fn)
        self.stack = layout(fn, self.alloc, where)
        self.out: list[str] = []
        self.size = 0
        self.line_info: list[tuple[int, int, int]] = []
        self.core: list[tuple[int, int, str, int]] = []

    # --- output ------------------------------------------------------------------------

    def ins(self, text: str, width: int = 8) -> None:
        self.out.append("\t" + text)
        self.size += width

    def _at(self, v: VReg) -> int | Slot:
        return self.alloc.where[v.id]

    @staticmethod
    def _mem(base: str, off: int) -> str:
        return f"({base} + {off})" if off >= 0 else f"({base} - {-off})"

    def _slot_mem(self, slot: Slot, off: int = 0) -> str:
        return self._mem("r10", slot.offset + off)

    def reg(self, op: VReg | int, scratch: int) -> str:
        """A register holding ``op`` (loading it into ``r{scratch}`` if needed)."""
        if isinstance(op, int):
            self.const(scratch, op)
            return f"r{scratch}"
        at = self._at(op)
        if isinstance(at, int):
            return f"r{at}"
        self.ins(f"r{scratch} = *(u64 *){self._slot_mem(at)}")
        return f"r{scratch}"

    def operand(self, op: VReg | int, scratch: int) -> str:
        """A register or a 32-bit immediate for ``op``."""
        if isinstance(op, int) and _imm32(op):
            return str(op)
        return self.reg(op, scratch)

    def const(self, r: int, v: int) -> None:
        v = v & ((1 << 64) - 1)
        sv = v - (1 << 64) if v >> 63 else v
        if _imm32(sv):
            self.ins(f"r{r} = {sv}")
        else:
            self.ins(f"r{r} = {sv} ll", 16)

    def load_arg(self, r: int, a: Arg) -> None:
        if isinstance(a, (VReg, int)):
            got = self.reg(a, r)
            if got != f"r{r}":
                self.ins(f"r{r} = {got}")
        elif isinstance(a, (MapRef, DataRef, FuncRef)):
            name = a.name if isinstance(a, (MapRef, FuncRef)) else a.symbol
            self.ins(f"r{r} = {name} ll", 16)
        elif isinstance(a, FrameAddr):
            self.ins(f"r{r} = r10")
            self.ins(f"r{r} += {a.slot.offset + a.off}")

    def put(self, dst: VReg, src: str) -> None:
        """Store register ``src`` into ``dst``'s home."""
        at = self._at(dst)
        if isinstance(at, int):
            if src != f"r{at}":
                self.ins(f"r{at} = {src}")
        else:
            self.ins(f"*(u64 *){self._slot_mem(at)} = {src}")

    def dst_reg(self, dst: VReg) -> str:
        """The register to compute ``dst`` in: its own, or r0 when spilled."""
        at = self._at(dst)
        return f"r{at}" if isinstance(at, int) else "r0"

    def base(self, b: VReg | Slot, scratch: int) -> tuple[str, int]:
        if isinstance(b, Slot):
            return "r10", b.offset
        return self.reg(b, scratch), 0

    # --- instructions ------------------------------------------------------------------

    def run(self) -> Emitted:
        fn = self.fn
        insns = fn.insns
        # The kernel wants a line_info record at each function's first instruction.
        while insns and isinstance(insns[0], Loc):
            self.emit(insns[0])
            insns = insns[1:]
        if fn.ctx is not None:
            self.put(fn.ctx, "r1")
        for i, p in enumerate(fn.params):
            self.put(p, f"r{i + 1}")
        for insn in insns:
            self.emit(insn)
        return Emitted(
            fn.name,
            fn.section,
            self.out,
            self.size,
            self.line_info,
            self.core,
            self.stack,
            static=fn.section == ".text",
            param_names=[p.name for p in fn.params],
        )

    def emit(self, insn: object) -> None:  # noqa: C901 - one case per IR instruction
        if isinstance(insn, Loc):
            if self.line_info and self.line_info[-1][0] == self.size:
                self.line_info.pop()
            self.line_info.append((self.size, insn.line, insn.column))
        elif isinstance(insn, Label):
            self.out.append(f"{insn.name}:")
        elif isinstance(insn, Mov):
            if isinstance(insn.src, (MapRef, DataRef, FuncRef, FrameAddr)):
                d = self.dst_reg(insn.dst)
                self.load_arg(int(d[1:]), insn.src)
                self.put(insn.dst, d)
            elif isinstance(insn.src, int):
                d = self.dst_reg(insn.dst)
                self.const(int(d[1:]), insn.src)
                self.put(insn.dst, d)
            else:
                self.put(insn.dst, self.reg(insn.src, 0))
        elif isinstance(insn, Alu):
            self.alu(insn)
        elif isinstance(insn, Neg):
            a = self.reg(insn.a, 0)
            if a != "r0":
                self.ins(f"r0 = {a}")
            self.ins("w0 = -w0" if insn.w32 else "r0 = -r0")
            self.put(insn.dst, "r0")
        elif isinstance(insn, Ext):
            self.ext(insn)
        elif isinstance(insn, Swap):
            a = self.reg(insn.src, 0)
            if a != "r0":
                self.ins(f"r0 = {a}")
            self.ins(f"r0 = be{insn.bits} r0")
            self.put(insn.dst, "r0")
        elif isinstance(insn, Load):
            b, off = self.base(insn.base, 1)
            d = self.dst_reg(insn.dst)
            self.ins(f"{d} = *({_SIZE[insn.size]} *){self._mem(b, off + insn.off)}")
            self.put(insn.dst, d)
        elif isinstance(insn, Store):
            b, off = self.base(insn.base, 1)
            if isinstance(insn.src, int) and _imm32(insn.src):
                src = str(insn.src)
            else:
                src = self.reg(insn.src, 2)
            self.ins(f"*({_SIZE[insn.size]} *){self._mem(b, off + insn.off)} = {src}")
        elif isinstance(insn, Atomic):
            b = self.reg(insn.base, 1)
            src = self.reg(insn.src, 2)
            if insn.size == 4:
                src = "w" + src[1:]
            mem = self._mem(b, insn.off)
            self.ins(f"lock *({_SIZE[insn.size]} *){mem} {_ATOMIC[insn.op]} {src}")
        elif isinstance(insn, Call):
            for i, arg in enumerate(insn.args):
                self.load_arg(i + 1, arg)
            self.ins(f"call {insn.helper}")
            if insn.dst is not None:
                self.put(insn.dst, "r0")
        elif isinstance(insn, CallLocal):
            for i, arg in enumerate(insn.args):
                self.load_arg(i + 1, arg)
            self.ins(f"call {insn.name}")
            if insn.dst is not None:
                self.put(insn.dst, "r0")
        elif isinstance(insn, Jmp):
            self.ins(f"goto {insn.label}")
        elif isinstance(insn, Br):
            a = self.reg(insn.a, 1)
            b = self.operand(insn.b, 2)
            self.ins(f"if {a} {_JMP[insn.op]} {b} goto {insn.label}")
        elif isinstance(insn, Ret):
            self.load_arg(0, insn.value)
            self.ins("exit")
        elif isinstance(insn, CoreImm):
            self.core.append((self.size, insn.type_id, insn.access, insn.kind))
            d = self.dst_reg(insn.dst)
            self.ins(f"{d} = {insn.value}")
            self.put(insn.dst, d)
        else:  # pragma: no cover - every IR instruction is handled above
            raise AssertionError(f"cannot emit {insn!r}")

    def alu(self, insn: Alu) -> None:
        d = self.dst_reg(insn.dst)
        # Compute in the destination register when b does not live there.
        if (
            isinstance(insn.b, VReg)
            and self._at(insn.b) == self._at(insn.dst)
            and isinstance(self._at(insn.dst), int)
        ):
            d = "r0"
        a = self.reg(insn.a, int(d[1:])) if not isinstance(insn.a, int) else None
        if a is None:
            self.const(int(d[1:]), insn.a)  # type: ignore[arg-type]
        elif a != d:
            self.ins(f"{d} = {a}")
        b = self.operand(insn.b, 2 if d != "r2" else 3)
        if insn.w32:
            dd = "w" + d[1:]
            bb = "w" + b[1:] if b.startswith("r") else b
            self.ins(f"{dd} {_ALU[insn.op]} {bb}")
        else:
            self.ins(f"{d} {_ALU[insn.op]} {b}")
        self.put(insn.dst, d)

    def ext(self, insn: Ext) -> None:
        src = self.reg(insn.src, 0)
        d = self.dst_reg(insn.dst)
        how = insn.how
        if how == "u32":
            self.ins(f"w{d[1:]} = w{src[1:]}")
        elif how in ("u8", "u16"):
            if src != d:
                self.ins(f"{d} = {src}")
            self.ins(f"{d} &= {255 if how == 'u8' else 65535}")
        elif how in ("s8", "s16", "s32"):
            self.ins(f"{d} = (s{how[1:]}){src}")
        else:  # u64 / s64: a plain copy
            if src != d:
                self.ins(f"{d} = {src}")
        self.put(insn.dst, d)


def emit_function(fn: Function, where: str) -> Emitted:
    """Allocate registers for ``fn`` and emit it."""
    return Emitter(fn, where).run()


def function_text(e: Emitted, sym_index: int) -> str:
    """The assembly of one function in its section, with its symbol."""
    head = [
        f'\t.section\t"{e.section}","ax",@progbits',
        f"\t.{'local' if e.static else 'globl'}\t{e.name}",
        "\t.p2align\t3",
        f"\t.type\t{e.name},@function",
        f"{e.name}:",
    ]
    tail = [f".Lfunc_end{sym_index}:", f"\t.size\t{e.name}, .Lfunc_end{sym_index}-{e.name}"]
    return "\n".join(head + e.lines + tail) + "\n"
