"""The interpreter's fast path: a whole program translated to one Python function.

:meth:`Interpreter.execute <bpfkit.vm.interp.Interpreter.execute>` runs closures, one call per
instruction.  For programs made of the common kinds (ALU, byte swaps, sign extension, lddw,
loads and stores, jumps, local calls, helper calls and exit) this module writes instead one
Python function whose registers are local variables and whose basic blocks are straight
code, chosen by a binary tree of ``if pc < N`` tests, and ``compile()``s it once per
program.  The arithmetic is :func:`bpfkit.isa.semantics.to_python`'s rendering of the same
expression trees the closures and the compiling engine use.

It keeps the interpreter's guarantees: every access checked against the regions (the same
lookup as the closures: slot, bounds, writable), the budget counted per basic block (a block
that would pass it does not start; the error names the instruction where the closures stop),
frames with the depth limit, and faults raised as the same VmError (through
:meth:`Interpreter.error <bpfkit.vm.interp.Interpreter.error>`).  Anything else (atomics,
legacy packet loads, callx, gotox, may_goto, tail calls, bpf_loop, stubs) keeps the program
on the closures: :func:`translate` returns None.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bpfkit.isa import semantics
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import Kind, Op, lookup
from bpfkit.vm.cpu import writes_r10
from bpfkit.vm.memory import CODE_BASE, MAX_FRAMES, STACK_SIZE, STACK_SLOT, Fault

if TYPE_CHECKING:
    from bpfkit.vm.cpu import Code, Cpu

_SIMPLE = {
    Kind.ALU, Kind.NEG, Kind.MOVSX, Kind.ENDIAN, Kind.LDDW, Kind.LOAD, Kind.LOAD_SX,
    Kind.LOAD_ACQ, Kind.STORE_IMM, Kind.STORE_REG, Kind.STORE_REL, Kind.JA, Kind.JCOND,
    Kind.CALL, Kind.EXIT,
}  # fmt: skip
_FMT = {1: "B", 2: "H", 4: "I", 8: "Q"}
_SFMT = {1: "b", 2: "h", 4: "i"}


class Budget(Exception):
    """The budget ran out at the start of a block: ``index`` is the instruction where the
    closures would have stopped."""

    def __init__(self, pc: int) -> None:
        super().__init__("budget")
        self.pc = pc


class At(Exception):
    """A fault at ``pc`` (the generated code knows where it is)."""

    def __init__(self, pc: int, fault: BaseException) -> None:
        super().__init__("fault")
        self.pc, self.fault = pc, fault


def translate(code: Code, m: Cpu) -> Callable[..., tuple[int, ...]] | None:
    """The program as one Python function ``run(left, r1, r2, r10) -> (left, r0, ..., r10)``,
    or None when it has an instruction this translation leaves to the closures."""
    n = code.length
    slots = [(pc, i) for pc, i in enumerate(code.insns[:n]) if i is not None]
    ops: dict[int, Op] = {}
    for pc, insn in slots:
        op = lookup(insn)
        if op is None or op.kind not in _SIMPLE or insn.dst > 10 or insn.src > 10:
            return None
        if op.kind is Kind.CALL and op.key == "kfunc":
            return None
        if op.kind is Kind.CALL and op.key == "helper":
            if insn.imm not in m.helpers or m.helper_names.get(insn.imm) in (
                "bpf_loop",
                "bpf_tail_call",
            ):
                return None
        ops[pc] = op
    if code.problems or not slots:
        return None
    valid = set(ops)
    leaders = {0}
    for pc, insn in slots:
        op = ops[pc]
        nxt = pc + insn.width
        if op.kind in (Kind.JA, Kind.JCOND):
            dist = insn.imm if (op.kind is Kind.JA and op.width == 32) else insn.off
            t = pc + 1 + dist
            if t not in valid:
                return None  # a bad jump: its stub is the closures' business
            leaders |= {t, nxt}
        elif op.kind is Kind.CALL and op.key == "local":
            t = pc + 1 + insn.imm
            if t not in valid:
                return None
            leaders |= {t, nxt}
        elif op.kind is Kind.EXIT:
            leaders.add(nxt)
    if any(pc not in valid and pc < n for pc in leaders):
        return None
    # Falling off the end must reach the closures' stub: only a program whose last
    # instruction cannot fall through is translated.
    last_pc, last = slots[-1]
    if ops[last_pc].kind not in (Kind.JA, Kind.EXIT):
        return None

    ns: dict[str, Any] = dict(semantics.PY_NAMESPACE)
    ns.update(
        get=m.memory.slots.get,
        m=m,
        frames=m.frames,
        stacks=m.stacks,
        ZERO=bytes(STACK_SIZE),
        STK0=m.stacks[0].buf,
        STKLO0=m.stacks[0].base,
        Budget=Budget,
        At=At,
        mem_fault=_mem_fault,
        depth_fault=_depth_fault,
    )
    for k, f in _FMT.items():
        ns[f"U{k}"] = struct.Struct("<" + f).unpack_from
        ns[f"P{k}"] = struct.Struct("<" + f).pack_into
    for k, f in _SFMT.items():
        ns[f"S{k}"] = struct.Struct("<" + f).unpack_from
    helpers: dict[int, str] = {}
    fixed = not any(writes_r10(ops[pc], insn) for pc, insn in slots)

    blocks: list[tuple[int, list[str]]] = []
    for start in sorted(x for x in leaders if x in valid):
        body: list[int] = []
        pc = start
        while pc < n and (pc == start or pc not in leaders):
            got = code.insns[pc]
            if got is None:
                pc += 1
                continue
            body.append(pc)
            if ops[pc].kind in (Kind.JA, Kind.JCOND, Kind.EXIT) or (
                ops[pc].kind is Kind.CALL and ops[pc].key == "local"
            ):
                break
            pc += got.width
        k = len(body)
        lines = [
            f"if (left := left - {k}) < 0: raise Budget({body}[left + {k}])",
        ]
        ended = False
        block = _Block(fixed)
        skip = False
        for i, pc in enumerate(body):
            if skip:  # a mov folded into the instruction after it
                skip = False
                continue
            one = code.insns[pc]
            assert one is not None
            later = code.insns[body[i + 1]] if i + 1 < len(body) else None
            if later is not None and _folds(ops[pc], one, ops[body[i + 1]], later):
                text, ended = _insn(ops[body[i + 1]], later, body[i + 1], ns, helpers, m, block,
                                    alias=f"r{one.src}")  # fmt: skip
                block.note(ops[pc], one)
                block.note(ops[body[i + 1]], later)
                skip = True
            else:
                text, ended = _insn(ops[pc], one, pc, ns, helpers, m, block)
                block.note(ops[pc], one)
            lines += text
        if not ended:
            last_insn = code.insns[body[-1]]
            assert last_insn is not None
            lines.append(f"pc = {body[-1] + last_insn.width}")
            lines.append("continue")
        blocks.append((start, lines))
    blocks = [(start, _self_loop(_merged(lines, dict(blocks)), start)) for start, lines in blocks]

    out = [
        "def run(left, r1, r2, r10):",
        "    r0 = r3 = r4 = r5 = r6 = r7 = r8 = r9 = 0",
        "    stk, stklo = STK0, STKLO0  # the current frame's stack and its address",
        "    pc = 0",
        "    while True:",
    ]
    out += _tree(blocks, 8)
    source = "\n".join(out) + "\n"
    exec(compile(source, f"<bpfkit program {code.name}>", "exec"), ns)  # noqa: S102
    fn: Callable[..., tuple[int, ...]] = ns["run"]
    fn.source = source  # type: ignore[attr-defined]
    return fn


def _tree(blocks: list[tuple[int, list[str]]], indent: int) -> list[str]:
    pad = " " * indent
    if len(blocks) == 1:
        return [pad + line for line in blocks[0][1]]
    mid = len(blocks) // 2
    out = [f"{pad}if pc < {blocks[mid][0]}:"]
    out += _tree(blocks[:mid], indent + 4)
    out.append(f"{pad}else:")
    out += _tree(blocks[mid:], indent + 4)
    return out


def _mem_fault(m: Cpu, pc: int, address: int, size: int, write: bool) -> None:
    try:
        m.memory.check(address, size, write)
        raise Fault(f"{'write' if write else 'read'} of {size} bytes refused", address=address)
    except Fault as e:
        raise At(pc, e) from None


def _depth_fault(pc: int) -> None:
    raise At(pc, Fault(f"call depth exceeds {MAX_FRAMES} frames"))


class _Block:
    """What the translation knows inside one basic block: which registers point into the
    current frame's stack (r10, and what was moved or added from it)."""

    def __init__(self, fixed: bool) -> None:
        self.fixed = fixed  # no instruction writes r10: r10 + constant needs no check
        self.stackish = {10}

    def note(self, op: Op, insn: Insn) -> None:
        """Update after ``insn``."""
        k, d = op.kind, insn.dst
        if k is Kind.CALL:
            self.stackish -= {0, 1, 2, 3, 4, 5}
        elif k is Kind.ALU and op.width == 64:
            src = op.source == "reg" and insn.src in self.stackish
            if (op.key == "mov" and src) or (op.key == "add" and src):
                self.stackish.add(d)
            elif not (op.key in ("add", "sub") and d in self.stackish):
                self.stackish.discard(d)
        elif k in (Kind.ALU, Kind.NEG, Kind.MOVSX, Kind.ENDIAN, Kind.LDDW) or k in _LOADS:
            self.stackish.discard(d)


