"""An explanation of a rejection: the failing instruction at its source line, the path
that led there, where the offending value came from, the class of the message and what to
change.

The same :class:`Explanation` is made from a kernel log (:func:`explain_log`) and from
bpfkit's own verifier (:mod:`bpfkit.verify.static`); :func:`render` turns it into text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bpfkit.disasm.kernel_syntax import format_kernel
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import Kind, lookup
from bpfkit.uapi.helpers import by_id
from bpfkit.verify.log import Source, VerifierLog
from bpfkit.verify.messages import MessageClass, classify
from bpfkit.verify.source import ProgramView


@dataclass
class Explanation:
    """Why a verifier said no (or that it said yes: ``message`` empty)."""

    program: str
    judge: str  # "the kernel verifier (Linux 6.18)" / "bpfkit verify (Linux 6.18 rules)"
    message: str = ""
    cls: MessageClass | None = None
    insn: int | None = None  # failing instruction (slot index)
    insn_text: str = ""
    function: str = ""
    source: Source | None = None
    context: list[tuple[int, str]] = field(default_factory=list)
    branches: list[str] = field(default_factory=list)  # decisions on the path, in order
    slice: list[str] = field(default_factory=list)  # origin first, failing insn last
    origin: str = ""  # one sentence: where the offending value came from
    loop_source: Source | None = None  # the loop that made the program too complex
    processed: int | None = None
    view: ProgramView | None = None

    def context_of(self, src: Source) -> list[tuple[int, str]]:
        """The lines around ``src`` (just its own text without the source file)."""
        return self.view.context(src) if self.view is not None else [(src.line, src.text)]

    @property
    def accepted(self) -> bool:
        """True if the verifier accepted the program."""
        return not self.message


def _text(insn: Insn) -> str:
    """The kernel's text of ``insn`` without the opcode byte: ``r1 = *(u64 *)(r0 +0)``."""
    return re.sub(r"^\([0-9a-f]{2}\) ", "", format_kernel(insn))


def offending(message: str) -> tuple[str, int] | None:
    """What the message is about: ("reg", n), ("stack", off) or None."""
    m = re.search(r"invalid (?:indirect )?read from stack (?:R10 )?off (-?\d+)\+", message)
    if m:
        return ("stack", int(m.group(1)))
    m = re.search(r"\bR(\d+)\b", message)
    if m:
        return ("reg", int(m.group(1)))
    return None


@dataclass
class _Link:
    idx: int
    what: str  # a few words: "loaded from the stack slot fp-8"


def backward_slice(
    path: list[int], insns: dict[int, Insn], target: tuple[str, int]
) -> tuple[list[_Link], str]:
    """Walk ``path`` (slot indices, the failing instruction last) backwards from the
    failing instruction, following ``target`` (a register or a stack slot) to the
    instruction that gave it its value.  Returns the links (origin first) and a sentence
    on the origin."""
    kind, n = target
    links: list[_Link] = []
    for idx in reversed(path[:-1]):
        insn = insns.get(idx)
        if insn is None:
            continue
        op = lookup(insn)
        if op is None:
            continue
        if kind == "reg":
            r = n
            if op.kind in (Kind.CALL, Kind.CALLX) and insn.src == 0:
                h = by_id(insn.imm)
                hname = h.name if h else f"helper {insn.imm}"
                if r == 0:
                    links.append(_Link(idx, f"r0 is the result of {hname}()"))
                    return links[::-1], f"r0 is the value returned by {hname}() at insn {idx}"
                if 1 <= r <= 5:
                    links.append(_Link(idx, f"the call to {hname}() clobbers r1-r5"))
                    return links[::-1], (
                        f"r{r} holds nothing after the call to {hname}() at insn {idx} "
                        "(calls clobber r1-r5): save the value in r6-r9 or on the stack"
                    )
            if op.kind in (Kind.CALL,) and insn.src == 1 and 1 <= r <= 5:
                links.append(_Link(idx, "the sub-program call clobbers r1-r5"))
                return links[::-1], f"r{r} is clobbered by the sub-program call at insn {idx}"
            if insn.dst != r or op.kind in (
                Kind.STORE_IMM,
                Kind.STORE_REG,
                Kind.STORE_REL,
                Kind.JCOND,
                Kind.JA,
                Kind.EXIT,
                Kind.CALL,
                Kind.CALLX,
                Kind.MAY_GOTO,
            ):
                if op.kind in (Kind.LD_ABS, Kind.LD_IND) and r == 0:
                    links.append(_Link(idx, "r0 = a legacy packet load"))
                    return links[::-1], f"r0 was loaded from the packet at insn {idx}"
                continue
            if op.kind is Kind.LDDW:
                what = "a map" if insn.src in (1, 2) else "a 64-bit constant"
                links.append(_Link(idx, f"r{r} = {what}"))
                return links[::-1], f"r{r} was set to {what} at insn {idx}"
            if op.kind in (Kind.LOAD, Kind.LOAD_SX, Kind.LOAD_ACQ):
                if insn.src == 10:
                    links.append(_Link(idx, f"r{r} loaded from the stack slot fp{insn.off:+d}"))
                    kind, n = "stack", insn.off
                    continue
                links.append(_Link(idx, f"r{r} loaded from memory at r{insn.src}{insn.off:+d}"))
                return links[::-1], (f"r{r} was loaded from r{insn.src}{insn.off:+d} at insn {idx}")
            if op.kind is Kind.ALU and op.key == "mov":
                if op.source == "reg":
                    links.append(_Link(idx, f"r{r} = r{insn.src}"))
                    if insn.src == 10:
                        return links[::-1], f"r{r} points into the stack (r10) since insn {idx}"
                    n = insn.src
                    continue
                links.append(_Link(idx, f"r{r} = {insn.imm}"))
                return links[::-1], f"r{r} was set to the constant {insn.imm} at insn {idx}"
            links.append(_Link(idx, f"r{r} changed: {_text(insn)}"))
            continue
        # a stack slot (offset from r10)
        if op.kind in (Kind.STORE_REG, Kind.STORE_IMM) and insn.dst == 10:
            lo, hi = insn.off, insn.off + op.size
            if lo <= n < hi or n <= lo < n + 8:
                if op.kind is Kind.STORE_IMM:
                    links.append(_Link(idx, f"fp{insn.off:+d} = {insn.imm}"))
                    return links[::-1], f"the stack slot was written with {insn.imm} at insn {idx}"
                links.append(_Link(idx, f"fp{insn.off:+d} = r{insn.src}"))
                kind, n = "reg", insn.src
                continue
    if kind == "stack":
        return links[::-1], f"nothing on this path wrote the stack slot fp{n:+d}"
    if kind == "reg" and n not in (1, 10):
        return links[::-1], f"nothing on this path wrote r{n}"
    if kind == "reg" and n == 1:
        return links[::-1], "r1 is the context pointer the program was called with"
    return links[::-1], ""


