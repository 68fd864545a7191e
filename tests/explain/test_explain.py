"""bpfkit explain: the seed program's facts (asserted on the JSON output), selection,
the generated walkthrough, and every corpus object."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bpfkit.cli.main import main
from bpfkit.explain.explain import explain_object
from bpfkit.explain.render import render, to_dict
from bpfkit.obj.reader import read_object
from bpfkit.uapi.helpers import by_id
from helpers import ROOT, verifier_log

ROOT = ROOT
HELLO = ROOT / "examples" / "hello" / "hello.o"
DOC = ROOT / "docs" / "hello-from-rust.md"


def _explain_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["explain", "--format", "json", *args]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


@pytest.fixture
def hello(capsys: pytest.CaptureFixture[str]) -> dict[int, dict[str, Any]]:
    doc = _explain_json(capsys, str(HELLO))
    (prog,) = doc["programs"]
    assert prog["name"] == "kprobe__sys_clone" and prog["section"] == "kprobe/SyS_clone"
    return {i["index"]: i for i in prog["instructions"]}


def test_instructions_0_1_put_om_rust_in_r1(hello: dict[int, dict[str, Any]]) -> None:
    lddw = hello[0]
    assert lddw["bytes"] == "18 01 00 00 6f 6d 20 72 00 00 00 00 75 73 74 0a"
    assert lddw["registers"]["r1"]["text"] == '"om rust\\n"'
    assert lddw["fields"]["imm64"]["value"] == 0x0A74737572206D6F
    assert lddw["fields"]["imm"]["value"] == 0x72206D6F
    assert lddw["fields"]["imm_hi"]["value"] == 0x0A747375
    # Little-endian: the immediate's lowest byte, 0x6f, is 'o' and comes first.
    assert "0x6f is 'o'" in lddw["text"] and "little-endian" in lddw["text"]
    assert hello[3]["registers"]["r1"]["text"] == '"hello fr"'
    assert 1 not in hello and 4 not in hello  # second lddw slots are not instructions


def _stack(insn: dict[str, Any]) -> list[tuple[int, int, str | None]]:
    return [(s["start"], s["end"], s["text"]) for s in insn["stack"]]


def test_stack_contents_after_each_store(hello: dict[int, dict[str, Any]]) -> None:
    assert _stack(hello[2]) == [(-24, -17, '"om rust\\n"')]
    assert _stack(hello[5]) == [(-32, -17, '"hello from rust\\n"')]
    assert _stack(hello[7]) == [(-32, -16, '"hello from rust\\n\\0"')]
    for i in (2, 5, 7):
        assert hello[i]["stack_changed"]
    # From instruction 7 on, fp-32..fp-16 holds the whole string.
    for i in (8, 9, 10, 11, 12, 13):
        assert _stack(hello[i]) == [(-32, -16, '"hello from rust\\n\\0"')]
        assert not hello[i]["stack_changed"]
    assert "r10 is the read-only frame pointer" in hello[2]["text"]
    assert "fp-24..fp-17" in hello[2]["text"]
    assert hello[2]["fields"]["off"]["value"] == -24
    assert "0xffe8" in hello[2]["fields"]["off"]["text"]
    assert hello[2]["fields"]["dst"]["value"] == 10 and hello[2]["fields"]["src"]["value"] == 1
    assert "low nibble" in hello[2]["fields"]["dst"]["text"]
    assert "high nibble" in hello[2]["fields"]["src"]["text"]


def test_call_names_helper_and_arguments(hello: dict[int, dict[str, Any]]) -> None:
    assert hello[9]["registers"]["r1"]["value"] == "fp-32"
    call = hello[11]["call"]
    assert call["id"] == 6 and call["name"] == "bpf_trace_printk"
    assert call["signature"] == 'bpf_trace_printk(fmt = fp-32 "hello from rust\\n", fmt_size = 17)'
    assert call["prototype"] == "long bpf_trace_printk(const char *fmt, __u32 fmt_size, ...)"
    assert [a["register"] for a in call["args"]] == ["r1", "r2"]
    assert hello[11]["kernel"] == "(85) call bpf_trace_printk#6"
    assert hello[13]["text"].startswith("Returns") and "r0 = 0" in hello[13]["text"]


def test_kernel_syntax_in_output(hello: dict[int, dict[str, Any]]) -> None:
    assert hello[6]["kernel"] == "(b7) r1 = 0"
    assert hello[2]["kernel"] == "(7b) *(u64 *)(r10 -24) = r1"
    assert hello[0]["kernel"] == "(18) r1 = 0xa74737572206d6f"
    assert hello[2]["llvm"] == "*(u64 *)(r10 - 24) = r1"


def test_section_explained() -> None:
    x = explain_object(read_object(HELLO))
    info = x.programs[0].section_info
    assert info.prog_type == "BPF_PROG_TYPE_KPROBE"
    assert "__x64_sys_clone" in info.attach and "clone" in info.attach
    assert "struct pt_regs" in info.context


def test_program_and_section_select(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = _explain_json(capsys, "--program", "kprobe__sys_clone", str(HELLO))
    assert [p["name"] for p in doc["programs"]] == ["kprobe__sys_clone"]
    doc = _explain_json(capsys, "--section", "kprobe/SyS_clone", str(HELLO))
    assert len(doc["programs"]) == 1
    assert main(["explain", "--section", "xdp", str(HELLO)]) == 1
    assert "no program in section 'xdp'" in capsys.readouterr().err
    assert main(["explain", "--program", "nope", str(HELLO)]) == 1
    assert "no program named 'nope'" in capsys.readouterr().err
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"not an elf")
    assert main(["explain", str(bad)]) == 1
    assert "bad.o" in capsys.readouterr().err


def test_walkthrough_is_up_to_date() -> None:
    # docs/hello-from-rust.md is `bpfkit explain --format md examples/hello/hello.o`, run
    # from the project root; regenerate it with that command if this fails.
    done = subprocess.run(
        [sys.executable, "-m", "bpfkit", "explain", "--format", "md", "examples/hello/hello.o"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert DOC.read_text() == done.stdout, "regenerate docs/hello-from-rust.md"


def test_terminal_fits_80_columns_and_pipes() -> None:
    x = explain_object(read_object(HELLO))
    for syntax in ("llvm", "kernel"):
        text = render(x, "terminal", syntax=syntax, color=False)
        assert "\x1b[" not in text
        assert max(len(line) for line in text.splitlines()) <= 80
        assert '"hello from rust\\n\\0"' in text
    colored = render(x, "terminal", color=True)
    assert "\x1b[" in colored


def _corpus_objects() -> list[Path]:
    objs = sorted((ROOT / "tests" / "corpus").rglob("*.o"))
    objs += sorted((ROOT / "examples").rglob("*.o"))
    return objs


@pytest.fixture(scope="module")
def built_corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Corpus objects: those committed, plus the C sources of tests/corpus/src built here
    with clang-19 (if available) so the test never runs on an empty list."""
    objs = _corpus_objects()
    out = tmp_path_factory.mktemp("corpus")
    if shutil.which("clang-19"):
        for src in sorted((ROOT / "tests" / "corpus" / "src").glob("*.c")):
            o = out / (src.stem + ".o")
            r = subprocess.run(
                ["clang-19", "-O2", "-g", "-target", "bpf", "-mcpu=v3"]
                + ["-I/usr/include/x86_64-linux-gnu", "-c", str(src), "-o", str(o)],
                capture_output=True,
            )
            if r.returncode == 0:
                objs.append(o)
    return objs