_LOADS = (Kind.LOAD, Kind.LOAD_SX, Kind.LOAD_ACQ)


def _folds(op: Op, insn: Insn, nxt: Op, later: Insn) -> bool:
    """Whether ``mov dst, src`` (``op``) can be folded into the ALU instruction after it,
    which overwrites dst: that one then reads src where it reads dst."""
    return (
        op.kind is Kind.ALU
        and op.key == "mov"
        and op.width == 64
        and op.source == "reg"
        and nxt.kind is Kind.ALU
        and later.dst == insn.dst
    )


def _merged(lines: list[str], blocks: dict[int, list[str]]) -> list[str]:
    """A block that ends by going to a short block: that block's lines copied in its place
    (budget check and all), so that a loop of two blocks (a test at its head, a body that
    jumps back) becomes one block that jumps back to itself."""
    if len(lines) < 2 or lines[-1] != "continue" or not lines[-2].startswith("pc = "):
        return lines
    nxt = blocks.get(int(lines[-2][len("pc = ") :]))
    if nxt is None or nxt is lines or len(nxt) > 12:
        return lines
    return lines[:-2] + nxt


def _self_loop(lines: list[str], start: int) -> list[str]:
    """A block with a way back to its own start, as a ``while`` loop of its own: that way
    back becomes ``continue`` (skipping the dispatch on pc), every other way out sets pc
    and leaves the loop (``break``) for the dispatch."""
    back = f"pc = {start}"

    def indent(line: str) -> str:
        return line[: len(line) - len(line.lstrip())]

    if not any(
        x.strip() == back and lines[i + 1] == indent(x) + "continue"
        for i, x in enumerate(lines[:-1])
    ):
        return lines
    out = ["while True:"]
    i = 0
    while i < len(lines):
        line = lines[i]
        pad = indent(line)
        if line.strip() == back and i + 1 < len(lines) and lines[i + 1] == pad + "continue":
            out.append(f"    {pad}continue")
            i += 2
            continue
        out.append(f"    {pad}break" if line.strip() == "continue" else f"    {line}")
        i += 1
    return [*out, "continue"]