def branch_decisions(path: list[int], insns: dict[int, Insn]) -> list[str]:
    """``idx: text -> taken | not taken`` for each conditional jump on ``path``; a run of
    the same decision is one line with its count."""
    out: list[str] = []
    last, count = "", 0
    for i, idx in enumerate(path[:-1]):
        insn = insns.get(idx)
        op = lookup(insn) if insn is not None else None
        if insn is None or op is None or op.kind is not Kind.JCOND:
            continue
        nxt = path[i + 1]
        taken = nxt == idx + 1 + insn.off and insn.off != 0
        line = f"{idx}: {_text(insn)}  -> {'taken' if taken else 'not taken'}"
        if line == last:
            count += 1
            out[-1] = f"{line}  (x{count})"
            continue
        last, count = line, 1
        out.append(line)
    return out


def loop_on_path(path: list[int], insns: dict[int, Insn]) -> tuple[int, int] | None:
    """The backward jump taken most often on ``path``: (its slot, times taken)."""
    counts: dict[int, int] = {}
    for i, idx in enumerate(path[:-1]):
        insn = insns.get(idx)
        op = lookup(insn) if insn is not None else None
        if insn is None or op is None or op.kind not in (Kind.JCOND, Kind.JA):
            continue
        if path[i + 1] <= idx:
            counts[idx] = counts.get(idx, 0) + 1
    if not counts:
        return None
    best = max(counts, key=lambda k: counts[k])
    return best, counts[best]


def _origin_sentence(cls: MessageClass, origin: str, message: str) -> str:
    if cls.key == "null" and "returned by" in origin:
        return origin + ", which can be NULL, and no NULL check on this path guards the use"
    if cls.key == "packet":
        m = re.search(r"off=(-?\d+) size=(\d+), R\d+\(id=\d+,off=(-?\d+),r=(\d+)\)", message)
        if m:
            off, size, r = int(m.group(1)), int(m.group(2)), int(m.group(4))
            proved = (
                f"the comparisons with data_end on this path prove {r} bytes"
                if r
                else "nothing on this path compared the pointer with data_end"
            )
            return (origin + "; " if origin else "") + (
                f"{proved}, but the access reads bytes {off}..{off + size - 1} "
                f"(it needs data + {off + size} <= data_end)"
            )
        return (origin + "; " if origin else "") + (
            "the access is not covered by a comparison with data_end on this path"
        )
    if cls.key == "uninit" and not origin:
        return "it is read before anything was written to it on this path"
    return origin


