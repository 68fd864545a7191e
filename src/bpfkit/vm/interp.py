"""The interpreter: decode a program once into closures, then run them.

:meth:`Machine.compile` walks the instructions, finds each one's row in the ISA table
(:func:`bpfkit.isa.table.lookup`) and asks the handler registered for that row
(:data:`bpfkit.vm.handlers.HANDLERS`) for a closure.  A closure does its instruction and returns
the next pc, so running is ``pc = code[pc]()`` in a loop bounded by the instruction budget.

The code list is indexed by 8-byte slot; the second slot of ``lddw``, the slot after the
last instruction and every jump target outside the program hold closures that stop the
program with a :class:`~bpfkit.errors.VmError`, so no pc can leave the list.  Faults raised
inside a closure carry no pc; :meth:`Machine.execute` adds the pc and the instruction text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bpfkit.errors import VmError
from bpfkit.isa.insn import Insn
from bpfkit.isa.semantics import M64
from bpfkit.isa.table import Op, lookup
from bpfkit.vm.env import Env
from bpfkit.vm.handlers import (
    HANDLERS,
    ZERO_STACK,
    Closure,
    ProgramExit,
    handled_rows,
    loop_driver,
)
from bpfkit.vm.maps import VmMap
from bpfkit.vm.memory import MAX_FRAMES, STACK_SIZE, STACK_SLOT, Fault, Memory, Region

HelperFn = Callable[["Machine", int, int, int, int, int], int]
MAX_TAIL_CALLS = 33  # MAX_TAIL_CALL_CNT since Linux 5.17

__all__ = ["Code", "HelperFn", "Machine", "TailCall", "handled_rows", "insn_text"]


class TailCall(Exception):
    """Raised by ``bpf_tail_call`` to replace the running program."""

    def __init__(self, code: Code) -> None:
        super().__init__("tail call")
        self.code = code


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

    def text(self, pc: int) -> str:
        """The text of the instruction at ``pc``."""
        insn = self.insns[pc] if 0 <= pc < len(self.insns) else None
        if insn is None:
            return "no instruction" if pc >= self.length else "second half of lddw"
        return insn_text(insn)


@dataclass
class Machine:
    """Registers, memory, frames and helpers of one VM; compiles and runs programs."""

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

    # --- compiling -----------------------------------------------------------------------

    def compile(self, insns: Sequence[Insn], name: str = "") -> Code:
        """Decode ``insns`` once into a :class:`Code`."""
        slots: list[Insn | None] = []
        for insn in insns:
            slots.append(insn)
            if insn.width == 2:
                slots.append(None)
        n = len(slots)
        closures: list[Closure] = [self._stub("jump into the second half of lddw")] * n
        # After the program: falling off its end, then the bpf_loop driver (n + 1).
        stubs: list[Closure] = [self._stub("fell off the end of the program"), loop_driver(self)]
        bad_targets: dict[tuple[int, int], int] = {}
        problems: list[tuple[int, str]] = []  # what a loader would refuse, by pc

        def target(t: int, at: int) -> int:
            """The code index a jump from ``at`` to ``t`` goes to (a stub if ``t`` is bad)."""
            if 0 <= t < n and slots[t] is not None:
                return t
            if (at, t) not in bad_targets:
                what = "into the second half of an lddw" if 0 <= t < n else "outside the program"
                bad_targets[(at, t)] = n + len(stubs)
                msg = f"jump {what} (to pc {t}; the program has {n} slots)"
                stubs.append(self._stub(msg, at))
                problems.append((at, msg))
            return bad_targets[(at, t)]

        for pc, slot_insn in enumerate(slots):
            if slot_insn is None:
                continue
            insn = slot_insn
            op = lookup(insn)
            if op is None or insn.dst > 10 or insn.src > 10:
                msg = f"unknown instruction (opcode {insn.opcode:#04x})"
                if op is not None:
                    msg = f"invalid register in {op.mnemonic} (r0..r10 only)"
                closures[pc] = self._stub(msg)
                problems.append((pc, msg))
                continue
            reserved = op.reserved_nonzero(insn)
            if reserved:
                problems.append((pc, f"{op.mnemonic} uses reserved fields: {', '.join(reserved)}"))
            handler = HANDLERS[op]
            closures[pc] = handler(self, insn, op, pc, target)
        code = Code(closures + stubs, slots + [None] * len(stubs), name, n)
        code.problems = sorted(problems)
        return code

    def _stub(self, message: str, at: int | None = None) -> Closure:
        """A closure that stops the program (as if at pc ``at``, if given)."""

        def f() -> int:
            e = Fault(message)
            e.at = at
            raise e

        return f

    # --- running -------------------------------------------------------------------------

    def execute(self, code: Code, r1: int = 0, r2: int = 0) -> int:
        """Run ``code`` from pc 0 with ``r1``/``r2`` set; return r0."""
        R = self.regs
        R[:] = [0] * 11
        R[1], R[2] = r1 & M64, r2 & M64
        self.frames.clear()
        self.loops.clear()
        self._may_goto.clear()
        self.tail_calls = 0
        self.executed = 0
        stack0 = self.stacks[0]
        stack0.buf[:] = ZERO_STACK
        R[10] = stack0.base + STACK_SIZE
        left = self.budget
        pc = 0
        while True:
            closures = code.closures
            self.code_length = code.length
            n = -1
            try:
                for n in range(left):  # noqa: B007 (n is read after the loop)
                    pc = closures[pc]()
            except ProgramExit:
                self.executed += n + 1
                return R[0]
            except TailCall as tc:
                self.executed += n + 1
                left -= n + 1
                code = tc.code
                self.frames.clear()
                self.loops.clear()
                self._may_goto.clear()
                stack0.buf[:] = ZERO_STACK
                R[10] = stack0.base + STACK_SIZE
                pc = 0
                continue
            except Fault as e:
                self.executed += n + 1
                if e.at is not None:  # a bad jump: blame the jump, not where it led
                    pc = e.at
                raise VmError(
                    e.message,
                    pc=pc,
                    insn=code.text(pc),
                    address=e.address,
                    region=e.region,
                ) from None
            except VmError as e:
                if e.pc is not None:
                    raise
                raise VmError(str(e), pc=pc, insn=code.text(pc)) from None
            except Exception as e:  # a bug of ours: still only a VmError reaches the caller
                raise VmError(
                    f"internal error of the VM: {type(e).__name__}: {e}",
                    pc=pc,
                    insn=code.text(pc),
                ) from e
            self.executed += left
            raise VmError(
                f"instruction budget of {self.budget} exhausted",
                pc=pc,
                insn=code.text(pc),
            )

    # --- helpers' view -------------------------------------------------------------------

    def exit_program(self, r0: int) -> None:
        """Stop the whole program now with ``r0`` (LD_ABS out of bounds does this)."""
        self.regs[0] = r0 & M64
        raise ProgramExit()
