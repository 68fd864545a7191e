"""Control-flow graphs of instruction streams: basic blocks, edges, loops and calls.

Pure code over :class:`~bpfkit.isa.insn.Insn` lists, so every layer can share it: the
``bpfkit cfg`` drawing (:mod:`bpfkit.disasm.graph`), the HTML explanation and the verifier.

Positions are 8-byte slot indices, as llvm-objdump numbers instructions (``lddw`` takes two
slots).  A block starts at slot 0, at every jump target and after every jump or ``exit``;
calls do not end a block (control comes back), they are listed in :attr:`Cfg.calls`.

Edge kinds:

- ``taken`` / ``fall-through``: the two ways out of a conditional jump (``if ... goto``,
  ``may_goto``);
- ``goto``: an unconditional jump (``goto``, ``gotol``);
- ``next``: a block running into the next one because the next one starts at a jump target.

A jump whose target lies outside the stream, or a fall-through off its end, goes nowhere
and is recorded in :attr:`Cfg.escapes` (the verifier rejects such programs; a drawing shows
them).  ``gotox`` (an indirect jump) ends a block with no known successors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bpfkit.isa.encoding import Class, JmpOp
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import Kind, Op, lookup

_GOTOL = Class.JMP32 | JmpOp.JA
_CONDITIONAL = frozenset({Kind.JCOND, Kind.MAY_GOTO})
_ENDS = frozenset({Kind.JA, Kind.JCOND, Kind.MAY_GOTO, Kind.GOTOX, Kind.EXIT})


def jump_distance(op: Op, insn: Insn) -> int | None:
    """Slots a jump skips (``off``, or ``imm`` for ``gotol``); None for non-jumps."""
    if op.kind not in (Kind.JA, Kind.JCOND, Kind.MAY_GOTO):
        return None
    return insn.imm if op.opcode == _GOTOL else insn.off


def call_target(op: Op, insn: Insn, slot: int) -> int | None:
    """Slot a local (bpf-to-bpf) call at ``slot`` goes to, as its ``imm`` says; else None.

    In an unrelocated object a call to a function of another section has ``imm == -1`` and a
    relocation naming the callee: the target is then this call itself (slot), which callers
    should resolve through the relocation.
    """
    if op.kind is not Kind.CALL or op.key != "local":
        return None
    return slot + 1 + insn.imm


@dataclass(frozen=True, slots=True)
class Block:
    """A basic block: instructions ``insns`` (list indices) at slots ``start .. end - 1``."""

    id: int
    start: int  # first slot
    end: int  # one past the last slot
    insns: tuple[int, ...]  # indices into the instruction list


@dataclass(frozen=True, slots=True)
class Edge:
    """Control passing from block ``src`` to block ``dst``."""

    src: int
    dst: int
    kind: str  # "taken", "fall-through", "goto", "next"
    back: bool = False  # True when it closes a loop (a back edge of a depth-first search)


@dataclass(frozen=True, slots=True)
class Call:
    """A call instruction inside block ``block``."""

    block: int
    slot: int
    kind: str  # "helper", "local", "kfunc", "callx"
    target: int | None  # slot of a local call's target, as its imm says
    imm: int


@dataclass(frozen=True, slots=True)
class Cfg:
    """The control-flow graph of one instruction stream."""

    blocks: tuple[Block, ...]
    edges: tuple[Edge, ...]
    calls: tuple[Call, ...]
    escapes: tuple[tuple[int, int], ...]  # (block, target slot) going outside the stream
    slots: tuple[int, ...]  # slot of each instruction

    def block_at(self, slot: int) -> Block | None:
        """The block starting at ``slot``, if any."""
        for b in self.blocks:
            if b.start == slot:
                return b
        return None

    @property
    def loops(self) -> tuple[Edge, ...]:
        """The back edges: each closes one loop."""
        return tuple(e for e in self.edges if e.back)


def build_cfg(insns: Sequence[Insn]) -> Cfg:
    """The control-flow graph of ``insns`` (a program, as decoded)."""
    slots: list[int] = []
    pos = 0
    for insn in insns:
        slots.append(pos)
        pos += insn.width
    total = pos
    ops = [lookup(i) for i in insns]
    leaders = {0} if insns else set()
    for n, (insn, op) in enumerate(zip(insns, ops, strict=True)):
        if op is None or op.kind not in _ENDS:
            continue
        after = slots[n] + insn.width
        if after < total:
            leaders.add(after)
        dist = jump_distance(op, insn)
        if dist is not None and 0 <= after + dist < total:
            leaders.add(after + dist)
    index_of = {s: n for n, s in enumerate(slots)}
    # A target inside an lddw's second slot is no instruction boundary: not a leader.
    starts = sorted(s for s in leaders if s in index_of)
    block_of_slot: dict[int, int] = {}
    blocks: list[Block] = []
    for b, start in enumerate(starts):
        end = starts[b + 1] if b + 1 < len(starts) else total
        first = index_of[start]
        last = index_of[end] if end in index_of else len(insns)
        blocks.append(Block(b, start, end, tuple(range(first, last))))
        block_of_slot[start] = b
    raw_edges: list[tuple[int, int, str]] = []
    escapes: list[tuple[int, int]] = []
    calls: list[Call] = []

    def link(src: int, target: int, kind: str) -> None:
        dst = block_of_slot.get(target)
        if dst is None:
            escapes.append((src, target))
        else:
            raw_edges.append((src, dst, kind))

    for blk in blocks:
        for n in blk.insns:
            op = ops[n]
            if op is not None and op.kind in (Kind.CALL, Kind.CALLX):
                kind = "callx" if op.kind is Kind.CALLX else op.key
                target = call_target(op, insns[n], slots[n])
                calls.append(Call(blk.id, slots[n], kind, target, insns[n].imm))
        last = blk.insns[-1]
        insn, op = insns[last], ops[last]
        after = slots[last] + insn.width
        if op is None or op.kind not in _ENDS:
            link(blk.id, after, "next")
            continue
        if op.kind in (Kind.EXIT, Kind.GOTOX):
            continue
        dist = jump_distance(op, insn)
        assert dist is not None
        if op.kind in _CONDITIONAL:
            link(blk.id, after + dist, "taken")
            link(blk.id, after, "fall-through")
        else:
            link(blk.id, after + dist, "goto")
    back = _back_edges(len(blocks), raw_edges)
    edges = tuple(Edge(s, d, k, (s, d) in back) for s, d, k in raw_edges)
    return Cfg(tuple(blocks), edges, tuple(calls), tuple(escapes), tuple(slots))


def _back_edges(n: int, edges: list[tuple[int, int, str]]) -> set[tuple[int, int]]:
    """Edges from a block to one on the current depth-first path from block 0 (iterative)."""
    succ: list[list[int]] = [[] for _ in range(n)]
    for s, d, _ in edges:
        succ[s].append(d)
    state = [0] * n  # 0 unseen, 1 on the path, 2 done
    back: set[tuple[int, int]] = set()
    for root in range(n):
        if state[root]:
            continue
        stack = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            if i < len(succ[node]):
                stack[-1] = (node, i + 1)
                nxt = succ[node][i]
                if state[nxt] == 1:
                    back.add((node, nxt))
                elif state[nxt] == 0:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                stack.pop()
    return back