def explain_log(
    log: VerifierLog, view: ProgramView | None, *, program: str, judge: str
) -> Explanation:
    """The explanation of a kernel (or bpfkit) log; ``view`` adds functions, line info
    and the instructions for the slice."""
    e = Explanation(program=program, judge=judge, processed=log.processed, view=view)
    if not log.reason:
        return e
    e.message = log.reason
    e.cls = classify(log.reason)
    for extra in log.reason_lines[1:3]:  # "R0 invalid mem access ..." may follow a header
        if e.cls.key == "other":
            e.cls = classify(extra)
            if e.cls.key != "other":
                e.message = extra.strip()
    step = log.failing
    m = re.search(r"(?:at insn|from insn|alloc_insn=|unreachable insn)\s*(\d+)", log.reason)
    if m and ("at insn" in log.reason or "unreachable" in log.reason):  # names the insn
        e.insn = int(m.group(1))
    elif step is not None:
        e.insn, e.insn_text = step.idx, step.text
    elif m:
        e.insn = int(m.group(1))
    path = [s.idx for s in log.path()]
    if m and e.cls.key in ("reference",):
        e.origin = (
            f"the reference was acquired at insn {m.group(1)} and never released on this path"
        )
    if e.insn is not None:
        e.source = (view.source_of(e.insn) if view else None) or log.source_of(e.insn)
        if view is not None:
            e.function = view.function_of(e.insn)
            if not e.insn_text and e.insn in view.insns:
                e.insn_text = _text(view.insns[e.insn])
        if e.source is not None:
            e.context = view.context(e.source) if view else [(e.source.line, e.source.text)]
    if view is not None and path:
        e.branches = branch_decisions(path, view.insns)
        target = offending(e.message)
        if e.cls.key in ("complexity", "loop"):
            loop = loop_on_path(path, view.insns)
            if loop is not None:
                src = view.source_of(loop[0])
                if src is not None and e.cls.key == "complexity":
                    e.loop_source = src
                at = f" (line {src.line}: {src.text})" if src else ""
                e.origin = (
                    f"the loop closing at insn {loop[0]}{at} went round {loop[1]} times on "
                    "this path: its bound is not a constant the verifier sees"
                )
        if target is not None and not e.origin:
            states = {s.idx: s.state for s in log.path()}
            links, origin = backward_slice(path, view.insns, target)
            e.origin = _origin_sentence(e.cls, origin, e.message)
            e.slice = [
                f"{lk.idx}: {lk.what}{_state(states.get(lk.idx, ''), lk.what)}{_at(view, lk.idx)}"
                for lk in links
            ]
    if not e.origin:
        e.origin = _origin_sentence(e.cls, "", e.message)
    return e


def _state(state: str, what: str) -> str:
    """The verifier's value of the register ``what`` is about, from the step's state."""
    m = re.match(r"(?:the call to \S+ clobbers )?r(\d+)", what)
    reg = 0 if "result of" in what else (int(m.group(1)) if m else None)
    if reg is None:
        return ""
    v = re.search(rf"\bR{reg}=(\S+)", state)
    return f"  [R{reg}={v.group(1)}]" if v else ""


def _at(view: ProgramView, idx: int) -> str:
    src = view.source_of(idx)
    return f"  ({src.file.rsplit('/', 1)[-1]}:{src.line})" if src else ""


def render(e: Explanation, *, max_branches: int = 12) -> str:
    """The explanation as text for a terminal."""
    if e.accepted:
        n = f" ({e.processed} instructions processed)" if e.processed is not None else ""
        return f"{e.program}: accepted by {e.judge}{n}"
    assert e.cls is not None
    out = [f"{e.program}: rejected by {e.judge}", f"  reason:   {e.message}"]
    out.append(f"  class:    {e.cls.key} — {e.cls.title}")
    if e.insn is not None:
        where = f"insn {e.insn}"
        if e.insn_text:
            where += f": {e.insn_text}"
        if e.function:
            where += f"   (in function {e.function})"
        out.append(f"  at:       {where}")
    if e.source is not None:
        out.append(f"  source:   {e.source.file}:{e.source.line}")
        for lno, txt in e.context:
            mark = ">" if lno == e.source.line else " "
            out.append(f"    {mark}{lno:5d} | {txt}")
    elif e.insn is not None:
        out.append(
            "  source:   no line info (build with -g for C); the function and "
            "instruction above locate it"
        )
    if e.loop_source is not None:
        out.append(f"  loop:     {e.loop_source.file}:{e.loop_source.line} (what to change)")
        out += [
            f"    >{n:5d} | {t}" if n == e.loop_source.line else f"     {n:5d} | {t}"
            for n, t in e.context_of(e.loop_source)
        ]
    if e.branches:
        shown = e.branches[-max_branches:]
        skipped = len(e.branches) - len(shown)
        out.append(
            "  path:     "
            + (f"({skipped} earlier branches) " if skipped else "")
            + "branches taken to get here:"
        )
        out += [f"    {b}" for b in shown]
    if e.slice:
        out.append("  value:    where the offending value came from:")
        out += [f"    {s}" for s in e.slice]
    if e.origin:
        out.append(f"  origin:   {e.origin}")
    out.append(f"  fix:      {e.cls.hint}")
    if e.cls.example:
        out.append("  example:")
        out += [f"    {line}" for line in e.cls.example.splitlines()]
    return "\n".join(out)
