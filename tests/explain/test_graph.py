"""``bpfkit cfg``: control-flow graphs drawn by Graphviz, checked against the instructions."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bpfkit.cli.main import main
from bpfkit.explain.graph import object_graphs, to_dot
from bpfkit.obj.reader import read_object
from helpers import TESTS, llvm_objdump

CORPUS = sorted((TESTS / "corpus" / "obj").glob("*.o"))
SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.requires("graphviz")
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_every_corpus_object_draws_as_svg(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.svg"
    assert main(["cfg", str(path), "-o", str(out)]) == 0
    root = ET.fromstring(out.read_bytes())  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    groups = [g.get("class") for g in root.iter(f"{SVG}g")]
    graphs = object_graphs(read_object(path))
    blocks = sum(len(g.cfg.blocks) + len(g.cfg.escapes) for g in graphs)
    edges = sum(len(g.cfg.edges) + len(g.cfg.escapes) + len(g.calls) for g in graphs)
    externals = {c.callee for g in graphs for c in g.calls} - {g.name for g in graphs}
    assert groups.count("node") == blocks + len(externals) + sum(
        1 for g in graphs if not g.cfg.blocks
    )
    assert groups.count("edge") == edges
    assert groups.count("cluster") == len(graphs)


_LINE = re.compile(r"^\s*(\d+):\t(?:[0-9a-f]{2} ?)+\t(.*)$")
_JUMP = re.compile(r"\bgoto ([+-]\d+)")


def _objdump_cfg(text: str, function: str, others: set[str]) -> tuple[set[int], int]:
    """Block starts and edge count of ``function``, from llvm-objdump-19's listing alone
    (its lines run to the next section or the next of the ``others`` functions)."""
    body = text.split(f"<{function}>:\n", 1)[1].split("\nDisassembly of section", 1)[0]
    insns = []
    for line in body.splitlines():
        label = re.match(r"^[0-9a-f]{16} <(.*)>:$", line)
        if label and label.group(1) in others:
            break
        m = _LINE.match(line)
        if m:
            insns.append((int(m.group(1)), m.group(2)))
    base = insns[0][0]  # objdump numbers slots from the section's start
    insns = [(slot - base, text) for slot, text in insns]
    end = insns[-1][0] + (2 if insns[-1][1].endswith(" ll") else 1)
    leaders = {0}
    for slot, text in insns:
        if (m := _JUMP.search(text)) or text == "exit":
            nxt = slot + 1
            if nxt < end:
                leaders.add(nxt)
            if m and 0 <= slot + 1 + int(m.group(1)) < end:
                leaders.add(slot + 1 + int(m.group(1)))
    edges = 0
    starts = sorted(leaders)
    for slot, text in insns:
        block_ends = slot + 1 in leaders or slot + 1 == end
        if text == "exit":
            continue
        if text.startswith("if ") or text.startswith("may_goto"):
            edges += 2
        elif text.startswith("goto") or (block_ends and slot + 1 < end):
            edges += 1
    return set(starts), edges


@pytest.mark.requires("llvm19")
@pytest.mark.parametrize(
    ("obj", "function", "loops", "calls"),
    [
        ("subprogs_v4_g.o", "classify", 0, 0),
        ("subprogs_v4_g.o", "sum_to", 0, 0),
        ("subprogs_v4_g.o", "sock_sub", 0, 2),
        ("subprogs_v1.o", "tp_switch", 0, 3),
        ("labels.o", "zeta", 1, 1),
        ("xdp_count_v3_g.o", "xdp_count", 0, 0),
    ],
)
def test_block_and_edge_counts_match_llvm_objdump(
    obj: str, function: str, loops: int, calls: int
) -> None:
    path = TESTS / "corpus" / "obj" / obj
    text = llvm_objdump([path], None, False, False)[path]
    graphs = object_graphs(read_object(path))
    starts, edges = _objdump_cfg(text, function, {g.name for g in graphs} - {function})
    g = next(g for g in graphs if g.name == function)
    assert {b.start for b in g.cfg.blocks} == starts
    assert len(g.cfg.edges) + len(g.cfg.escapes) == edges
    assert len(g.cfg.loops) == loops
    assert len(g.calls) == calls


def test_loop_edges_and_calls_are_drawn(tmp_path: Path) -> None:
    from bpfkit.asm.assemble import assemble

    src = (TESTS / "data" / "cfg" / "loop_call.s").read_text()
    obj = tmp_path / "loop_call.o"
    obj.write_bytes(assemble(src, "loop_call.s"))
    dot = to_dot(object_graphs(read_object(obj), "prog"), "loop_call.o")
    assert 'p0b1 -> p0b1 [label="taken (loop)"' in dot
    assert 'p0b2 -> p1b0 [style=dashed, color="#0550ae", label="call sub"' in dot
    assert dot.count("subgraph cluster_") == 2  # prog and the sub it calls


def test_source_lines_from_btf_ext() -> None:
    graphs = object_graphs(read_object(TESTS / "corpus" / "obj" / "subprogs_v4_g.o"), "sum_to")
    lines = [ln for blk in graphs[0].lines for ln in blk]
    assert "; for (int i = 0; i < n && i < 64; i++)" in lines
    assert "; return s;" in lines


def test_dot_to_stdout_needs_no_graphviz(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cfg", str(TESTS.parent / "examples" / "hello" / "hello.o")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph cfg {") and "call 6  ; bpf_trace_printk" in out


@pytest.mark.requires("graphviz")
def test_dot_accepts_the_dot_file_and_png_is_a_png(tmp_path: Path) -> None:
    hello = str(TESTS.parent / "examples" / "hello" / "hello.o")
    assert main(["cfg", hello, "-o", str(tmp_path / "h.dot")]) == 0
    subprocess.run(["dot", "-Tsvg", "-o", "/dev/null", str(tmp_path / "h.dot")], check=True)
    assert main(["cfg", hello, "-o", str(tmp_path / "h.png")]) == 0
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_requests_exit_1_with_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hello = str(TESTS.parent / "examples" / "hello" / "hello.o")
    assert main(["cfg", hello, "-o", str(tmp_path / "h.jpg")]) == 1
    assert "name it .svg, .png or .dot" in capsys.readouterr().err
    assert not (tmp_path / "h.jpg").exists()
    assert main(["cfg", hello, "--program", "nope"]) == 1
    assert "no program named 'nope'" in capsys.readouterr().err
