"""bpfkit's own verifier: the kernel's checks, in pure Python, without bpf().

It walks every path of a linked program depth first, as the kernel does (kernel/bpf/
verifier.c, do_check): registers hold :class:`Reg` values (numbers as
:class:`~bpfkit.verify.scalar.Scalar`; pointers to the context, the stack, a map, a map
value, the packet with its proven range, ring buffer memory, sockets); the stack holds
spilled registers and per-byte states; a conditional jump narrows both sides and explores
only the sides that can happen; a NULL check marks every copy of the pointer (same id);
helper calls are checked against the helper table and the program type's rules; acquired
references (ring buffer reservations, socket lookups) must be released before exit.
States at jump targets are remembered: a path reaching one with a state the remembered
(fully explored) one covers is pruned; a path coming back to the same state while it is
still being explored is an infinite loop.  Past 1,000,000 processed instructions the
program is too large, as in the kernel.

The verdict comes as a :class:`~bpfkit.verify.log.VerifierLog` (the path walked, states,
the reason in the kernel's words), so the explanation is made the same way as a kernel
log's.  Rules are those of Linux :data:`~bpfkit.verify.rules.KERNEL_RULES` for a
privileged loader (CAP_BPF + CAP_PERFMON: reading uninitialised stack is allowed).

This module holds the walk and the entry points; the rules are layered beside it, each a
base class of :class:`Verifier`: :mod:`~bpfkit.verify.pointers` (memory through each kind of
pointer), :mod:`~bpfkit.verify.transfer` (ALU, ``lddw``, conditional jumps),
:mod:`~bpfkit.verify.calls` (calls and exits); the values are in
:mod:`~bpfkit.verify.state` and state coverage in :mod:`~bpfkit.verify.prune`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bpfkit.errors import BpfkitError
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import Kind, Op, lookup
from bpfkit.obj.spec import ObjectSpec
from bpfkit.verify import scalar as sc
from bpfkit.verify.calls import CallRules
from bpfkit.verify.liveness import live_registers
from bpfkit.verify.log import Step, VerifierLog
from bpfkit.verify.prune import Entry, covers, is_ancestor
from bpfkit.verify.rules import ctx_rules
from bpfkit.verify.source import ProgramView, program_view
from bpfkit.verify.state import (
    BPF_MAX_VAR_OFF,
    LIMIT,
    MAX_STACK,
    MAX_STATES,
    NONE,
    UNKNOWN,
    ZERO,
    Frame,
    MapInfo,
    Reg,
    Reject,
    Slot,
    State,
    scalar_reg,
)

__all__ = [
    "BPF_MAX_VAR_OFF",
    "LIMIT",
    "MAX_STACK",
    "MAX_STATES",
    "NONE",
    "UNKNOWN",
    "ZERO",
    "Frame",
    "MapInfo",
    "Recorder",
    "Reg",
    "Reject",
    "Result",
    "Slot",
    "State",
    "Verifier",
    "attach_type_name",
    "map_infos",
    "prog_type_name",
    "verify_object_program",
    "verify_program",
    "view_of",
]


class _Node:
    """The path walked so far: a linked list (cheap to share between branches)."""

    __slots__ = ("idx", "reg", "rval", "parent")

    def __init__(self, idx: int, parent: _Node | None) -> None:
        self.idx = idx
        self.reg = -1  # the register the instruction wrote, and its value after
        self.rval: Reg | None = None
        self.parent = parent

    @property
    def state(self) -> str:
        return f"R{self.reg}={self.rval.text()}" if self.rval is not None else ""


@dataclass
class Result:
    """The verdict of :func:`verify_program`."""

    log: VerifierLog
    processed: int
    accepted: bool


class Recorder(Protocol):
    """What the walk tells a recorder (:class:`bpfkit.verify.trace.Trace`): the running
    function's registers and stack before and after each instruction, once per path."""

    def record(self, after: bool, pc: int, regs: list[Reg], stack: dict[int, Slot]) -> None:
        """Join one path's state before (``after`` False) or after instruction ``pc``."""


