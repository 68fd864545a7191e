"""``bpfkit prog dump xlated`` against bpftool (Debian 12's v7.1, the oracle) on the same
loaded programs: the plain listing, ``linum``, ``opcodes`` and ``visual`` text byte for
byte, and ``--json`` equal to bpftool's ``-j`` (per instruction ``proto``, ``src``,
``file``, ``line_num``, ``line_col``, ``disasm``, ``opcodes``) for

- a C program of two functions with a loop (tests/data/bpftool/jited.c): prototypes,
  source lines, a bpf-to-bpf call named by the callee's JIT symbol, two DOT clusters;
- the execsnoop example (helper calls named by the kernel functions they became, a ring
  buffer map by id, a block that ends in a helper call);
- a program compiled from Python by bpfkit.lang (tests/data/lang/functions.py: four
  functions, a callback passed by address to bpf_loop, Python source lines).

``file FILE`` writes what bpftool writes; errors are one message."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bpfkit.cli.main import main
from bpfkit.kernel.collection import load_collection
from bpfkit.kernel.info import prog_info
from bpfkit.obj import read_object
from helpers import ROOT, TESTS, clang_bpf, fails

pytestmark = pytest.mark.requires("bpf", "bpftool", "clang19")

MODES = ("", "linum", "opcodes", "visual")


@pytest.fixture(scope="module")
def progs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Program ids by name, of the three objects loaded for the module's tests."""
    from bpfkit.lang.compiler import compile_file

    tmp = tmp_path_factory.mktemp("xlated")
    objs = [
        clang_bpf(TESTS / "data" / "bpftool" / "jited.c", tmp / "jited.o"),
        clang_bpf(ROOT / "examples" / "execsnoop" / "execsnoop.c", tmp / "execsnoop.o"),
    ]
    lang = tmp / "functions.o"
    lang.write_bytes(compile_file(str(TESTS / "data" / "lang" / "functions.py")).obj)
    objs.append(lang)
    colls = [load_collection(read_object(str(o))) for o in objs]
    try:
        ids = {}
        for c in colls:
            for name, prog in c.programs.items():
                ids[name] = str(prog_info(prog.fd).id)
        yield ids
    finally:
        for c in colls:
            c.close()


def bpftool(*args: str) -> str:
    return subprocess.run(["bpftool", *args], capture_output=True, text=True, check=True).stdout


