"""The state one VM program runs on: registers, memory, frames, helpers, run-time counters.

:class:`Cpu` is what instruction handlers (:mod:`bpfkit.vm.handlers`) and emulated helpers
(:mod:`bpfkit.vm.helpers`) act on; the :class:`~bpfkit.vm.interp.Interpreter` is a Cpu that
also compiles programs into closures (:class:`Code`) and runs them.  Keeping the state
here lets handlers and helpers name its type without importing the interpreter, which
imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bpfkit.isa.insn import Insn
from bpfkit.isa.semantics import M64
from bpfkit.isa.table import Kind, Op, lookup
from bpfkit.vm.env import Env
from bpfkit.vm.maps import VmMap
from bpfkit.vm.memory import MAX_FRAMES, STACK_SIZE, STACK_SLOT, Fault, Memory, Region

Closure = Callable[[], int]
"""One compiled instruction: does it and returns the next pc."""
HelperFn = Callable[["Cpu", int, int, int, int, int], int]
MAX_TAIL_CALLS = 33  # MAX_TAIL_CALL_CNT since Linux 5.17


class ProgramExit(Exception):
    """The outermost frame executed ``exit`` (or LD_ABS ended the program)."""


class TailCall(Exception):
    """Raised by ``bpf_tail_call`` to replace the running program."""

    def __init__(self, code: Code) -> None:
        super().__init__("tail call")
        self.code = code


def writes_r10(op: Op, insn: Insn) -> bool:
    """Whether ``insn`` may change r10 (stores, jumps, calls and exits do not: a call gives
    the callee its own frame's r10 and the exit gives the caller's back; helpers cannot).

    In a program where no instruction does, r10 is always the top of the current frame's
    stack, so ``r10 + constant`` inside the stack needs no bounds check (both engines use
    this)."""
    if op.kind in (Kind.STORE_IMM, Kind.STORE_REG, Kind.STORE_REL, Kind.JA, Kind.JCOND):
        return False
    if op.kind in (Kind.CALL, Kind.EXIT):
        return False
    if op.kind is Kind.ATOMIC:
        return insn.src == 10
    return insn.dst == 10


def insn_text(insn: Insn) -> str:
    """The instruction as llvm-objdump prints it (bare mnemonic if it has no such text)."""
    try:
        from bpfkit.disasm.llvm_text import format_insn

        return format_insn(insn)
    except Exception:  # an unknown or odd instruction must not hide the VmError itself
        op = lookup(insn)
        return op.mnemonic if op else f"opcode {insn.opcode:#04x}"


@dataclass
class Code:
    """A compiled program: one closure per slot, plus its instructions for messages."""

    closures: list[Closure]
    insns: list[Insn | None]  # by slot; None for lddw second halves and stubs
    name: str = ""
    length: int = 0  # slots of real instructions
    # (pc, why) of what a loader refuses: unknown opcodes, bad registers, reserved fields
    # that are not zero, jumps out of the program.  Vm(strict=True) refuses them up front.
    problems: list[tuple[int, str]] = field(default_factory=list)
    # (from pc, to pc) of each jump to a bad target -> the index of its stopping stub
    bad_jumps: dict[tuple[int, int], int] = field(default_factory=dict)

    def text(self, pc: int) -> str:
        """The text of the instruction at ``pc``."""
        insn = self.insns[pc] if 0 <= pc < len(self.insns) else None
        if insn is None:
            return "no instruction" if pc >= self.length else "second half of lddw"
        return insn_text(insn)


@dataclass
class Cpu:
    """Registers, memory, frames and helpers of one VM: what instruction handlers
    (:mod:`bpfkit.vm.handlers`) and helpers (:mod:`bpfkit.vm.helpers`) act on.  The
    :class:`~bpfkit.vm.interp.Interpreter` adds compiling and running."""

    memory: Memory
    helpers: dict[int, HelperFn]
    helper_names: dict[int, str]
    budget: int = 1_000_000
    regs: list[int] = field(default_factory=lambda: [0] * 11)
    frames: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    stacks: list[Region] = field(default_factory=list)
    map_handles: dict[int, VmMap] = field(default_factory=dict)
    env: Env = field(default_factory=Env)
    output: list[str] = field(default_factory=list)  # bpf_trace_printk messages
    ld_packet: Region | None = None  # what LD_ABS/LD_IND read (skb data)
    ld_offset: int = 0  # where skb->data starts inside ld_packet
    ld_net_offset: int = 14  # where the network header starts (SKF_NET_OFF loads)
    # lddw with a pseudo source (map, map value, ...): the value, or None if unknown.
    resolve_lddw: Callable[[Insn, Op], int | None] | None = None
    # A prog array slot's content to compiled code (for bpf_tail_call).
    load_program: Callable[[object], Code] | None = None
    code_length: int = 0  # slots of the running program (validates code addresses)
    # Running bpf_loop calls: [callback pc, ctx, iteration, count, return pc].
    loops: list[list[int]] = field(default_factory=list)
    tail_calls: int = 0
    executed: int = 0
    _may_goto: dict[int, int] = field(default_factory=dict)  # loop budget left, by depth

    def __post_init__(self) -> None:
        if not self.stacks:
            for depth in range(MAX_FRAMES):
                self.stacks.append(
                    self.memory.add(
                        f"stack of frame {depth}", bytearray(STACK_SIZE), slot=STACK_SLOT + depth
                    )
                )

    def _stub(self, message: str, at: int | None = None) -> Closure:
        """A closure that stops the program (as if at pc ``at``, if given)."""

        def f() -> int:
            e = Fault(message)
            e.at = at
            raise e

        return f

    def exit_program(self, r0: int) -> None:
        """Stop the whole program now with ``r0`` (LD_ABS out of bounds does this)."""
        self.regs[0] = r0 & M64
        raise ProgramExit()
