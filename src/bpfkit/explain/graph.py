"""Control-flow graphs of an object's programs as Graphviz DOT text.

Each program is a cluster of basic blocks (:func:`bpfkit.isa.cfg.build_cfg`); a block lists
its instructions in LLVM syntax (:func:`bpfkit.disasm.llvm_text.format_insn`) with the
source lines ``.BTF.ext`` knows, as ``; text`` lines before the instruction they start.
Edges are labelled ``taken`` / ``fall-through`` (conditional jumps) or ``goto``; edges that
close a loop are drawn bold and labelled ``(loop)``; a bpf-to-bpf call is a dashed edge to the
callee's entry (or to a node naming it, when it is not drawn); helper calls name the helper.

:func:`program_graph` returns the graph as data (blocks, edges, labels) and :func:`to_dot`
the text; :mod:`bpfkit.toolchain.graphviz` lays it out.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpfkit.disasm.llvm_text import format_insn
from bpfkit.errors import ObjectError
from bpfkit.explain.explain import callee
from bpfkit.explain.source import source_lines
from bpfkit.isa.cfg import Cfg, build_cfg
from bpfkit.obj.spec import ObjectSpec, ProgramSpec
from bpfkit.uapi.helpers import by_id


@dataclass(frozen=True, slots=True)
class CallEdge:
    """A bpf-to-bpf call from block ``block`` (slot ``slot``) to the function ``callee``."""

    block: int
    slot: int
    callee: str


@dataclass(frozen=True, slots=True)
class ProgramGraph:
    """One program's CFG with what a drawing shows."""

    name: str
    section: str
    cfg: Cfg
    lines: tuple[tuple[str, ...], ...]  # per block: its text lines (source, then "N: insn")
    calls: tuple[CallEdge, ...]


def program_graph(obj: ObjectSpec, prog: ProgramSpec) -> ProgramGraph:
    """The CFG of ``prog`` with its blocks' text."""
    cfg = build_cfg(prog.insns)
    src = source_lines(obj, prog)
    relocs = {r.offset // 8: r for r in prog.relocations}
    block_lines: list[tuple[str, ...]] = []
    last_line: tuple[str, int] | None = None
    for blk in cfg.blocks:
        out: list[str] = []
        for n in blk.insns:
            slot = cfg.slots[n]
            info = src.get(slot)
            if info is not None and info.source and (info.file_name, info.line) != last_line:
                out.append(f"; {info.source.strip()}")
                last_line = (info.file_name, info.line)
            text = format_insn(prog.insns[n])
            helper = _helper_note(prog, n)
            out.append(f"{slot}: {text}" + (f"  ; {helper}" if helper else ""))
        block_lines.append(tuple(out))
    calls = []
    for c in cfg.calls:
        if c.kind != "local":
            continue
        insn = prog.insns[cfg.slots.index(c.slot)]
        name = callee(obj, insn, relocs.get(c.slot))
        if name is None and c.target is not None:
            name = _function_at(obj, prog, c.target)
        calls.append(CallEdge(c.block, c.slot, name or f"pc{insn.imm:+d}"))
    return ProgramGraph(prog.name, prog.section, cfg, tuple(block_lines), tuple(calls))


def _helper_note(prog: ProgramSpec, n: int) -> str:
    insn = prog.insns[n]
    if insn.opcode != 0x85 or insn.src != 0:
        return ""
    h = by_id(insn.imm)
    return h.name if h else ""


def _function_at(obj: ObjectSpec, prog: ProgramSpec, target_slot: int) -> str | None:
    at = prog.offset + target_slot * 8
    for p in obj.programs:
        if p.section == prog.section and p.offset == at:
            return p.name
    return None


def object_graphs(obj: ObjectSpec, program: str | None = None) -> list[ProgramGraph]:
    """The graphs of ``obj``'s programs (only ``program`` and the functions it calls, if
    given)."""
    if program is None:
        return [program_graph(obj, p) for p in obj.programs]
    chosen = [obj.program(program)]
    seen = {program}
    graphs = []
    while chosen:
        p = chosen.pop(0)
        g = program_graph(obj, p)
        graphs.append(g)
        for c in g.calls:
            if c.callee not in seen and any(q.name == c.callee for q in obj.programs):
                seen.add(c.callee)
                chosen.append(obj.program(c.callee))
    return graphs


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(lines: tuple[str, ...]) -> str:
    # \l ends a left-justified line; the text itself has its backslashes doubled.
    body = "".join(ln.replace("\\", "\\\\").replace('"', '\\"') + "\\l" for ln in lines)
    return '"' + body + '"'


def _node(p: int, b: int) -> str:
    return f"p{p}b{b}"


def to_dot(graphs: list[ProgramGraph], title: str = "") -> str:
    """DOT text drawing ``graphs`` (one cluster per program)."""
    if not graphs:
        raise ObjectError(f"{title or 'object'}: no program to draw")
    out = [
        "digraph cfg {",
        f"  label={_quote(title)}; labelloc=t; fontname=Helvetica;",
        '  node [shape=box, fontname="DejaVu Sans Mono", fontsize=10, style=filled, '
        'fillcolor="#f7f7f7"];',
        "  edge [fontname=Helvetica, fontsize=9];",
    ]
    entry = {g.name: _node(i, 0) for i, g in enumerate(graphs) if g.cfg.blocks}
    externals: dict[str, str] = {}
    for i, g in enumerate(graphs):
        out.append(f"  subgraph cluster_{i} {{")
        out.append(f"    label={_quote(f'{g.name}  ({g.section})')}; style=rounded; color=gray50;")
        if not g.cfg.blocks:
            out.append(f'    p{i}empty [label="(no instructions)", shape=plaintext];')
        for blk in g.cfg.blocks:
            extra = ', fillcolor="#e8f0fe"' if blk.id == 0 else ""
            out.append(f"    {_node(i, blk.id)} [label={_label(g.lines[blk.id])}{extra}];")
        out.append("  }")
        for e in g.cfg.edges:
            attrs = [f"label={_quote(e.kind + ' (loop)' if e.back else e.kind)}"]
            if e.kind == "taken":
                attrs.append('color="#1a7f37"')
            elif e.kind == "fall-through":
                attrs.append('color="#cf222e"')
            if e.back:
                attrs.append("style=bold, constraint=false")
            out.append(f"  {_node(i, e.src)} -> {_node(i, e.dst)} [{', '.join(attrs)}];")
        for k, (b, target) in enumerate(g.cfg.escapes):
            ext = f"p{i}out{k}"
            out.append(
                f"  {ext} [label={_quote(f'slot {target}: outside the program')}, "
                "shape=octagon, color=red];"
            )
            out.append(f"  {_node(i, b)} -> {ext} [color=red];")
        for c in g.calls:
            dst = entry.get(c.callee)
            if dst is None:
                dst = externals.setdefault(c.callee, f"fn{len(externals)}")
            out.append(
                f'  {_node(i, c.block)} -> {dst} [style=dashed, color="#0550ae", '
                f"label={_quote(f'call {c.callee}')}, constraint=false];"
            )
    for name, node in externals.items():
        out.append(f"  {node} [label={_quote(name + '()')}, shape=ellipse, fillcolor=white];")
    out.append("}")
    return "\n".join(out) + "\n"
