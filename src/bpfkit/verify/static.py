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
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

from bpfkit.errors import BpfkitError
from bpfkit.isa.insn import Insn
from bpfkit.isa.semantics import compute
from bpfkit.isa.table import Kind, Op, lookup
from bpfkit.obj.spec import ObjectSpec
from bpfkit.uapi.helpers import by_id
from bpfkit.verify import scalar as sc
from bpfkit.verify.liveness import live_registers
from bpfkit.verify.log import Step, VerifierLog
from bpfkit.verify.rules import ctx_rules, helper_allowed, return_range
from bpfkit.verify.scalar import Empty, Scalar
from bpfkit.verify.source import ProgramView, program_view

LIMIT = 1_000_000
MAX_STATES = 12  # states remembered per instruction (the oldest are forgotten)
MAX_STACK = 512
BPF_MAX_VAR_OFF = 1 << 29
ZERO = sc.const(0)

# Map types whose lookups return a value that is never NULL for a constant in-range key.
_ARRAYS = {2, 6}  # array, percpu_array
_RINGBUF = 27


class Reject(Exception):
    """A rule was broken at the current instruction."""


@dataclass(frozen=True, slots=True)
class MapInfo:
    """What the verifier knows of a map a ``lddw`` names."""

    type: int
    key_size: int
    value_size: int
    max_entries: int
    name: str
    readonly: bool = False


@dataclass(frozen=True, slots=True)
class Reg:
    """One register's abstract value."""

    t: str  # none, scalar, ctx, fp, map_ptr, map_value, pkt, pkt_end, pkt_meta, mem, sock, btf, func
    s: Scalar = ZERO  # the number (scalar) or the variable part of a pointer's offset
    off: int = 0  # fixed offset of a pointer
    id: int = 0  # NULL-check / packet-range group
    null: bool = False
    ref: int = 0  # reference this pointer holds (0: none)
    rng: int = 0  # packet: bytes proven readable from the pointer's base
    size: int = 0  # map value or memory size
    frame: int = 0  # stack pointers: the frame they point into
    mp: MapInfo | None = None

    def name(self) -> str:
        """The kernel's name of the type (``map_value_or_null``)."""
        n = {"fp": "fp", "mem": "ringbuf_mem", "sock": "sock", "btf": "ptr_"}.get(self.t, self.t)
        return n + ("_or_null" if self.null else "")

    def text(self) -> str:
        """The kernel verifier's notation (Linux 6.18, print_reg_state): ``17``,
        ``scalar(smin=0,...)``, ``fp-16``, ``pkt(r=14)``, ``map_value_or_null(id=1,
        map=counts,ks=4,vs=8)``; ``?`` for a register never written."""
        if self.t == "scalar":
            return self.s.text()
        if self.t == "none":
            return "?"
        if self.t == "fp" and not self.s.mask:
            return f"fp{self.off + _s64(self.s.value)}" if self.off or self.s.value else "fp0"
        bits = []
        if self.id:
            bits.append(f"id={self.id}")
        if self.ref:
            bits.append(f"ref_obj_id={self.ref}")
        if self.mp is not None and self.t in ("map_ptr", "map_value"):
            bits.append(f"map={self.mp.name},ks={self.mp.key_size},vs={self.mp.value_size}")
        if self.off:
            bits.append(f"off={self.off}")
        if self.t in ("pkt", "pkt_meta"):
            bits.append(f"r={self.rng}")
        if self.t == "mem":
            bits.append(f"sz={self.size}")
        if self.s.mask:
            bits += sc.ranges_text(self.s)
            if self.s.mask != sc.M64:
                bits.append(f"var_off=({self.s.value:#x}; {self.s.mask:#x})")
        elif self.s.value:
            bits.append(f"imm={self.s.value:x}")
        return f"{self.name()}({','.join(bits)})"


NONE = Reg("none")
UNKNOWN = Reg("scalar", sc.UNKNOWN)


def _scalar(s: Scalar) -> Reg:
    return Reg("scalar", s)


Slot = Reg | str  # a spilled register, or 8 characters (lowest address first): ? m 0


@dataclass
class Frame:
    """One function's registers and stack."""

    regs: list[Reg]
    stack: dict[int, Slot]  # 8-byte aligned offset (negative) -> slot
    callsite: int = -1  # where to return in the caller
    depth: int = 0  # deepest stack byte used

    def copy(self) -> Frame:
        return Frame(list(self.regs), dict(self.stack), self.callsite, self.depth)


@dataclass
class State:
    """Everything the verifier knows at one instruction of one path."""

    frames: list[Frame]
    refs: dict[int, int] = field(default_factory=dict)  # ref id -> allocating insn

    def copy(self) -> State:
        return State([f.copy() for f in self.frames], dict(self.refs))

    @property
    def cur(self) -> Frame:
        return self.frames[-1]

    def key(self) -> tuple[object, ...]:
        """Hashable, for exact comparisons (loop detection)."""
        return (
            tuple(
                (tuple(f.regs), tuple(sorted(f.stack.items(), key=lambda kv: kv[0])), f.callsite)
                for f in self.frames
            ),
            tuple(sorted(self.refs.items())),
        )


@dataclass
class _Entry:
    """A state remembered at a prune point."""

    state: State
    key: tuple[object, ...]
    parent: _Entry | None
    branches: int = 1


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