def bpfkit(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("prog", ["bk_jit_prog", "trace_execve", "prog"])
@pytest.mark.parametrize("mode", MODES)
def test_text_equals_bpftool(
    progs: dict[str, str], prog: str, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    words = ["prog", "dump", "xlated", "id", progs[prog], *mode.split()]
    theirs = bpftool(*words)
    assert bpfkit(capsys, *words) == theirs


@pytest.mark.parametrize("prog", ["bk_jit_prog", "trace_execve", "prog"])
@pytest.mark.parametrize("mode", MODES)
def test_json_equals_bpftool(
    progs: dict[str, str], prog: str, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    words = ["prog", "dump", "xlated", "id", progs[prog], *mode.split()]
    theirs = json.loads(bpftool("-j", *words))
    assert json.loads(bpfkit(capsys, *words, "--json")) == theirs


def test_what_the_listings_show(progs: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    # The comparisons above are only as good as what the programs exercise: check that
    # they do show prototypes, source lines, named calls and several DOT clusters.
    text = bpfkit(capsys, "prog", "dump", "xlated", "id", progs["bk_jit_prog"], "linum")
    lines = text.splitlines()
    assert lines[0] == "int bk_jit_prog(struct __sk_buff * skb):"
    assert "int bk_mix(struct __sk_buff * skb, int rounds):" in lines
    assert any(
        ln.startswith("; __u32 k = 0; [file:") and "jited.c line_num:26" in ln for ln in lines
    )
    assert any("call pc+" in ln and "#bpf_prog_" in ln and ln.endswith("_bk_mix") for ln in lines)
    records: list[dict[str, Any]] = json.loads(
        bpfkit(capsys, "prog", "dump", "xlated", "id", progs["prog"], "linum", "--json")
    )
    protos = [r["proto"] for r in records if "proto" in r]
    assert len(protos) == 4 and records[0]["proto"] == "int prog(void * ctx)"
    assert any(r.get("file", "").endswith("functions.py") and r.get("line_num") for r in records)
    assert any("subprog[" in r["disasm"] for r in records)
    dot = bpfkit(capsys, "prog", "dump", "xlated", "id", progs["prog"], "visual")
    assert dot.count('subgraph "cluster_') == 4
    ops = bpfkit(capsys, "prog", "dump", "xlated", "id", progs["trace_execve"], "opcodes")
    assert "call bpf_get_current_pid_tgid#" in ops and "map[id:" in ops


def test_file_writes_the_raw_code(
    progs: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pid = progs["bk_jit_prog"]
    mine, theirs = tmp_path / "mine.bin", tmp_path / "theirs.bin"
    assert (
        json.loads(bpftool("-j", "prog", "dump", "xlated", "id", pid, "file", str(theirs))) is None
    )
    assert bpfkit(capsys, "prog", "dump", "xlated", "id", pid, "file", str(mine)) == ""
    assert mine.read_bytes() == theirs.read_bytes() and len(mine.read_bytes()) % 8 == 0
    out = bpfkit(capsys, "prog", "dump", "xlated", "id", pid, "file", str(mine), "--json")
    assert json.loads(out) is None


def test_llvm_syntax_keeps_the_annotations(
    progs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    pid = progs["bk_jit_prog"]
    kernel = bpfkit(capsys, "prog", "dump", "xlated", "id", pid).splitlines()
    llvm = bpfkit(capsys, "prog", "dump", "xlated", "id", pid, "--llvm").splitlines()
    assert len(llvm) == len(kernel)
    for k, ll in zip(kernel, llvm, strict=True):
        if k.endswith(":") or k.startswith(";"):
            assert ll == k
        else:
            assert ll.split(":")[0] == k.split(":")[0]
    assert llvm[-1].endswith(": exit") and any("r1 = 0x0" in ln or "r1 = 0" in ln for ln in llvm)


def test_errors_are_one_message(
    progs: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pid = progs["bk_jit_prog"]
    assert "unexpected 'sideways'" in fails(capsys, "prog", "dump", "xlated", "id", pid, "sideways")
    assert "visual" in fails(capsys, "prog", "dump", "xlated", "id", pid, "sideways")
    assert "no program with that id" in fails(capsys, "prog", "dump", "xlated", "id", "2147483000")
    assert "cannot write" in fails(
        capsys, "prog", "dump", "xlated", "id", pid, "file", str(tmp_path / "no" / "such")
    )


def test_a_name_of_several_programs_dumps_each_as_bpftool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same object loaded twice: `name NAME` matches both; bpftool prints each program's
    # header (its `prog show` first line / keys) before its dump.
    name = f"bk_twice_{os.getpid() % 100000}"
    src = tmp_path / "twice.c"
    src.write_text(
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
        f'SEC("socket") int {name}(void *ctx) {{ return 1; }}\n'
        'char LICENSE[] SEC("license") = "GPL";\n'
    )
    obj = clang_bpf(src, tmp_path / "twice.o")
    with load_collection(read_object(str(obj))), load_collection(read_object(str(obj))):
        words = ["prog", "dump", "xlated", "name", name]
        text = bpftool(*words)
        assert text.count(f"name {name}  tag ") == 2
        assert bpfkit(capsys, *words) == text
        theirs = json.loads(bpftool("-j", *words))
        assert json.loads(bpfkit(capsys, *words, "--json")) == theirs
        err = fails(capsys, *words, "visual")
        assert "2 programs are called" in err and "name one by id" in err
        # jited (bpftool of Debian 12 has no disassembler): the same headers.
        jited = json.loads(bpfkit(capsys, "prog", "dump", "jited", "name", name, "--json"))
        strip = [{k: v for k, v in t.items() if k != "insns"} for t in theirs]
        assert [{k: v for k, v in m.items() if k != "insns"} for m in jited] == strip
        assert all(m["insns"][0]["name"].endswith(name) for m in jited)
