"""The interpreter: decode a program once into closures, then run them.

:meth:`Interpreter.compile` walks the instructions, finds each one's row in the ISA table
(:func:`bpfkit.isa.table.lookup`) and asks the handler registered for that row
(:data:`bpfkit.vm.handlers.HANDLERS`) for a closure.  A closure does its instruction and returns
the next pc, so running is ``pc = code[pc]()`` in a loop bounded by the instruction budget.

The code list is indexed by 8-byte slot; the second slot of ``lddw``, the slot after the
last instruction and every jump target outside the program hold closures that stop the
program with a :class:`~bpfkit.errors.VmError`, so no pc can leave the list.  Faults raised
inside a closure carry no pc; :meth:`Interpreter.execute` adds the pc and the instruction text.
"""

from __future__ import annotations

from collections.abc import Sequence

from bpfkit.errors import VmError
from bpfkit.isa.insn import Insn
from bpfkit.isa.semantics import M64
from bpfkit.isa.table import lookup
from bpfkit.vm import pysource
from bpfkit.vm.cpu import (
    MAX_TAIL_CALLS,
    Closure,
    Code,
    Cpu,
    HelperFn,
    ProgramExit,
    TailCall,
    insn_text,
)
from bpfkit.vm.handlers import HANDLERS, ZERO_STACK, handled_rows, loop_driver
from bpfkit.vm.memory import STACK_SIZE, Fault

__all__ = [
    "MAX_TAIL_CALLS",
    "Code",
    "HelperFn",
    "Interpreter",
    "TailCall",
    "handled_rows",
    "insn_text",
]


class Interpreter(Cpu):
    """A :class:`~bpfkit.vm.cpu.Cpu` that compiles programs into closures and runs them
    (programs of the common kinds as one Python function: :mod:`bpfkit.vm.pysource`)."""

    fast = True  # run programs pysource translates through it (False: closures only)

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
        code.bad_jumps = bad_targets
        return code

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
        fast = pysource.compiled(code, self) if self.fast else None
        if fast is not None:  # the whole program as one Python function
            try:
                out = fast(left, R[1], R[2], R[10])
                left, R[:] = out[0], out[1:]  # the registers, as the closures leave them
            except pysource.Budget as b:
                self.executed = self.budget
                raise self.budget_error(code, b.pc) from None
            except pysource.At as a:
                raise self.error(code, a.pc, a.fault) from None
            except Exception as e:  # noqa: BLE001 - a bug of ours: still a VmError
                raise self.error(code, 0, e) from e
            self.executed = self.budget - left
            return R[0]
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
            except Exception as e:  # noqa: BLE001 - every fault becomes one VmError
                self.executed += n + 1
                raise self.error(code, pc, e) from (e if not isinstance(e, VmError) else None)
            self.executed += left
            raise self.budget_error(code, pc)

    def error(self, code: Code, pc: int, e: BaseException) -> VmError:
        """The VmError for exception ``e`` raised while running ``pc`` of ``code`` (both
        engines report faults through this)."""
        if isinstance(e, Fault):
            if e.at is not None:  # a bad jump: blame the jump, not where it led
                pc = e.at
            return VmError(e.message, pc=pc, insn=code.text(pc), address=e.address, region=e.region)
        if isinstance(e, VmError):
            return e if e.pc is not None else VmError(str(e), pc=pc, insn=code.text(pc))
        # a bug of ours: still only a VmError reaches the caller
        return VmError(
            f"internal error of the VM: {type(e).__name__}: {e}", pc=pc, insn=code.text(pc)
        )

    def budget_error(self, code: Code, pc: int) -> VmError:
        """The VmError of a run that used up its instruction budget before ``pc``."""
        return VmError(f"instruction budget of {self.budget} exhausted", pc=pc, insn=code.text(pc))