def test_every_corpus_object_explains(built_corpus: list[Path]) -> None:
    assert built_corpus
    for path in built_corpus:
        obj = read_object(path)
        x = explain_object(obj)
        assert len(x.programs) == len(obj.programs), path
        for fmt in ("terminal", "md", "json"):
            assert render(x, fmt)
        for p in x.programs:
            for e in p.instructions:
                assert e.fields and e.text, (path, p.name, e.index)


@pytest.fixture(scope="module")
def corpus_json(built_corpus: list[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Each corpus object with its explanation as ``--format json`` prints it."""
    return [(path, to_dict(explain_object(read_object(path)))) for path in built_corpus]


def test_every_corpus_helper_call_matches_the_uapi(
    corpus_json: list[tuple[Path, dict[str, Any]]],
) -> None:
    calls = 0
    for path, doc in corpus_json:
        for p in doc["programs"]:
            for i in p["instructions"]:
                c = i["call"]
                if c is None or c["kind"] != "helper":
                    continue
                calls += 1
                h = by_id(c["id"])
                assert h is not None and c["name"] == h.name, (path, i["index"])
                assert c["prototype"] == h.prototype
                declared = [a for a in c["args"] if a["ctype"] != "..."]
                assert [a["name"] for a in declared] == [a.name for a in h.args]
                assert h.variadic or len(declared) == len(c["args"])
                assert i["kernel"] == f"({i['fields']['opcode']['value']:02x}) call {h.name}#{h.id}"
    assert calls > 0


def test_corpus_helper_ids_match_the_kernel(
    corpus_json: list[tuple[Path, dict[str, Any]]], vmlinux_enums: dict[str, dict[str, int]]
) -> None:
    # The running kernel's BPF_FUNC_* ids, read by bpftool (not by bpfkit).
    kernel = vmlinux_enums["bpf_func_id"]
    calls = 0
    for path, doc in corpus_json:
        for p in doc["programs"]:
            for i in p["instructions"]:
                c = i["call"]
                if c is not None and c["kind"] == "helper":
                    h = by_id(c["id"])
                    assert h is not None
                    assert kernel["BPF_FUNC_" + h.short_name] == c["id"], (path, i["index"])
                    calls += 1
    assert calls > 0


def test_markdown_kernel_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--format", "md", "--syntax", "kernel", str(HELLO)]) == 0
    md = capsys.readouterr().out
    assert "(85) call bpf_trace_printk#6" in md and "llvm-objdump: `call 6`" in md
    assert "verifier log: `(07) r1 += -32 ; R1=fp-32`" in md
    assert "--syntax kernel" in md.splitlines()[2]
    assert main(["explain", "--syntax", "kernel", "--color", "never", str(HELLO)]) == 0
    term = capsys.readouterr().out
    assert "  11  (85) call bpf_trace_printk#6" in term and "\x1b[" not in term


# The Linux 6.18 verifier's log_level-2 lines for the seed program (BPF_PROG_TYPE_KPROBE):
# "N: (op) text ; state".  The live test below re-reads them from the running kernel.
_HELLO_VLOG = {
    0: "R1=0xa74737572206d6f",
    2: "R1=0xa74737572206d6f R10=fp0 fp-24=0xa74737572206d6f",
    3: "R1=0x7266206f6c6c6568",
    5: "R1=0x7266206f6c6c6568 R10=fp0 fp-32=0x7266206f6c6c6568",
    6: "R1=0",
    7: "R1=0 R10=fp0 fp-16=???????0",
    8: "R1=fp0 R10=fp0",
    9: "R1=fp-32",
    10: "R2=17",
    12: "R0=0",
}


def test_verifier_notation_matches_the_kernel_log(hello: dict[int, dict[str, Any]]) -> None:
    for index, state in _HELLO_VLOG.items():
        assert hello[index]["verifier"] == state, index


@pytest.mark.requires("bpf")
def test_verifier_notation_matches_the_live_log() -> None:

    (prog,) = read_object(HELLO).programs
    log = verifier_log(b"".join(i.encode() for i in prog.insns), prog_type=2)
    live = {
        int(m[1]): m[3].strip()
        for m in re.finditer(r"^(\d+): (\(.*?\) .*?)\s+; (.*)$", log, re.MULTILINE)
    }
    assert live, log[-2000:]
    x = {e.index: e for e in explain_object(read_object(HELLO)).programs[0].instructions}
    for index, state in live.items():
        assert x[index].verifier == state, index