class Verifier(CallRules):
    """Verify one linked program (see the module docstring)."""

    def __init__(
        self, view: ProgramView, prog_type: str, maps: dict[int, MapInfo], attach_type: str = ""
    ) -> None:
        self.view = view
        self.prog_type = prog_type
        self.attach_type = attach_type
        self.ctx = ctx_rules(prog_type)
        self.maps = maps
        self.insns = view.insns
        self.ops: dict[int, Op | None] = {i: lookup(x) for i, x in view.insns.items()}
        self.end = max((i + x.width for i, x in view.insns.items()), default=0)
        self.next_id = 0
        self.processed = 0
        self.visited: dict[int, list[Entry]] = {}
        self.by_key: dict[tuple[int, tuple[object, ...]], Entry] = {}
        self.loop_seen: dict[int, tuple[tuple[int, ...], int, tuple[int, ...]]] = {}
        self.prune_points: set[int] = set()
        self.func_starts = {s for s, _ in view.functions}
        self.live = live_registers(self.insns, self.ops)
        self.limit = LIMIT
        self.global_calls: set[int] = set()  # call instructions that call a global function
        self.trace: Recorder | None = None  # set to record the states (bpfkit.verify.trace)

    # -- entry ---------------------------------------------------------------------------

    def run(self) -> Result:
        log = VerifierLog()
        try:
            self.check_cfg()
        except Reject as e:
            log.reason = str(e)
            log.reason_lines = [str(e)]
            return Result(log, 0, False)
        regs = [NONE] * 11
        regs[1] = Reg("ctx")
        regs[10] = Reg("fp", frame=0)
        start = State([Frame(regs, {})])
        stack: list[tuple[int, State, _Node | None, Entry | None]] = [(0, start, None, None)]
        while stack:
            pc, st, node, entry = stack.pop()
            try:
                self.walk(pc, st, node, entry, stack)
            except _Fail as f:
                steps: list[Step] = []
                n: _Node | None = f.node
                while n is not None:
                    ins = self.insns.get(n.idx)
                    steps.append(Step(n.idx, ins.opcode if ins else 0, _ktext(ins), n.state))
                    n = n.parent
                steps.reverse()
                log.steps = steps
                log.known_path = steps
                log.reason = f.reason
                log.reason_lines = [f.reason]
                log.processed = self.processed
                return Result(log, self.processed, False)
        log.processed = self.processed
        return Result(log, self.processed, True)

    # -- control flow --------------------------------------------------------------------

    def _check_subprogs(self) -> None:
        """The kernel's check_subprogs: a jump stays inside its function, and every
        function (main, called ones, callbacks) ends in an exit or a jump."""
        starts = sorted({0, *self.func_starts})
        ends = [*starts[1:], self.end]
        slots = sorted(self.insns)
        f = 0
        for n, i in enumerate(slots):
            while i >= ends[f]:
                f += 1
            insn, op = self.insns[i], self.ops[i]
            assert op is not None
            if op.kind in (Kind.JA, Kind.JCOND, Kind.MAY_GOTO):
                t = i + 1 + (insn.imm if op.kind is Kind.JA and op.width == 32 else insn.off)
                if not starts[f] <= t < ends[f]:
                    raise Reject(f"jump out of range from insn {i} to {t}")
            last = n + 1 == len(slots) or slots[n + 1] >= ends[f]
            if last and op.kind not in (Kind.EXIT, Kind.JA):
                raise Reject("last insn is not an exit or jmp")

    def check_cfg(self) -> None:
        """The kernel's check_cfg and instruction checks before the walk."""
        if not self.insns:
            raise Reject("last insn is not an exit or jmp")
        seen_slots = set(self.insns)
        for i, insn in self.insns.items():
            op = self.ops[i]
            if op is None:
                raise Reject(f"unknown opcode {insn.opcode:02x}")
            if op.kind in (Kind.JA, Kind.JCOND, Kind.MAY_GOTO) or (
                op.kind is Kind.CALL and insn.src == 1
            ):
                off = (
                    insn.imm
                    if (op.kind is Kind.JA and op.width == 32) or op.kind is Kind.CALL
                    else insn.off
                )
                t = i + 1 + off
                if t < 0 or t >= self.end:
                    if op.kind is Kind.CALL:
                        raise Reject("call to invalid destination")
                    raise Reject(f"jump out of range from insn {i} to {t}")
                if t not in seen_slots:
                    raise Reject(f"jump into the middle of ldimm64 insn {t - 1}")
                if op.kind is not Kind.CALL:
                    self.prune_points.add(t)
                    if op.kind is Kind.JCOND:
                        self.prune_points.add(i + 1)
                else:
                    self.func_starts.add(t)
            if op.kind is Kind.LDDW and insn.src == 4:
                self.func_starts.add(i + 1 + insn.imm)
        self._check_subprogs()
        last = max(self.insns)
        lop = self.ops[last]
        if lop is None or lop.kind not in (Kind.EXIT, Kind.JA):
            raise Reject("last insn is not an exit or jmp")
        # reachability (per function, from its entry)
        reach: set[int] = set()
        todo = [0, *sorted(self.func_starts)]
        while todo:
            i = todo.pop()
            if i in reach or i not in self.insns:
                continue
            reach.add(i)
            insn, op = self.insns[i], self.ops[i]
            assert op is not None
            nxt = i + insn.width
            if op.kind is Kind.EXIT:
                continue
            if op.kind is Kind.JA:
                todo.append(i + 1 + (insn.imm if op.width == 32 else insn.off))
                continue
            if op.kind in (Kind.JCOND, Kind.MAY_GOTO):
                todo.append(i + 1 + insn.off)
            if nxt >= self.end:
                raise Reject(f"jump out of range from insn {i} to {nxt}")
            todo.append(nxt)
        for i in sorted(self.insns):
            if i not in reach:
                raise Reject(f"unreachable insn {i}")

    def walk(
        self,
        pc: int,
        st: State,
        node: _Node | None,
        entry: Entry | None,
        stack: list[tuple[int, State, _Node | None, Entry | None]],
    ) -> None:
        """Follow one path from ``pc`` until it exits, is pruned or fails."""
        while True:
            if self.trace is not None and pc in self.prune_points:
                # a path pruned here reached it too: its state counts in the join
                self.trace.record(False, pc, st.cur.regs, st.cur.stack)
            if pc in self.prune_points:
                pruned, entry = self.prune(pc, st, node, entry)
                if pruned:
                    self.finish(entry)
                    return
            self.processed += 1
            if self.processed > self.limit:
                raise _Fail(f"BPF program is too large. Processed {self.limit + 1} insn", node)
            insn = self.insns[pc]
            op = self.ops[pc]
            assert op is not None
            node_here = _Node(pc, node)
            trace = self.trace
            if trace is not None and pc not in self.prune_points:
                trace.record(False, pc, st.cur.regs, st.cur.stack)
            try:
                res = self.step(pc, insn, op, st, node_here)
            except Reject as e:
                raise _Fail(str(e), node_here) from None
            if trace is not None and res is not None and op.kind is not Kind.EXIT:
                trace.record(True, pc, st.cur.regs, st.cur.stack)
                if res[1] is not None and op.kind is not Kind.JCOND:
                    # after a conditional jump: the fall-through edge's state, as the kernel
                    # prints it (the other edge's is the state before the jump's target)
                    trace.record(True, pc, res[1][1].cur.regs, res[1][1].cur.stack)
            r = _touched(op, insn)
            if r >= 0 and st.frames:
                node_here.reg, node_here.rval = r, st.cur.regs[r]
            node = node_here
            if res is None:  # exit of the main program
                self.finish(entry)
                return
            nxt, other = res
            if other is not None:
                opc, ost = other
                if entry is not None:
                    entry.branches += 1
                stack.append((opc, ost, node, entry))
            if nxt < 0:
                self.finish(entry)
                return
            pc = nxt

    def finish(self, entry: Entry | None) -> None:
        """A path ended: the remembered states it went through lose a pending branch."""
        while entry is not None:
            entry.branches -= 1
            if entry.branches > 0:
                return
            entry = entry.parent

    def prune(
        self, pc: int, st: State, node: _Node | None, entry: Entry | None
    ) -> tuple[bool, Entry | None]:
        """(pruned, entry): a covering explored state ends this path; an equal state still
        being explored on this path is an infinite loop; else remember this state."""
        key = st.key()
        same = self.by_key.get((pc, key))
        if same is not None and same.branches > 0 and is_ancestor(same, entry):
            raise _Fail(f"infinite loop detected at insn {pc}", node)
        lst = self.visited.setdefault(pc, [])
        for old in lst:
            if old.branches <= 0 and covers(old.state, st, self.live.get(pc)):
                return True, entry
        new = Entry(st.copy(), key, entry)
        lst.append(new)
        if len(lst) > MAX_STATES:
            lst.pop(0)
        self.by_key[(pc, key)] = new
        return False, new

    # -- one instruction -----------------------------------------------------------------

    def step(
        self, pc: int, insn: Insn, op: Op, st: State, node: _Node
    ) -> tuple[int, tuple[int, State] | None] | None:
        """Apply ``insn``; return (next pc, optional other branch) or None at program exit.
        Raises :class:`Reject` with the kernel's message."""
        f = st.cur
        k = op.kind
        nxt = pc + insn.width
        if k is Kind.ALU or k in (Kind.NEG, Kind.MOVSX, Kind.ENDIAN):
            self.alu(insn, op, f)
            return nxt, None
        if k is Kind.LDDW:
            f.regs[insn.dst] = self.lddw(insn)
            return nxt, None
        if k in (Kind.LOAD, Kind.LOAD_SX, Kind.LOAD_ACQ):
            self.read_reg(f, insn.src)
            val = self.mem_access(
                st, insn.src, insn.off, op.size, "read", None, signed=k is Kind.LOAD_SX
            )
            f.regs[insn.dst] = val
            return nxt, None
        if k in (Kind.STORE_IMM, Kind.STORE_REG, Kind.STORE_REL):
            self.read_reg(f, insn.dst)
            if k is Kind.STORE_IMM:
                v = scalar_reg(sc.const(insn.imm))
            else:
                v = self.read_reg(f, insn.src)
            self.mem_access(st, insn.dst, insn.off, op.size, "write", v)
            return nxt, None
        if k is Kind.ATOMIC:
            self.read_reg(f, insn.dst)
            v = self.read_reg(f, insn.src)
            if v.t != "scalar":
                raise Reject(f"R{insn.src} leaks addr into mem")
            self.mem_access(st, insn.dst, insn.off, op.size, "read", None)
            self.mem_access(st, insn.dst, insn.off, op.size, "write", UNKNOWN)
            if op.key == "cmpxchg":
                self.read_reg(f, 0)
                f.regs[0] = UNKNOWN if op.size == 8 else scalar_reg(sc.urange(0, sc.M32))
            elif "fetch" in op.key or op.key == "xchg":
                f.regs[insn.src] = UNKNOWN if op.size == 8 else scalar_reg(sc.urange(0, sc.M32))
            return nxt, None
        if k in (Kind.LD_ABS, Kind.LD_IND):
            if self.read_reg(f, 6).t != "ctx":
                raise Reject("at the time of BPF_LD_ABS|IND R6 != pointer to skb")
            if k is Kind.LD_IND:
                self.read_reg(f, insn.src)
            for r in range(1, 6):
                f.regs[r] = NONE
            f.regs[0] = UNKNOWN  # the kernel keeps no range of a legacy packet load
            return nxt, None
        if k is Kind.JA:
            return pc + 1 + (insn.imm if op.width == 32 else insn.off), None
        if k is Kind.MAY_GOTO:
            return pc + 1 + insn.off, (nxt, st.copy())
        if k is Kind.JCOND:
            return self.jcond(pc, insn, op, st)
        if k is Kind.CALL:
            return self.call(pc, insn, st)
        if k is Kind.EXIT:
            return self.exit(pc, st)
        raise Reject(f"unknown opcode {insn.opcode:02x}")


