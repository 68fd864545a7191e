"""``bpfkit explain`` shows each instruction's source line: ``.BTF.ext`` line info (what the
kernel's verifier log prints), else the DWARF line table (what ``llvm-objdump -S`` prints)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from bpfkit.cli.main import main
from helpers import ROOT, clang_bpf

SRC = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
\t__uint(type, BPF_MAP_TYPE_ARRAY);
\t__uint(max_entries, 1);
\t__type(key, __u32);
\t__type(value, __u64);
} hits SEC(".maps");

SEC("xdp")
int count(struct xdp_md *ctx)
{
\t__u32 zero = 0;
\t__u64 *n = bpf_map_lookup_elem(&hits, &zero);
\tif (!n)
\t\treturn XDP_ABORTED;
\t__sync_fetch_and_add(n, 1);
\tif (ctx->data_end - ctx->data > 100)
\t\treturn XDP_DROP;
\treturn XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


def _explain_json(path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    assert main(["explain", "--format", "json", str(path)]) == 0
    (prog,) = json.loads(capsys.readouterr().out)["programs"]
    insns: list[dict[str, object]] = prog["instructions"]
    return insns


def _objdump_lines(path: Path) -> dict[int, tuple[str, int]]:
    """``{slot: (file, line)}`` where llvm-objdump-19 -l prints a ``; file:line`` line."""
    out = subprocess.run(
        ["llvm-objdump-19", "-d", "-l", "--no-show-raw-insn", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    got: dict[int, tuple[str, int]] = {}
    pending: tuple[str, int] | None = None
    for line in out.splitlines():
        m = re.match(r"^; (/.*):(\d+)$", line)
        if m:
            pending = (m[1], int(m[2]))
            continue
        m = re.match(r"^\s*(\d+):\t", line)
        if m and pending is not None:
            got[int(m[1])] = pending
            pending = None
    return got


@pytest.mark.requires("clang")
def test_dwarf_lines_are_llvm_objdumps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without .BTF.ext, the lines come from DWARF: the same as llvm-objdump-19 -l."""
    src = tmp_path / "count.c"
    src.write_text(SRC)
    obj = clang_bpf(src, tmp_path / "count.o")
    bare = tmp_path / "bare.o"
    subprocess.run(
        ["llvm-objcopy-19", "--remove-section", ".BTF.ext", str(obj), str(bare)], check=True
    )
    want = _objdump_lines(bare)
    assert want, "llvm-objdump printed no lines: the object has no DWARF"
    insns = _explain_json(bare, capsys)
    got = {
        int(str(e["index"])): (str(s["file"]), int(str(s["line"])))
        for e in insns
        if isinstance(s := e["source"], dict)
    }
    assert got == want
    text = SRC.splitlines()
    for e in insns:
        if isinstance(s := e["source"], dict):
            assert s["text"] == text[int(str(s["line"])) - 1].strip()


@pytest.mark.requires("clang")
def test_btf_ext_lines_in_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "count.c"
    src.write_text(SRC)
    obj = clang_bpf(src, tmp_path / "count.o")
    insns = _explain_json(obj, capsys)
    shown = [s for e in insns if isinstance(s := e["source"], dict)]
    text = SRC.splitlines()
    lines = {int(str(s["line"])) for s in shown}
    # The lookup, its NULL check and the counter: the lines the verifier log would name.
    assert {15, 16, 18} <= lines
    for s in shown:
        assert str(s["file"]).endswith("count.c")
        assert s["text"] == text[int(str(s["line"])) - 1].strip()
    assert any(isinstance(s["column"], int) and s["column"] > 0 for s in shown)
    assert main(["explain", str(obj)]) == 0
    term = capsys.readouterr().out
    assert "; count.c:15:" in term and "bpf_map_lookup_elem(&hits, &zero);" in term
    assert main(["explain", "--format", "md", str(obj)]) == 0
    md = capsys.readouterr().out
    assert "Source: `count.c:16:" in md


def test_python_programs_show_python_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Objects built from Python carry .BTF.ext lines pointing at the .py file."""
    py = ROOT / "examples" / "python" / "syscount.py"
    obj = tmp_path / "syscount.o"
    assert main(["build", str(py), "-o", str(obj)]) == 0
    capsys.readouterr()
    insns = _explain_json(obj, capsys)
    shown = [s for e in insns if isinstance(s := e["source"], dict)]
    assert shown
    text = py.read_text().splitlines()
    for s in shown:
        assert str(s["file"]).endswith("syscount.py")
        assert s["text"] == text[int(str(s["line"])) - 1].strip()


def test_no_debug_info_no_lines(capsys: pytest.CaptureFixture[str]) -> None:
    insns = _explain_json(ROOT / "examples" / "hello" / "hello.o", capsys)
    assert all(e["source"] is None for e in insns)
