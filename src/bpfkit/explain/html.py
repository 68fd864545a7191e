"""Explanations as one self-contained HTML page (and the ``_repr_html_`` of notebooks).

The page holds, for each program: what it is and does, its control-flow graph (inline SVG
laid out by Graphviz's ``dot``; the DOT text when ``dot`` is missing), and a table of its
instructions with the source line beside them (from ``.BTF.ext``), their bytes, LLVM text,
decoded fields, meaning, the values they leave and helper calls linked to the bpf-helpers(7)
manual; then the object's maps with their types.  No script, no external style sheet, font
or image: one file that opens anywhere.

Render functions return strings; they never print.
"""

from __future__ import annotations

import html
import re

from bpfkit.btf import Btf
from bpfkit.errors import BpfkitError
from bpfkit.explain.explain import Explanation, InsnExplanation, ProgramExplanation
from bpfkit.explain.graph import object_graphs, to_dot
from bpfkit.explain.source import source_lines
from bpfkit.obj.spec import MapSpec, ObjectSpec
from bpfkit.toolchain.graphviz import dot_path, layout
from bpfkit.uapi import MapType

HELPERS_MAN = "https://man7.org/linux/man-pages/man7/bpf-helpers.7.html"

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #1f2328; background: #fff; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #d0d7de; }
code, pre, td.code, td.bytes, td.src { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #d0d7de; padding: 3px 6px; vertical-align: top; text-align: left; }
th { background: #f6f8fa; }
td.src { color: #6e7781; white-space: pre; max-width: 28em; overflow: hidden; }
td.code { white-space: pre; font-weight: 600; }
td.bytes { color: #57606a; white-space: nowrap; }
td.meaning { max-width: 40em; font-size: 13px; }
tr.unreached td { color: #8c959f; }
.values { font-size: 12px; margin-top: .3em; }
.values span { display: inline-block; background: #ddf4ff; border-radius: 4px; padding: 0 4px; margin: 1px; }
details summary { cursor: pointer; color: #0969da; font-size: 12px; }
.cfg { overflow: auto; border: 1px solid #d0d7de; padding: .5em; max-height: 60em; }
.cfg svg { max-width: 100%; height: auto; }
.summary li { margin: .2em 0; }
a.helper { font-weight: 600; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _svg(dot: str) -> str:
    """``dot`` laid out as inline SVG (no XML prolog or DOCTYPE), or the DOT text."""
    if dot_path() is None:
        return (
            "<p>Graphviz's <code>dot</code> is not installed (apt-get install graphviz): "
            f"the graph as DOT text.</p><pre>{_e(dot)}</pre>"
        )
    svg = layout(dot, "svg").decode()
    return svg[svg.index("<svg") :]


def _helper_link(e: InsnExplanation) -> str:
    call = e.call
    if call is None:
        return ""
    sig = _e(call.signature)
    if call.kind == "helper":
        name = _e(call.name)
        sig = sig.replace(name, f'<a class="helper" href="{HELPERS_MAN}">{name}</a>', 1)
        return (
            f'<div class="call">helper #{call.id}: {sig}<br><code>{_e(call.prototype)}</code></div>'
        )
    return f'<div class="call">{_e(call.kind)} call: {sig}</div>'


def _values(e: InsnExplanation) -> str:
    parts = []
    for reg, value, text in e.registers:
        parts.append(
            f"<span>{_e(reg)} = {_e(value)}" + (f" {_e(text)}" if text else "") + "</span>"
        )
    for run in e.stack:
        if run.changed:
            end = run.start + run.length - 1
            shown = run.text or run.hex
            parts.append(f"<span>stack fp{run.start}..fp{end}: {_e(shown)}</span>")
    if e.verifier:
        parts.append(f'<span class="vstate">verifier: <code>{_e(e.verifier)}</code></span>')
    return f'<div class="values">{"".join(parts)}</div>' if parts else ""


def _fields(e: InsnExplanation) -> str:
    rows = "".join(
        f"<tr><td>{_e(f.name)}</td><td>{_e(f.value)}</td><td>{_e(f.text)}</td></tr>"
        for f in e.fields
    )
    return (
        f"<details><summary>fields ({_e(', '.join(f.short for f in e.fields[:3]))} ...)"
        f"</summary><table><tr><th>field</th><th>value</th><th>meaning</th></tr>{rows}"
        "</table></details>"
    )


def _program(p: ProgramExplanation, obj: ObjectSpec | None, syntax: str, graph: bool) -> str:
    info = p.section_info
    out = [f'<section class="program" id="prog-{_e(p.name)}">']
    out.append(f"<h2>{_e(p.name)} <small>(section <code>{_e(p.section)}</code>)</small></h2>")
    facts = []
    if info.prog_type:
        facts.append(f"program type <code>{_e(info.prog_type)}</code>")
    if info.context:
        facts.append(f"context <code>{_e(info.context)}</code>")
    if p.is_subprog:
        facts.append("a BPF function (called by programs, not loaded alone)")
    if facts:
        out.append(f"<p>{'; '.join(facts)}.</p>")
    summary = [*p.summary, p.verdict] if p.verdict else list(p.summary)
    out.append('<ul class="summary">' + "".join(f"<li>{_e(s)}</li>" for s in summary) + "</ul>")
    lines = {}
    if obj is not None:
        spec = obj.program(p.name)
        lines = source_lines(obj, spec)
        if graph:
            dot = to_dot(object_graphs(obj, p.name))
            out.append(f'<h3>Control flow</h3><div class="cfg">{_svg(dot)}</div>')
    out.append('<h3>Instructions</h3><table class="insns">')
    out.append(
        "<tr><th>source</th><th>#</th><th>bytes</th><th>instruction</th><th>what it does</th></tr>"
    )
    last: tuple[str, int] | None = None
    for e in p.instructions:
        li = lines.get(e.index)
        src = ""
        if li is not None and li.source and (li.file_name, li.line) != last:
            last = (li.file_name, li.line)
            src = f'<span title="{_e(li.file_name)}:{li.line}">{li.line}: {_e(li.source.strip())}</span>'
        code = e.kernel if syntax == "kernel" else e.llvm
        cls = "insn" if e.reached else "insn unreached"
        out.append(
            f'<tr class="{cls}" id="{_e(p.name)}-{e.index}"><td class="src">{src}</td>'
            f'<td>{e.index}</td><td class="bytes">{_e(e.raw.hex(" "))}</td>'
            f'<td class="code">{_e(code)}</td>'
            f'<td class="meaning">{_e(e.text)}{_helper_link(e)}{_values(e)}{_fields(e)}</td></tr>'
        )
    out.append("</table></section>")
    return "\n".join(out)


def _btf(obj: ObjectSpec) -> Btf | None:
    try:
        return obj.parsed_btf()
    except BpfkitError:
        return None


def map_type_name(t: int | None) -> str:
    """``BPF_MAP_TYPE_HASH`` for 1; the number when the kernel's enum has no name for it."""
    if t is None:
        return "?"
    try:
        return f"BPF_MAP_TYPE_{MapType(t).name}"
    except ValueError:
        return str(t)


def maps_table(obj: ObjectSpec) -> str:
    """The object's maps as an HTML table: name, type, key and value (size and BTF type)."""
    if not obj.maps:
        return "<p>No maps.</p>"
    btf = _btf(obj)

    def typed(size: int | None, type_id: int | None) -> str:
        shown = "?" if size is None else f"{size} bytes"
        if btf is not None and type_id:
            try:
                shown += f" <code>{_e(btf.format(type_id))}</code>"
            except BpfkitError:
                pass
        return shown

    rows = []
    for m in obj.maps:
        rows.append(
            f"<tr><td><code>{_e(m.name)}</code></td><td>{_e(map_type_name(m.type))}</td>"
            f"<td>{typed(m.key_size, m.key_type_id)}</td>"
            f"<td>{typed(m.value_size, m.value_type_id)}</td>"
            f"<td>{_e(m.max_entries if m.max_entries is not None else '?')}</td>"
            f"<td>{_e(m.section)}</td></tr>"
        )
    return (
        '<table class="maps"><tr><th>map</th><th>type</th><th>key</th><th>value</th>'
        "<th>max entries</th><th>section</th></tr>" + "".join(rows) + "</table>"
    )


def render_html(
    x: Explanation,
    obj: ObjectSpec | None = None,
    *,
    syntax: str = "llvm",
    graph: bool = True,
    standalone: bool = True,
) -> str:
    """``x`` as HTML: a whole page (``standalone``) or a fragment for a notebook cell.

    ``obj`` (the object explained) adds source lines, control-flow graphs and maps.
    """
    obj = obj if obj is not None else x.obj
    body = [f"<h1>{_e(x.path)}</h1>"]
    if x.license:
        body.append(f"<p>License: <code>{_e(x.license)}</code>.</p>")
    if len(x.programs) > 1:
        body.append(
            "<p>Programs: "
            + ", ".join(f'<a href="#prog-{_e(p.name)}">{_e(p.name)}</a>' for p in x.programs)
            + "</p>"
        )
    for p in x.programs:
        body.append(_program(p, obj, syntax, graph))
    if obj is not None:
        body.append("<h2>Maps</h2>" + maps_table(obj))
    fragment = "\n".join(body)
    if not standalone:
        return f'<div class="bpfkit"><style>{_scoped(_CSS)}</style>{fragment}</div>'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>bpfkit explain {_e(x.path)}</title><style>{_CSS}</style></head>\n"
        f"<body>\n{fragment}\n</body></html>\n"
    )


def _scoped(css: str) -> str:
    """``css`` with each rule limited to ``.bpfkit`` (a notebook page has its own styles)."""

    def scope(m: re.Match[str]) -> str:
        selectors = ", ".join(f".bpfkit {s.strip()}" for s in m.group(2).split(","))
        return f"{m.group(1)} {selectors} {{"

    return re.sub(r"(^|\})\s*([^{}@]+)\{", scope, css)


def map_html(m: MapSpec) -> str:
    """One map definition as a small HTML table (a MapSpec's ``_repr_html_``)."""
    rows = [
        ("type", map_type_name(m.type)),
        ("key size", m.key_size),
        ("value size", m.value_size),
        ("max entries", m.max_entries),
        ("flags", m.flags),
        ("section", m.section),
    ]
    body = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e('?' if v is None else v)}</td></tr>" for k, v in rows
    )
    return f"<table><caption>map <code>{_e(m.name)}</code></caption>{body}</table>"


def spec_html(what: object) -> str:
    """HTML for a notebook: an ObjectSpec or ProgramSpec is explained (source, graph,
    instructions, maps), a MapSpec shown as a table."""
    from bpfkit.explain.explain import explain_object
    from bpfkit.obj.spec import ProgramSpec

    if isinstance(what, MapSpec):
        return f'<div class="bpfkit">{map_html(what)}</div>'
    if isinstance(what, ObjectSpec):
        return render_html(explain_object(what), what, standalone=False)
    if isinstance(what, ProgramSpec):
        # A program alone: explained as an object holding just it (maps and globals its
        # relocations name are then unknown; explain the object to see them).
        alone = ObjectSpec(f"<{what.name}>", False, (what,), (), (), None, None, (), (), {})
        return render_html(explain_object(alone), alone, standalone=False)
    raise BpfkitError(f"no HTML view for {type(what).__name__}")