class Verifier:
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
        self.visited: dict[int, list[_Entry]] = {}
        self.by_key: dict[tuple[int, tuple[object, ...]], _Entry] = {}
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
        stack: list[tuple[int, State, _Node | None, _Entry | None]] = [(0, start, None, None)]
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
        entry: _Entry | None,
        stack: list[tuple[int, State, _Node | None, _Entry | None]],
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

    def finish(self, entry: _Entry | None) -> None:
        """A path ended: the remembered states it went through lose a pending branch."""
        while entry is not None:
            entry.branches -= 1
            if entry.branches > 0:
                return
            entry = entry.parent

    def prune(
        self, pc: int, st: State, node: _Node | None, entry: _Entry | None
    ) -> tuple[bool, _Entry | None]:
        """(pruned, entry): a covering explored state ends this path; an equal state still
        being explored on this path is an infinite loop; else remember this state."""
        key = st.key()
        same = self.by_key.get((pc, key))
        if same is not None and same.branches > 0 and _is_ancestor(same, entry):
            raise _Fail(f"infinite loop detected at insn {pc}", node)
        lst = self.visited.setdefault(pc, [])
        for old in lst:
            if old.branches <= 0 and _covers(old.state, st, self.live.get(pc)):
                return True, entry
        new = _Entry(st.copy(), key, entry)
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
                v = _scalar(sc.const(insn.imm))
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
                f.regs[0] = UNKNOWN if op.size == 8 else _scalar(sc.urange(0, sc.M32))
            elif "fetch" in op.key or op.key == "xchg":
                f.regs[insn.src] = UNKNOWN if op.size == 8 else _scalar(sc.urange(0, sc.M32))
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

    def read_reg(self, f: Frame, r: int) -> Reg:
        v = f.regs[r]
        if v.t == "none":
            raise Reject(f"R{r} !read_ok")
        return v

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    # -- ALU -----------------------------------------------------------------------------

    def alu(self, insn: Insn, op: Op, f: Frame) -> None:
        d = insn.dst
        if d == 10:
            raise Reject("frame pointer is read only")
        w = op.width
        key = op.key
        if op.kind is Kind.ALU and key == "mov":
            if op.source == "reg":
                v = self.read_reg(f, insn.src)
                if w == 64:
                    f.regs[d] = v
                elif v.t == "scalar":
                    f.regs[d] = _scalar(sc.zext32(v.s))
                else:
                    f.regs[d] = UNKNOWN if False else _scalar(sc.urange(0, sc.M32))
            else:
                imm = insn.imm & (sc.M64 if w == 64 else sc.M32)
                f.regs[d] = _scalar(sc.const(imm))
            return
        if op.kind is Kind.MOVSX:
            v = self.read_reg(f, insn.src)
            if v.t == "scalar" and v.s.const is not None:
                f.regs[d] = _scalar(sc.const(compute(op, v.s.const & _m(w), 0)))
            else:
                f.regs[d] = UNKNOWN if w == 64 else _scalar(sc.urange(0, sc.M32))
            return
        a = self.read_reg(f, d)
        if op.kind in (Kind.NEG, Kind.ENDIAN):
            if a.t != "scalar":
                raise Reject(f"R{d} pointer arithmetic with {key} operator prohibited")
            if a.s.const is not None:
                f.regs[d] = _scalar(sc.const(compute(op, a.s.const & _m(w), 0)))
            else:
                f.regs[d] = UNKNOWN if w == 64 else _scalar(sc.urange(0, sc.M32))
            return
        if op.source == "reg":
            b = self.read_reg(f, insn.src)
        else:
            b = _scalar(sc.const(insn.imm & sc.M64))
        if a.t == "scalar" and b.t == "scalar":
            f.regs[d] = _scalar(self.scalar_alu(op, key, a.s, b.s, w, insn))
            return
        f.regs[d] = self.ptr_alu(insn, op, key, a, b, w)

    def scalar_alu(self, op: Op, key: str, a: Scalar, b: Scalar, w: int, insn: Insn) -> Scalar:
        if (
            key in ("lsh", "rsh", "arsh")
            and op.source == "imm"
            and b.const is not None
            and b.const & _m(w) >= w
        ):
            raise Reject(f"invalid shift {insn.imm}")
        if key in ("div", "mod", "sdiv", "smod"):
            return sc.UNKNOWN  # the kernel tracks no range through a division (Linux 6.18)
        if a.const is not None and b.const is not None:
            r = compute(op, a.const & _m(w), b.const & _m(w))
            return sc.const(r)
        try:
            return sc.alu(key, a, b, w)
        except Empty:
            return sc.UNKNOWN if w == 64 else sc.urange(0, sc.M32)

    def ptr_alu(self, insn: Insn, op: Op, key: str, a: Reg, b: Reg, w: int) -> Reg:
        d = insn.dst
        opname = _OPNAME.get(key, key)
        if a.t != "scalar" and b.t != "scalar":
            if key == "sub" and w == 64:
                return UNKNOWN  # pointer - pointer: a number (privileged)
            raise Reject(f"R{d} pointer {opname} pointer prohibited")
        ptr, num, ptr_is_dst = (a, b, True) if a.t != "scalar" else (b, a, False)
        if w == 32:
            raise Reject(f"R{d} 32-bit pointer arithmetic prohibited")
        if key == "sub" and not ptr_is_dst:
            raise Reject(f"R{d} tried to subtract pointer from scalar")
        if key not in ("add", "sub"):
            if key in ("and", "or", "xor"):
                raise Reject(f"R{d} bitwise operator {opname} on pointer prohibited")
            raise Reject(f"R{d} pointer arithmetic with {opname} operator prohibited")
        if ptr.null:
            raise Reject(f"R{d} pointer arithmetic on {ptr.name()} prohibited")
        if ptr.t in ("map_ptr", "pkt_end", "sock", "func"):
            raise Reject(f"R{d} pointer arithmetic on {ptr.name()} prohibited")
        c = num.s.const
        if c is not None:
            delta = _s64(c) if key == "add" else -_s64(c)
            noff = ptr.off + delta
            if not -(1 << 29) < noff < (1 << 29):
                raise Reject(f"value {delta} makes {ptr.name()} pointer be out of bounds")
            return replace(ptr, off=noff)
        if ptr.t == "ctx":
            raise Reject(
                f"R{d} variable ctx access var_off=(0x0; 0xffffffff) disallowed"
                if False
                else f"dereference of modified ctx ptr R{d} off={ptr.off} disallowed"
            )
        if num.s.smin == sc.S64_MIN and key == "add" and num.s.umax == sc.M64 and ptr.t != "pkt":
            pass
        try:
            s = sc.alu(key, ptr.s, num.s, 64)
        except Empty:
            s = sc.UNKNOWN
        if ptr.t == "pkt":
            if num.s.umax >= (1 << 16) and key == "add" and num.s.smin < 0:
                raise Reject(
                    f"R{d} unbounded min value is not allowed"
                    if False
                    else "math between pkt pointer and register with unbounded min value is not allowed"
                )
            return replace(ptr, s=s, id=self.new_id(), rng=0)
        if num.s.smin < -(1 << 29) or num.s.smin == sc.S64_MIN:
            raise Reject(
                f"math between {ptr.name()} pointer and register with unbounded min value is not allowed"
            )
        if num.s.umax >= (1 << 29) and num.s.smin >= 0:
            raise Reject(
                f"math between {ptr.name()} pointer and register with unbounded max value is not allowed"
                if False
                else f"R{d} unbounded memory access, make sure to bounds check any such access"
            )
        return replace(ptr, s=s)

    def lddw(self, insn: Insn) -> Reg:
        if insn.src == 0:
            v = (insn.imm & sc.M32) | ((insn.imm_hi & sc.M32) << 32)
            return _scalar(sc.const(v))
        if insn.src in (1, 2):
            mi = self.maps.get(insn.imm)
            if mi is None:
                raise Reject(f"fd {insn.imm} is not pointing to valid bpf_map")
            if insn.src == 1:
                return Reg("map_ptr", mp=mi)
            return Reg("map_value", off=insn.imm_hi, size=mi.value_size, mp=mi)
        if insn.src == 4:
            return Reg("func", off=insn.imm)
        return Reg("btf")

    # -- memory --------------------------------------------------------------------------

    def mem_access(
        self,
        st: State,
        r: int,
        off: int,
        size: int,
        how: str,
        val: Reg | None,
        *,
        signed: bool = False,
    ) -> Reg:
        """Check a load or store through register ``r``; return the loaded value."""
        p = st.cur.regs[r]
        t = p.t
        if t == "scalar" or t in ("pkt_end", "func") or p.null:
            raise Reject(f"R{r} invalid mem access '{p.name() if t != 'scalar' else 'scalar'}'")
        if t == "fp":
            return self.stack_access(st, p, r, off, size, how, val, signed)
        if t == "ctx":
            return self.ctx_access(p, r, off, size, how, val)
        if how == "write" and val is not None and val.t != "scalar" and t != "fp":
            pass  # privileged programs may store pointers (they become numbers)
        if t in ("map_value", "mem"):
            lo = p.off + off
            if p.s.smin < 0:
                raise Reject(
                    f"R{r} min value is negative, either use unsigned index or do a if "
                    "(index >=0) check."
                )
            if p.s.umax >= BPF_MAX_VAR_OFF:
                raise Reject(
                    f"R{r} unbounded memory access, make sure to bounds check any such access"
                )
            lo_all, hi_all = lo + p.s.smin, lo + p.s.umax + size
            if lo_all < 0 or hi_all > p.size:
                bad = lo_all if lo_all < 0 else lo + p.s.umax
                what = "map value, value_size" if t == "map_value" else "memory, mem_size"
                raise Reject(f"invalid access to {what}={p.size} off={bad} size={size}")
            if how == "write" and p.mp is not None and p.mp.readonly:
                raise Reject(f"write into map forbidden, value_size={p.size} off={lo} size={size}")
            return self.loaded(size, signed)
        if t == "pkt" or t == "pkt_meta":
            lo = p.off + off
            if how == "write" and not self.ctx.packet_writable:
                raise Reject("cannot write into packet")
            if p.s.smin < 0:
                raise Reject(
                    f"R{r} min value is negative, either use unsigned index or do a if "
                    "(index >=0) check."
                )
            if lo < 0 or lo + size > p.rng or p.s.umax >= (1 << 16):
                raise Reject(
                    f"invalid access to packet, off={lo} size={size}, "
                    f"R{r}(id={p.id},off={lo},r={p.rng})"
                )
            return self.loaded(size, signed)
        if t == "sock":
            if lo_ok := (0 <= p.off + off and p.off + off + size <= 80):
                del lo_ok
                return self.loaded(size, signed)
            raise Reject(f"R{r} invalid sock access off={p.off + off} size={size}")
        return self.loaded(size, signed)  # btf and other pointers: not modelled

    def loaded(self, size: int, signed: bool) -> Reg:
        if size == 8:
            return UNKNOWN
        if signed:
            bits = 8 * size
            return _scalar(
                sc.sync(replace(sc.UNKNOWN, smin=-(1 << (bits - 1)), smax=(1 << (bits - 1)) - 1))
            )
        return _scalar(sc.urange(0, (1 << (8 * size)) - 1))

    def ctx_access(self, p: Reg, r: int, off: int, size: int, how: str, val: Reg | None) -> Reg:
        at = p.off + off
        if p.off or p.s.mask:
            raise Reject(f"dereference of modified ctx ptr R{r} off={p.off} disallowed")
        rules = self.ctx
        if rules.size is None:
            if how == "write":
                raise Reject(f"invalid bpf_context access off={at} size={size}")
            return self.loaded(size, False)
        bad = (
            at < 0
            or at + size > rules.size
            or at % size
            or (rules.exact_size is not None and size != rules.exact_size)
            or at in rules.forbidden
            or (how == "write" and (at not in rules.writable or size != 4))
        )
        kind = rules.pointers.get(at)
        if kind is not None and (size != 4 or how == "write"):
            bad = True
        if bad:
            raise Reject(f"invalid bpf_context access off={at} size={size}")
        if kind is not None:
            if kind == "pkt_end":
                return Reg("pkt_end")
            return Reg(kind, id=0, rng=0)
        return self.loaded(size, False)

    def stack_access(
        self,
        st: State,
        p: Reg,
        r: int,
        off: int,
        size: int,
        how: str,
        val: Reg | None,
        signed: bool,
    ) -> Reg:
        frame = st.frames[p.frame]
        if p.s.mask or p.s.value:
            lo = p.off + off + p.s.smin
            hi = p.off + off + p.s.smax + size
            if p.s.smin < -MAX_STACK or lo < -MAX_STACK or hi > 0:
                raise Reject(
                    f"invalid variable-offset {'read from' if how == 'read' else 'write to'} "
                    f"stack R{r}"
                )
            if how == "write":
                for o in range(lo, hi):
                    _set_byte(frame, o, "m")
                frame.depth = max(frame.depth, -lo)
                return NONE
            return self.loaded(size, signed)
        at = p.off + off
        if at % size and -MAX_STACK <= at < 0:
            raise Reject(f"misaligned stack access off 0+{p.off}+{off} size {size}")
        if at < -MAX_STACK or at + size > 0 or at >= 0:
            raise Reject(
                f"invalid {'read from' if how == 'read' else 'write to'} stack R{r} "
                f"off={at} size={size}"
            )
        frame.depth = max(frame.depth, -at)
        slot = at & ~7 if at >= 0 else -((-at + 7) // 8) * 8
        slot = (at // 8) * 8
        if how == "write":
            assert val is not None
            if size == 8 and at % 8 == 0:
                if val.t == "scalar" and val.s.const == 0:
                    frame.stack[slot] = "00000000"
                else:
                    frame.stack[slot] = val
                return NONE
            if val.t == "scalar" and val.s.const is not None:
                ch = "0" if val.s.const & ((1 << (8 * size)) - 1) == 0 else "m"
            else:
                ch = "m"
            for o in range(at, at + size):
                _set_byte(frame, o, ch)
            return NONE
        # read
        if size == 8 and at % 8 == 0:
            cur = frame.stack.get(slot)
            if isinstance(cur, Reg):
                return cur
            if cur == "00000000":
                return _scalar(ZERO)
            return UNKNOWN
        first = (at // 8) * 8
        cur = frame.stack.get(first)
        if isinstance(cur, Reg) and (at + size) <= first + 8:
            if cur.t == "scalar" and cur.s.const is not None:
                v = (cur.s.const >> (8 * (at - first))) & ((1 << (8 * size)) - 1)
                if signed:
                    v = sc.sext_val(v, 8 * size)
                return _scalar(sc.const(v))
            return self.loaded(size, signed)
        chars = [_byte(frame, o) for o in range(at, at + size)]
        if all(c == "0" for c in chars):
            return _scalar(ZERO)
        return self.loaded(size, signed)

    def check_mem_arg(self, st: State, r: int, size: int, write: bool, what: str) -> None:
        """A helper's memory argument: ``size`` bytes at register ``r``."""
        p = st.cur.regs[r]
        if p.t == "none":
            raise Reject(f"R{r} !read_ok")
        ok = {"fp", "pkt", "pkt_meta", "map_value", "mem"}
        if p.t not in ok or p.null:
            raise Reject(
                f"R{r} type={p.name() if p.t != 'scalar' else 'scalar'} expected=fp, pkt, "
                "pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_"
            )
        if size == 0:
            return
        if p.t == "fp":
            frame = st.frames[p.frame]
            at = p.off + p.s.smin
            hi = p.off + p.s.smax + size
            if at < -MAX_STACK or hi > 0:
                raise Reject(f"invalid indirect access to stack R{r} off={p.off} size={size}")
            frame.depth = max(frame.depth, -at)
            if write:
                for o in range(at, hi):
                    _set_byte(frame, o, "m")
            return
        # other memory: reuse the load checks on the first and last byte
        if size > 0:
            self.mem_access(st, r, 0, 1, "read", None)
            if p.t in ("pkt", "pkt_meta"):
                if p.off + size > p.rng:
                    raise Reject(
                        f"invalid access to packet, off={p.off} size={size}, "
                        f"R{r}(id={p.id},off={p.off},r={p.rng})"
                    )
            elif p.t in ("map_value", "mem"):
                if p.off + p.s.umax + size > p.size:
                    what2 = "map value, value_size" if p.t == "map_value" else "memory, mem_size"
                    raise Reject(f"invalid access to {what2}={p.size} off={p.off} size={size}")

    # -- jumps ---------------------------------------------------------------------------

    def jcond(self, pc: int, insn: Insn, op: Op, st: State) -> tuple[int, tuple[int, State] | None]:
        f = st.cur
        w = op.width
        key = "j" + op.key
        target = pc + 1 + insn.off
        fall = pc + 1
        a = self.read_reg(f, insn.dst)
        if op.source == "reg":
            b = self.read_reg(f, insn.src)
        else:
            b = _scalar(sc.const(insn.imm & sc.M64))
        if a.t == "scalar" and b.t == "scalar":
            taken = sc.branch_taken(key, a.s, b.s, w)
            if taken is None and target <= pc:
                self.loop_budget(pc, a.s, b.s)
            if taken is True:
                return target, None
            if taken is False:
                return fall, None
            other = st.copy()
            # other = taken side
            ok_t = self.narrow(other, insn, op, key, a, b, w)
            nkey = sc.negate(key)
            ok_f = True
            if nkey is not None:
                ok_f = self.narrow(st, insn, op, nkey, a, b, w)
            if not ok_t:
                return fall, None
            if not ok_f:
                return target, None
            return fall, (target, other)
        # pointers
        if a.null or b.null:
            ptr, num = (a, b) if a.null else (b, a)
            if num.t == "scalar" and num.s.const == 0 and key in ("jeq", "jne") and w == 64:
                other = st.copy()
                # on the side where ptr == 0 it is a NULL scalar, else it is a pointer
                null_side, ptr_side = (other, st) if key == "jeq" else (st, other)
                _mark_null(null_side, ptr.id, is_null=True)
                _mark_null(ptr_side, ptr.id, is_null=False)
                return fall, (target, other)
        if w == 64 and {a.t, b.t} <= {"pkt", "pkt_end", "pkt_meta"} and a.t != b.t:
            other = st.copy()
            self.pkt_compare(st, other, key, insn, a, b)
            return fall, (target, other)
        if a.t != "scalar" and b.t == "scalar" and b.s.const == 0 and key in ("jeq", "jne"):
            # a non-NULL pointer compared with 0: the comparison is known
            return (target if key == "jne" else fall), None
        other = st.copy()
        return fall, (target, other)

    def loop_budget(self, pc: int, a: Scalar, b: Scalar) -> None:
        """A loop whose compared value moves by the same step each time round, with an exit
        further away than the 1M-instruction budget allows: the kernel would walk it to the
        limit (each round is a new state), so stop now with its verdict.  The estimate is
        the largest distance, over the bounds that move, to the value compared with."""
        fields = (a.umin, a.umax, a.smin, a.smax, b.umin, b.umax, b.smin, b.smax)
        last = self.loop_seen.get(pc)
        self.loop_seen[pc] = (fields, self.processed, ())
        if last is None:
            return
        deltas = tuple(x - y for x, y in zip(fields, last[0], strict=True))
        self.loop_seen[pc] = (fields, self.processed, deltas)
        body = self.processed - last[1]
        if deltas != last[2] or body <= 0 or not any(deltas):
            return  # not a steady step (yet)
        targets = (b.umin, b.umax, b.smin, b.smax, a.umin, a.umax, a.smin, a.smax)
        rounds = max(
            abs(t - f) // abs(d) for f, d, t in zip(fields, deltas, targets, strict=True) if d
        )
        if self.processed + rounds * body > 2 * LIMIT:
            self.processed = LIMIT + 1
            raise Reject(f"BPF program is too large. Processed {LIMIT + 1} insn")

    def narrow(self, st: State, insn: Insn, op: Op, key: str, a: Reg, b: Reg, w: int) -> bool:
        """Narrow the registers of ``st`` by ``a key b``; False if it cannot hold."""
        try:
            na, nb = sc.refine(key, a.s, b.s, w)
        except Empty:
            return False
        f = st.cur
        _replace_scalar(f, insn.dst, a, na)
        if op.source == "reg":
            _replace_scalar(f, insn.src, b, nb)
        return True

    def pkt_compare(self, fall: State, taken: State, key: str, insn: Insn, a: Reg, b: Reg) -> None:
        """pkt vs pkt_end: the side where ``pkt + off <= end`` learns ``off`` bytes."""
        if a.t in ("pkt", "pkt_meta"):
            pkt, rel = a, key
        else:
            pkt, rel = b, sc.flip(key) if key in sc._FLIP else key
        if b.t == "pkt" and a.t == "pkt_meta":
            return
        if a.t == "pkt_meta" or b.t == "pkt_meta":
            return
        # rel now reads "pkt rel end"
        good: State | None = None
        strict = False
        if rel == "jgt":
            good = fall  # not (pkt > end): pkt <= end
        elif rel == "jge":
            good, strict = fall, True  # pkt < end
        elif rel == "jlt":
            good, strict = taken, True
        elif rel == "jle":
            good = taken
        # find_good_pkt_pointers: the fixed offset is proven (one more byte when the
        # comparison is strict), for every pointer of the same id; a variable part is
        # allowed if it is at most MAX_PACKET_OFF.
        if good is None or pkt.off < 0 or (pkt.off == 0 and strict):
            return
        if pkt.s.umax > 0xFFFF or pkt.s.umax + pkt.off > 0xFFFF:
            return
        rng = pkt.off + (1 if strict else 0)
        for fr in good.frames:
            for i, r in enumerate(fr.regs):
                if r.t == "pkt" and r.id == pkt.id and r.rng < rng:
                    fr.regs[i] = replace(r, rng=rng)
            for o, s in list(fr.stack.items()):
                if isinstance(s, Reg) and s.t == "pkt" and s.id == pkt.id and s.rng < rng:
                    fr.stack[o] = replace(s, rng=rng)

    # -- calls ---------------------------------------------------------------------------

    def call(self, pc: int, insn: Insn, st: State) -> tuple[int, tuple[int, State] | None]:
        f = st.cur
        if insn.src == 1:
            if len(st.frames) >= 8:
                raise Reject(f"the call stack of {len(st.frames) + 1} frames is too deep !")
            target = pc + 1 + insn.imm
            regs = [NONE] * 11
            for r in range(1, 6):
                regs[r] = f.regs[r]
            regs[10] = Reg("fp", frame=len(st.frames))
            st.frames.append(Frame(regs, {}, callsite=pc + 1))
            if target in self.view.global_funcs:
                self.global_calls.add(pc)
            depth = sum(max(fr.depth, 0) for fr in st.frames)
            if depth > MAX_STACK:
                raise Reject(f"combined stack size of {len(st.frames)} calls is {depth}. Too large")
            return target, None
        if insn.src == 2:
            for r in range(1, 6):
                f.regs[r] = NONE
            f.regs[0] = UNKNOWN
            return pc + 1, None
        h = by_id(insn.imm)
        if h is None:
            raise Reject(f"invalid func unknown#{insn.imm}")
        if not helper_allowed(h.name, self.prog_type):
            raise Reject(f"program of this type cannot use helper {h.name}#{insn.imm}")
        self.helper(pc, insn, h, st)
        return pc + 1, None

    def helper(self, pc: int, insn: Insn, h: object, st: State) -> None:
        from bpfkit.uapi.helpers import Helper

        assert isinstance(h, Helper)
        f = st.cur
        name = h.name
        args = h.args
        mp: MapInfo | None = None
        for i, a in enumerate(args[:5]):
            r = i + 1
            v = f.regs[r]
            if v.t == "none":
                raise Reject(f"R{r} !read_ok")
            kind = a.kind
            if kind == "map":
                if v.t != "map_ptr":
                    raise Reject(f"R{r} type={_tname(v)} expected=map_ptr")
                mp = v.mp
            elif kind == "ctx":
                if v.t != "ctx":
                    raise Reject(f"R{r} type={_tname(v)} expected=ctx")
            elif kind == "func":
                if v.t != "func":
                    raise Reject(f"R{r} type={_tname(v)} expected=func")
            elif kind == "ptr":
                nxt = args[i + 1] if i + 1 < len(args) else None
                if name in ("bpf_ringbuf_submit", "bpf_ringbuf_discard"):
                    if v.t != "mem" or v.null or not v.ref:
                        raise Reject(f"R{r} type={_tname(v)} expected=ringbuf_mem")
                    if v.off:
                        raise Reject(f"R{r} must have zero offset when passed to release func")
                    continue
                if name == "bpf_sk_release":
                    if v.t != "sock" or v.null or not v.ref:
                        raise Reject(f"R{r} type={_tname(v)} expected=sock")
                    continue
                if mp is not None and a.name in ("key", "value"):
                    size = mp.key_size if a.name == "key" else mp.value_size
                    self.check_mem_arg(st, r, size, False, a.name)
                    continue
                if nxt is not None and nxt.kind == "size":
                    sz = f.regs[r + 1]
                    if sz.t == "none":
                        raise Reject(f"R{r + 1} !read_ok")
                    if sz.t != "scalar":
                        raise Reject(f"R{r + 1} type={_tname(sz)} expected=scalar")
                    if sz.s.smin < 0:
                        raise Reject(
                            f"R{r + 1} min value is negative, either use unsigned or 'var &= const'"
                        )
                    if sz.s.umax >= BPF_MAX_VAR_OFF:
                        raise Reject(
                            f"R{r + 1} unbounded memory access, use 'var &= const' or "
                            "'if (var < const)'"
                        )
                    size = sz.s.umax
                    if v.t == "scalar" and v.s.const == 0 and sz.s.umax == 0:
                        continue
                    self.check_mem_arg(st, r, size, "const" not in a.ctype, a.name)
                    continue
                if v.t == "scalar" and name in _SCALAR_PTR_OK:
                    continue
                if v.t == "scalar":
                    raise Reject(
                        f"R{r} type=scalar expected=fp, pkt, pkt_meta, map_key, map_value, mem, "
                        "ringbuf_mem, buf, trusted_ptr_"
                    )
                if v.null:
                    raise Reject(
                        f"R{r} type={v.name()} expected=fp, pkt, pkt_meta, map_key, map_value, "
                        "mem, ringbuf_mem, buf, trusted_ptr_"
                    )
            elif kind in ("size", "flags", "scalar"):
                if v.t != "scalar" and name not in _SCALAR_PTR_OK and kind != "scalar":
                    raise Reject(f"R{r} type={_tname(v)} expected=scalar")
        # effects
        ret = UNKNOWN
        if name in ("bpf_ringbuf_submit", "bpf_ringbuf_discard", "bpf_sk_release"):
            ref = f.regs[1].ref
            if ref not in st.refs:
                raise Reject("R1 must be referenced when passed to release function")
            del st.refs[ref]
            for fr in st.frames:
                for i, rg in enumerate(fr.regs):
                    if rg.ref == ref:
                        fr.regs[i] = NONE
                for o, s in list(fr.stack.items()):
                    if isinstance(s, Reg) and s.ref == ref:
                        fr.stack[o] = "mmmmmmmm"
        if name in ("bpf_map_lookup_elem", "bpf_map_lookup_percpu_elem") and mp is not None:
            nid = self.new_id()
            never_null = False
            key = f.regs[2]
            if mp.type in _ARRAYS and key.t == "fp" and not key.s.mask:
                kv = self.stack_peek(st, key, mp.key_size)
                never_null = kv is not None and kv < mp.max_entries
            ret = Reg(
                "map_value",
                id=0 if never_null else nid,
                null=not never_null,
                size=mp.value_size,
                mp=mp,
            )
        elif name == "bpf_ringbuf_reserve":
            sz = f.regs[2]
            if sz.t != "scalar" or sz.s.const is None:
                raise Reject("R2 is not a known constant'")
            nid = self.new_id()
            ref = self.new_id()
            st.refs[ref] = pc
            ret = Reg("mem", id=nid, null=True, ref=ref, size=sz.s.const)
        elif name in ("bpf_sk_lookup_tcp", "bpf_sk_lookup_udp", "bpf_skc_lookup_tcp"):
            nid = self.new_id()
            ref = self.new_id()
            st.refs[ref] = pc
            ret = Reg("sock", id=nid, null=True, ref=ref)
        elif name == "bpf_loop":
            ret = UNKNOWN
        elif h.ret in ("void", ""):
            ret = UNKNOWN
        for r in range(1, 6):
            f.regs[r] = NONE
        f.regs[0] = ret

    def stack_peek(self, st: State, p: Reg, size: int) -> int | None:
        """The known value of ``size`` bytes on the stack at pointer ``p``, if known."""
        frame = st.frames[p.frame]
        at = p.off
        slot = (at // 8) * 8
        cur = frame.stack.get(slot)
        if isinstance(cur, Reg) and cur.t == "scalar" and cur.s.const is not None:
            if at + size <= slot + 8:
                return (cur.s.const >> (8 * (at - slot))) & ((1 << (8 * size)) - 1)
        if all(_byte(frame, o) == "0" for o in range(at, at + size)):
            return 0
        return None

    def exit(self, pc: int, st: State) -> tuple[int, tuple[int, State] | None] | None:
        f = st.cur
        if f.regs[0].t == "none":
            raise Reject("R0 !read_ok")
        if len(st.frames) > 1:
            r0 = f.regs[0]
            callsite = f.callsite
            st.frames.pop()
            caller = st.cur
            for r in range(1, 6):
                caller.regs[r] = NONE
            # A global function is verified on its own by the kernel: its caller learns
            # only that it returns a number (btf_check_subprog_call, Linux 5.6+).
            caller.regs[0] = UNKNOWN if callsite - 1 in self.global_calls else r0
            return callsite, None
        if st.refs:
            rid, at = next(iter(st.refs.items()))
            raise Reject(f"Unreleased reference id={rid} alloc_insn={at}")
        rng = return_range(self.prog_type, self.attach_type)
        r0 = f.regs[0]
        if rng is not None:  # check_return_code: hooks that act on the number returned
            if r0.t != "scalar":
                raise Reject(f"At program exit the register R0 is not a known value ({_tname(r0)})")
            if r0.s.smin < rng[0] or r0.s.smax > rng[1]:
                has = "".join(
                    f" {k}={v}"
                    for k, v, edge in (
                        ("smin", r0.s.smin, sc.S64_MIN),
                        ("smax", r0.s.smax, sc.S64_MAX),
                    )
                    if v != edge
                )
                raise Reject(
                    f"At program exit the register R0 has{has or ' unknown scalar value'} "
                    f"should have been in [{rng[0]}, {rng[1]}]"
                )
        return None


class _Fail(Exception):
    def __init__(self, reason: str, node: _Node | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.node = node


_SCALAR_PTR_OK = {"bpf_trace_printk", "bpf_snprintf"}
_OPNAME = {
    "add": "+=",
    "sub": "-=",
    "mul": "*=",
    "div": "/=",
    "mod": "%=",
    "and": "&=",
    "or": "|=",
    "xor": "^=",
    "lsh": "<<=",
    "rsh": ">>=",
    "arsh": "s>>=",
    "sdiv": "s/=",
    "smod": "s%=",
}


def _tname(v: Reg) -> str:
    return "scalar" if v.t == "scalar" else v.name()


def _m(w: int) -> int:
    return sc.M64 if w == 64 else sc.M32


def _s64(v: int) -> int:
    v &= sc.M64
    return v - (1 << 64) if v >> 63 else v


def _byte(frame: Frame, o: int) -> str:
    slot = (o // 8) * 8
    cur = frame.stack.get(slot)
    if cur is None:
        return "?"
    if isinstance(cur, Reg):
        return "m"
    return cur[o - slot]


def _set_byte(frame: Frame, o: int, ch: str) -> None:
    slot = (o // 8) * 8
    cur = frame.stack.get(slot)
    if isinstance(cur, Reg):
        cur = "mmmmmmmm"
    elif cur is None:
        cur = "????????"
    i = o - slot
    frame.stack[slot] = cur[:i] + ch + cur[i + 1 :]


def _replace_scalar(f: Frame, r: int, old: Reg, s: Scalar) -> None:
    """Give register ``r`` (and equal copies of it? no: only r) the narrowed value."""
    if old.t == "scalar" and r != 10:
        f.regs[r] = Reg("scalar", s)


def _mark_null(st: State, rid: int, *, is_null: bool) -> None:
    refs = {r.ref for fr in st.frames for r in fr.regs if r.null and r.id == rid and r.ref}
    for fr in st.frames:
        for i, r in enumerate(fr.regs):
            if r.null and r.id == rid:
                fr.regs[i] = _scalar(ZERO) if is_null else replace(r, null=False)
        for o, s in list(fr.stack.items()):
            if isinstance(s, Reg) and s.null and s.id == rid:
                fr.stack[o] = _scalar(ZERO) if is_null else replace(s, null=False)
    if is_null:
        for ref in refs:
            st.refs.pop(ref, None)


def _is_ancestor(old: _Entry, entry: _Entry | None) -> bool:
    while entry is not None:
        if entry is old:
            return True
        entry = entry.parent
    return False


def _scalar_covers(o: Scalar, n: Scalar) -> bool:
    return (
        o.umin <= n.umin
        and n.umax <= o.umax
        and o.smin <= n.smin
        and n.smax <= o.smax
        and o.u32min <= n.u32min
        and n.u32max <= o.u32max
        and o.s32min <= n.s32min
        and n.s32max <= o.s32max
        and (n.mask & ~o.mask) == 0
        and (n.value & ~o.mask) == (o.value & ~o.mask)
    )


def _reg_covers(o: Reg, n: Reg) -> bool:
    if o.t == "none" or o is n:
        return True
    if o.t != n.t:
        return False
    if o.t == "scalar":
        return _scalar_covers(o.s, n.s)
    if (o.off, o.null, o.ref != 0, o.size, o.frame, o.mp) != (
        n.off,
        n.null,
        n.ref != 0,
        n.size,
        n.frame,
        n.mp,
    ):
        return False
    if o.t == "pkt" and n.rng < o.rng:
        return False
    if o.null and o.id != n.id:
        return False
    return _scalar_covers(o.s, n.s)


def _covers(old: State, new: State, live: frozenset[int] | None = None) -> bool:
    """True if every path from ``new`` is safe because ``old``'s were (range containment;
    a register or stack byte ``old`` never had is never read on those paths; registers of
    the current function not in ``live`` are never read again)."""
    if len(old.frames) != len(new.frames) or set(old.refs) != set(new.refs):
        return False
    for fo, fn in zip(old.frames, new.frames, strict=True):
        if fo.callsite != fn.callsite:
            return False
        ro_regs, rn_regs = fo.regs, fn.regs
        for n in live if live is not None and fo is old.frames[-1] else range(11):
            ro, rn = ro_regs[n], rn_regs[n]
            if ro is rn or ro.t == "none":
                continue
            if ro.t != rn.t or not _reg_covers(ro, rn):
                return False
        for o, so in fo.stack.items():
            sn = fn.stack.get(o)
            if so is sn or so == sn:
                continue
            if isinstance(so, Reg):
                if not isinstance(sn, Reg) or not _reg_covers(so, sn):
                    if so.t == "scalar" and so.s.mask == sc.M64 and sn is not None:
                        continue
                    return False
            else:
                for i, ch in enumerate(so):
                    if ch == "?":
                        continue
                    cn = "?" if sn is None else ("m" if isinstance(sn, Reg) else sn[i])
                    if ch == "0" and cn != "0":
                        return False
                    if ch == "m" and cn == "?":
                        return False
    return True


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