def _insn(
    op: Op,
    insn: Insn,
    pc: int,
    ns: dict[str, Any],
    helpers: dict[int, str],
    m: Cpu,
    block: _Block,
    alias: str = "",
) -> tuple[list[str], bool]:
    """Python lines for one instruction, and whether it ends its block (``alias``: the
    register to read where the instruction reads dst, when a mov to dst was folded)."""
    k = op.kind
    d, s = f"r{insn.dst}", f"r{insn.src}"
    if k in (Kind.ALU, Kind.NEG, Kind.MOVSX, Kind.ENDIAN, Kind.JCOND):
        w = semantics.width(op)
        low = f" & {semantics.mask(w):#x}" if w == 32 else ""
        ad = alias or d
        a = f"({ad}{low})" if low else ad
        b: str | int = insn.imm & semantics.mask(w)
        if op.source == "reg":
            bs = alias if (alias and insn.src == insn.dst) else s
            b = f"({bs}{low})" if low else bs
        e = semantics.expr(op)
        if max(semantics.count(e, "A"), semantics.count(e, "B") if isinstance(b, str) else 0) > 1:
            pre = [f"A = {a}"] + ([f"B = {b}"] if isinstance(b, str) else [])
            a, b = "A", ("B" if isinstance(b, str) else b)
        else:
            pre = []
        v = semantics.to_python(e, w, a, b)
        if k is Kind.JCOND:
            t = pc + 1 + insn.off
            return pre + [
                f"if {v}:",
                f"    pc = {t}",
                "    continue",
                f"pc = {pc + 1}",
                "continue",
            ], True
        return pre + [f"{d} = {v}"], False
    if k is Kind.LDDW:
        if op.key == "lddw":
            value: int | None = insn.imm64
        elif op.key == "lddw_func":
            value = CODE_BASE + 8 * (pc + insn.imm + 1)
        else:
            try:
                value = m.resolve_lddw(insn, op) if m.resolve_lddw else None
            except Exception:  # noqa: BLE001 - the closure's stub says why
                value = None
        if value is None:
            raise _Unsupported
        return [f"{d} = {value:#x}"], False
    if k in (Kind.LOAD, Kind.LOAD_SX, Kind.LOAD_ACQ):
        n = op.size
        unpack = f"S{n}" if k is Kind.LOAD_SX else f"U{n}"
        mask = " & 0xFFFFFFFFFFFFFFFF" if k is Kind.LOAD_SX else ""
        return _access(
            block, insn.src, insn.off, n, False, pc, f"{d} = {unpack}(", f")[0]{mask}"
        ), False
    if k in (Kind.STORE_IMM, Kind.STORE_REG, Kind.STORE_REL):
        n = op.size
        m_ = (1 << (8 * n)) - 1
        v = f"{insn.imm & m_:#x}" if k is Kind.STORE_IMM else f"{s} & {m_:#x}"
        return _access(block, insn.dst, insn.off, n, True, pc, f"P{n}(", f", {v})"), False
    if k is Kind.JA:
        dist = insn.imm if op.width == 32 else insn.off
        return [f"pc = {pc + 1 + dist}", "continue"], True
    if k is Kind.EXIT:
        return [
            "if frames:",
            "    pc, r6, r7, r8, r9, r10 = frames.pop()",
            "    st = stacks[len(frames)]",
            "    stk, stklo = st.buf, st.base",
            "    continue",
            "return left, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10",
        ], True
    if k is Kind.CALL and op.key == "local":
        return [
            f"if len(frames) >= {MAX_FRAMES - 1}: depth_fault({pc})",
            f"frames.append(({pc + 1}, r6, r7, r8, r9, r10))",
            "st = stacks[len(frames)]",
            "st.buf[:] = ZERO",
            "stk, stklo = st.buf, st.base",
            f"r10 = {(STACK_SLOT << 32) + STACK_SIZE:#x} + (len(frames) << 32)",
            f"pc = {pc + 1 + insn.imm}",
            "continue",
        ], True
    # a helper
    name = helpers.get(insn.imm)
    if name is None:
        name = helpers[insn.imm] = f"H{insn.imm}"
        ns[name] = m.helpers[insn.imm]
    return [
        "try:",
        f"    r0 = {name}(m, r1, r2, r3, r4, r5) & 0xFFFFFFFFFFFFFFFF",
        "except At: raise",
        f"except BaseException as e: raise At({pc}, e) from None",
    ], False