class _Fail(Exception):
    def __init__(self, reason: str, node: _Node | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.node = node


def _ktext(insn: Insn | None) -> str:
    if insn is None:
        return ""
    import re

    from bpfkit.disasm.kernel_syntax import format_kernel

    return re.sub(r"^\([0-9a-f]{2}\) ", "", format_kernel(insn))


def _touched(op: Op, insn: Insn) -> int:
    """The register the instruction writes (-1: none)."""
    if op.kind in (Kind.ALU, Kind.NEG, Kind.MOVSX, Kind.ENDIAN, Kind.LDDW, Kind.LOAD, Kind.LOAD_SX):
        return insn.dst
    if op.kind in (Kind.CALL, Kind.LD_ABS, Kind.LD_IND):
        return 0
    return -1


def map_infos(view: ProgramView) -> dict[int, MapInfo]:
    """The maps (and global data sections) a linked program's ``lddw``s name."""
    out: dict[int, MapInfo] = {}
    for fd, m in view.maps.items():
        out[fd] = MapInfo(
            m.type or 0, m.key_size or 4, m.value_size or 8, m.max_entries or 1, m.name
        )
    for fd, sec in view.data.items():
        size = view.data_sizes.get(sec, 1 << 20)
        out[fd] = MapInfo(2, 4, size, 1, sec, readonly=sec.startswith(".rodata"))
    return out


def verify_program(
    view: ProgramView,
    prog_type: str,
    maps: dict[int, MapInfo] | None = None,
    attach_type: str = "",
) -> Result:
    """Verify ``view`` as a ``prog_type`` program (``"xdp"``, ``"socket_filter"``, ...)
    loaded with expected attach type ``attach_type`` (``"cgroup_inet_egress"``; ``""``:
    none)."""
    v = Verifier(view, prog_type, map_infos(view) if maps is None else maps, attach_type)
    return v.run()


def view_of(insns: list[Insn], name: str = "prog") -> ProgramView:
    """A program view of bare instructions (no object: one function, no line info); its
    ``lddw`` map fds are the keys of the ``maps`` given to :func:`verify_program`."""
    by_slot: dict[int, Insn] = {}
    slot = 0
    for insn in insns:
        by_slot[slot] = insn
        slot += insn.width
    return ProgramView(name, "", by_slot, [(0, name)])


def prog_type_name(obj: ObjectSpec, name: str) -> str:
    """The program type of ``name`` as the section name says (``xdp``, ``kprobe``, ...)."""
    from bpfkit.obj.sections import section_type
    from bpfkit.uapi import ProgType

    spec = obj.program(name)
    try:
        pt = section_type(spec.section).prog_type
    except BpfkitError:
        return "unspec"
    return ProgType(pt).name.lower()


def verify_object_program(obj: ObjectSpec, name: str, prog_type: str | None = None) -> Result:
    """Verify program ``name`` of ``obj`` (linked with its sub-programs)."""
    view = program_view(obj, name)
    attach = ""
    if prog_type is None:  # the section's type, and its expected attach type
        prog_type = prog_type_name(obj, name)
        attach = attach_type_name(obj, name)
    return verify_program(view, prog_type, attach_type=attach)


def attach_type_name(obj: ObjectSpec, name: str) -> str:
    """The expected attach type the section of ``name`` gives (``cgroup_inet_egress``),
    or ``""`` if none."""
    from bpfkit.uapi import AttachType

    at = obj.program(name).expected_attach_type
    if not at:
        return ""  # 0 is also cgroup_inet_ingress: the kernel's default either way
    try:
        return AttachType(at).name.lower()
    except ValueError:
        return ""
