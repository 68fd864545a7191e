"""``bpfkit prog dump jited`` on a two-function program loaded here: each instruction's
text is what llvm-mc-19 disassembles from the same bytes (branch targets shown as kernel
addresses, as bpftool's LLVM disassembler shows them), the image and its functions are
what the kernel and /proc/kallsyms say (bpftool's bytes_jited), the prototypes and source
lines are bpftool's (its ``prog dump xlated ... linum`` prints them with the same code);
errors are one message."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bpfkit.cli.main import main
from bpfkit.kernel.collection import load_collection
from bpfkit.kernel.info import prog_info
from bpfkit.obj import read_object
from helpers import TESTS, as_nobody, clang_bpf, fails
from helpers import llvm_mc_x86 as llvm_mc

pytestmark = pytest.mark.requires("bpf", "bpftool", "clang19", "llvm19")


@pytest.fixture(scope="module")
def prog_id(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    obj = clang_bpf(TESTS / "data" / "bpftool" / "jited.c", tmp_path_factory.mktemp("j") / "j.o")
    with load_collection(read_object(str(obj))) as c:
        yield str(prog_info(c.programs["bk_jit_prog"].fd).id)


def bpfkit(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 0
    return capsys.readouterr().out


def dump(capsys: pytest.CaptureFixture[str], pid: str, *opts: str) -> Any:
    return json.loads(bpfkit(capsys, "prog", "dump", "jited", "id", pid, *opts, "--json"))


def _kallsyms() -> dict[int, str]:
    out = {}
    for line in Path("/proc/kallsyms").read_text().splitlines():
        if line.endswith("[bpf]"):
            addr, _, name = line.split()[:3]
            out[int(addr, 16)] = name
    return out


def test_instructions_are_llvm_mc_text_and_targets(
    prog_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    funcs = dump(capsys, prog_id, "opcodes")
    text = bpfkit(capsys, "prog", "dump", "jited", "id", prog_id)
    insn_lines = [ln for ln in text.splitlines() if re.match(r"^ *[0-9a-f]+:\t", ln)]
    symbols: dict[str, set[int]] = {}
    for addr, name in _kallsyms().items():
        # The same program loaded elsewhere at the same time (another test run on this
        # kernel) has the same name: each address of that name is a candidate.
        symbols.setdefault(name, set()).add(addr)
    assert len(funcs) == 2  # the program and bk_mix
    branches = 0
    at = 0
    for fn in funcs:
        bases: set[int] = set()
        code = b"".join(bytes(int(b, 16) for b in i["opcodes"]) for i in fn["insns"])
        theirs = llvm_mc(code)
        mine = insn_lines[at : at + len(fn["insns"])]
        at += len(fn["insns"])
        assert len(theirs) == len(mine) == len(fn["insns"])
        pc = 0
        for insn, ours, ref in zip(fn["insns"], mine, theirs, strict=True):
            assert insn["pc"] == f"0x{pc:x}" and ours.startswith(f"{pc:4x}:")
            body = ours.split(":", 1)[1]
            size = len(insn["opcodes"])
            m = re.fullmatch(r"(\t\w+\t)0x([0-9a-f]+)", body)
            if m and re.fullmatch(re.escape(m.group(1)) + r"-?\d+", ref):
                # A relative branch: llvm-mc shows the displacement, bpftool the target;
                # the function's address is the target less the branch's reach.
                bases.add(int(m.group(2), 16) - (pc + size + int(ref.split("\t")[2])))
                branches += 1
            else:
                assert body == ref
            pc += size
        # Every branch of the function agrees on one address: the function's symbol.
        assert len(bases) <= 1 and bases <= symbols[fn["name"]], (fn["name"], bases)
    assert branches >= 4  # calls, the loop's jumps, the exits' jumps


def test_image_functions_and_names_are_the_kernels(
    prog_id: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    funcs = dump(capsys, prog_id, "opcodes")
    shown = json.loads(
        subprocess.run(
            ["bpftool", "-j", "prog", "show", "id", prog_id], capture_output=True, text=True
        ).stdout
    )
    total = sum(len(i["opcodes"]) for fn in funcs for i in fn["insns"])
    assert total == shown["bytes_jited"]
    assert funcs[0]["name"] == f"bpf_prog_{shown['tag']}_bk_jit_prog"
    assert funcs[1]["name"].startswith("bpf_prog_") and funcs[1]["name"].endswith("_bk_mix")
    raw = tmp_path / "image.bin"
    assert bpfkit(capsys, "prog", "dump", "jited", "id", prog_id, "file", str(raw)) == ""
    assert raw.read_bytes() == b"".join(
        bytes(int(b, 16) for b in i["opcodes"]) for fn in funcs for i in fn["insns"]
    )


def test_prototypes_and_source_lines_are_bpftools(
    prog_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    xlated = subprocess.run(
        ["bpftool", "prog", "dump", "xlated", "id", prog_id, "linum"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    text = bpfkit(capsys, "prog", "dump", "jited", "id", prog_id, "linum").splitlines()
    protos = [ln for ln in text if ln.endswith(":") and "(" in ln]
    assert protos == [ln for ln in xlated if ln.endswith(":")]
    assert protos == [
        "int bk_jit_prog(struct __sk_buff * skb):",
        "int bk_mix(struct __sk_buff * skb, int rounds):",
    ]
    sources = [ln for ln in text if ln.startswith("; ")]
    assert len(sources) >= 6
    assert set(sources) <= {ln for ln in xlated if ln.startswith("; ")}
    plain = bpfkit(capsys, "prog", "dump", "jited", "id", prog_id).splitlines()
    assert [ln for ln in plain if ln.startswith("; ")] == [ln.split(" [file:")[0] for ln in sources]
    funcs = dump(capsys, prog_id, "linum")
    srcs = [i for fn in funcs for i in fn["insns"] if "src" in i]
    assert [
        f"; {i['src']} [file:{i['file']} line_num:{i['line_num']} line_col:{i.get('line_col', 0)}]"
        for i in srcs
    ] == sources


def test_json_operation_and_operands(prog_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = bpfkit(capsys, "prog", "dump", "jited", "id", prog_id)
    insn_lines = [
        ln.split(":", 1)[1] for ln in text.splitlines() if re.match(r"^ *[0-9a-f]+:\t", ln)
    ]
    insns = [i for fn in dump(capsys, prog_id) for i in fn["insns"]]
    assert len(insns) == len(insn_lines)
    for insn, line in zip(insns, insn_lines, strict=True):
        words = line.split("\t")
        assert insn["operation"] == words[1]
        if len(words) > 2:
            assert insn["operands"] == [w for w in re.split(r"[ \t,()]+", words[2]) if w]
        else:
            assert insn["operands"] == [None]
        assert "opcodes" not in insn


def test_errors_are_one_message(
    prog_id: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "no program with that id" in fails(capsys, "prog", "dump", "jited", "id", "2147483000")
    assert "unexpected 'sideways'" in fails(
        capsys, "prog", "dump", "jited", "id", prog_id, "sideways"
    )
    from bpfkit.kernel import info
    from bpfkit.syscalls import attrs

    real = info._get_info

    def no_jit(fd: int, struct: Any, what: str) -> None:
        real(fd, struct, what)
        if isinstance(struct, attrs.ProgInfo):
            struct.jited_prog_len = 0

    monkeypatch.setattr(info, "_get_info", no_jit)
    assert "has no JIT image" in fails(capsys, "prog", "dump", "jited", "id", prog_id)

    def hidden(fd: int, struct: Any, what: str) -> None:
        real(fd, struct, what)
        if isinstance(struct, attrs.ProgInfo) and struct.jited_prog_insns:
            struct.jited_prog_insns = 0  # what the kernel does when bpf_dump_raw_ok says no

    monkeypatch.setattr(info, "_get_info", hidden)
    assert "does not show" in fails(capsys, "prog", "dump", "jited", "id", prog_id)


def test_unprivileged_user_gets_one_message(prog_id: str) -> None:
    cmd, env = as_nobody(
        "-m", "bpfkit", "prog", "dump", "jited", "id", prog_id, setpriv=("--inh-caps=-all",)
    )
    r = subprocess.run(cmd, capture_output=True, text=True, cwd="/", env=env)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("bpfkit: error: ") and "Traceback" not in r.stderr
    assert "root" in r.stderr.lower() or "privilege" in r.stderr.lower()