def _access(
    block: _Block, base: int, off: int, n: int, write: bool, pc: int, head: str, tail: str
) -> list[str]:
    """Lines for an access of ``n`` bytes at ``r<base> + off``: ``head`` + buffer, offset +
    ``tail`` once checked.  ``r10 + constant`` inside the stack is not checked when no
    instruction writes r10 (r10 is then the current frame's stack top); other addresses
    derived from r10 in the block try the current frame's stack first (one compare), and
    everything else looks its slot up in the regions (bounds and, for writes, permission).
    """
    if base == 10 and block.fixed and -STACK_SIZE <= off <= -n:
        return [f"{head}stk, {off + STACK_SIZE}{tail}"]
    ro = " or not g.writable" if write else ""
    a = f"r{base}" if off == 0 else "a"
    checked = [
        f"g = get({a} >> 32)" if off == 0 else f"g = get((a := r{base} + {off}) >> 32)",
        f"if g is None or not 0 <= (o := {a} - g.base) <= g.size - {n}{ro}: "
        f"mem_fault(m, {pc}, {a}, {n}, {write})",
        f"{head}g.buf, o{tail}",
    ]
    if base not in block.stackish:
        return checked
    return [
        f"o = r{base} - stklo + {off}" if off else f"o = r{base} - stklo",
        f"if 0 <= o <= {STACK_SIZE - n}: {head}stk, o{tail}",
        "else:",
        *("    " + x for x in checked),
    ]


class _Unsupported(Exception):
    pass


def compiled(code: Code, m: Cpu) -> Callable[..., tuple[int, ...]] | None:
    """:func:`translate`'s function for ``code``, made once and cached on it (None: the
    program runs on the closures)."""
    if not hasattr(code, "pysource"):
        try:
            made = translate(code, m)
        except _Unsupported:
            made = None
        code.pysource = made  # type: ignore[attr-defined]
    fn: Callable[..., tuple[int, ...]] | None = code.pysource  # type: ignore[attr-defined]
    return fn
