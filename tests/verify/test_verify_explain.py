"""Rejections explained: the message table, the log reader, and (live) the explanation of
three classic mistakes in C pointing at the line marked ``/* FAIL */``."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfkit.cli.main import main
from bpfkit.verify import CLASSES, classify, explain_rejection, parse_log, render
from helpers import TESTS, as_nobody, clang_bpf

DATA = TESTS / "data" / "verify"

# Messages as the kernel words them (kernel/bpf/verifier.c), and their class.
KERNEL_MESSAGES = [
    ("R0 invalid mem access 'map_value_or_null'", "null"),
    ("R1 type=map_value_or_null expected=fp, pkt, pkt_meta, map_key, map_value", "null"),
    ("invalid access to packet, off=12 size=1, R2(id=0,off=12,r=12)", "packet"),
    ("R3 offset is outside of the packet", "packet"),
    ("R0 !read_ok", "uninit"),
    ("invalid read from stack off -8+0 size 8", "uninit"),
    ("invalid read from stack R10 off=-520 size=4", "ctx"),
    ("invalid indirect read from stack R2 off -8+0 size 8", "uninit"),
    ("R1 min value is negative, either use unsigned index or do a if (index >=0) check.", "bounds"),
    ("R1 unbounded memory access, make sure to bounds check any such access", "bounds"),
    ("invalid access to map value, value_size=8 off=8 size=8", "bounds"),
    ("invalid bpf_context access off=76 size=4", "ctx"),
    ("invalid stack off=-520 size=8", "ctx"),
    ("R1 invalid mem access 'scalar'", "type"),
    ("R1 pointer arithmetic on map_ptr prohibited", "type"),
    ("Unreleased reference id=2 alloc_insn=6", "reference"),
    ("back-edge from insn 5 to 2", "loop"),
    ("infinite loop detected at insn 3", "loop"),
    ("BPF program is too large. Processed 1000001 insn", "complexity"),
    ("program of this type cannot use helper bpf_probe_read#4", "helper"),
    ("unknown func bpf_trace_printk#6", "helper"),
    ("At program exit the register R0 has smin=0 smax=7 should have been in [0, 1]", "return"),
    ("unreachable insn 3", "code"),
    ("jump out of range from insn 1 to 9", "code"),
]


@pytest.mark.parametrize(("message", "key"), KERNEL_MESSAGES)
def test_kernel_messages_fall_in_their_class(message: str, key: str) -> None:
    assert classify(message).key == key


def test_every_class_has_a_hint_and_an_example() -> None:
    for c in CLASSES:
        assert c.patterns and c.hint and c.example, c.key
    assert classify("something the table does not know").key == "other"


def test_a_recorded_log_alone_names_insn_source_and_class() -> None:
    # The kernel's log (6.18, log_level 2) of tests/data/verify/null_check.c.
    text = (DATA / "null_check.log").read_text()
    log = parse_log(text)
    assert log.reason == "R0 invalid mem access 'map_value_or_null'"
    assert [s.idx for s in log.path()] == [0, 1, 2, 3, 4, 6, 7]
    e = explain_rejection(None, "count_packets", text)
    assert (e.insn, e.cls and e.cls.key) == (7, "null")
    assert e.source is not None and (e.source.file, e.source.line) == ("null_check.c", 16)
    assert "compare it with NULL" in render(e)


def test_path_follows_the_branch_that_was_pushed() -> None:
    # Segment 1 walks 0..4 (pushing 3->5), then resumes at 5 and fails at 6.
    text = "\n".join(
        [
            "0: (b7) r0 = 0",
            "1: (61) r2 = *(u32 *)(r1 +0)",
            "2: (b7) r3 = 1",
            "3: (15) if r2 == 0x0 goto pc+1",
            "4: (95) exit",
            "from 3 to 5: R0=0 R1=ctx() R2=0 R10=fp0",
            "5: (bf) r0 = r4",
            "R4 !read_ok",
        ]
    )
    log = parse_log(text)
    assert [s.idx for s in log.path()] == [0, 1, 2, 3, 5]
    assert log.reason == "R4 !read_ok"


def _marked_line(src: Path) -> int:
    return next(n for n, line in enumerate(src.read_text().splitlines(), 1) if "/* FAIL */" in line)


CASES = [
    ("null_check.c", "null", "compare it with NULL", "bpf_map_lookup_elem() at insn"),
    (
        "packet_bounds.c",
        "packet",
        "compare the pointer plus the access size with data_end",
        "it needs data + 13 <= data_end",
    ),
    ("unbounded_loop.c", "loop", "constant upper bound", "the loop closing at insn"),
]


@pytest.mark.requires("bpf", "clang19")
@pytest.mark.parametrize(("name", "key", "fix", "origin"), CASES)
def test_kernel_rejection_is_explained_at_the_source_line(
    name: str,
    key: str,
    fix: str,
    origin: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = DATA / name
    obj = clang_bpf(src, tmp_path / (src.stem + ".o"))
    assert main(["verify", "--kernel", str(obj)]) == 1
    out = capsys.readouterr().out
    line = _marked_line(src)
    assert f"source:   {src}:{line}" in out
    assert f">{line:5d} | " in out
    assert f"class:    {key} " in out
    assert fix in out and origin in out
    # bpfkit load explains the same rejection before its error line.
    assert main(["load", str(obj)]) == 1
    err = capsys.readouterr().err
    assert f">{line:5d} | " in err and f"class:    {key} " in err
    assert err.rstrip().splitlines()[-1].startswith("bpfkit: error: loading program")


@pytest.mark.requires("bpf", "clang19")
def test_verify_kernel_accepts_a_good_program(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "ok.c"
    src.write_text(
        (DATA / "null_check.c")
        .read_text()
        .replace("*value += 1; /* FAIL */", "if (value)\n        *value += 1;")
    )
    obj = clang_bpf(src, tmp_path / "ok.o")
    assert main(["verify", "--kernel", str(obj)]) == 0
    assert "count_packets: accepted by the kernel verifier" in capsys.readouterr().out


def _nobody_can_run_bpfkit(cwd: Path) -> bool:
    """True if ``nobody`` can import bpfkit from this checkout (its path readable)."""
    import os
    import shutil
    import subprocess

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return False
    probe, env = as_nobody("-c", "import bpfkit.verify, elftools")
    return subprocess.run(probe, capture_output=True, env=env, cwd=cwd).returncode == 0


@pytest.mark.requires("clang19")
@pytest.mark.parametrize(("name", "key", "fix", "origin"), CASES)
def test_static_verifier_explains_at_the_source_line_without_root(
    name: str, key: str, fix: str, origin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # bpfkit's own verifier with no bpf() at all: run as the unprivileged user nobody where
    # nobody can read this checkout; else in-process with a syscall backend that fails
    # every call (the test fails if bpfkit verify tries one).
    import shutil
    import subprocess
    import tempfile

    from bpfkit.syscalls import use_backend

    src = DATA / name
    # pytest's tmp_path is private to root: the object goes where nobody can read it.
    shared = Path(tempfile.mkdtemp(prefix="bpfkit-verify-"))
    try:
        shared.chmod(0o755)
        obj = clang_bpf(src, shared / (src.stem + ".o"))
        obj.chmod(0o644)
        if _nobody_can_run_bpfkit(shared):
            cmd, env = as_nobody("-m", "bpfkit", "verify", str(obj))
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=shared)
            status, out = res.returncode, res.stdout
        else:
            calls: list[int] = []

            def no_bpf(cmd: int, attr: object) -> int:
                calls.append(cmd)
                raise OSError(1, "bpf() is not available")

            with use_backend(no_bpf):  # type: ignore[arg-type]
                status = main(["verify", str(obj)])
            out = capsys.readouterr().out
            assert not calls
    finally:
        shutil.rmtree(shared)
    assert status == 1, out
    line = _marked_line(src)
    assert "rejected by bpfkit verify (Linux 6.18 rules" in out
    assert f">{line:5d} | " in out, out
    assert f"class:    {key} " in out and fix in out


RUST_CASES = [
    ("null_check.rs", "count_packets_rs", "null", "compare it with NULL"),
    ("packet_bounds.rs", "read_proto_rs", "packet", "compare the pointer plus the access size"),
    ("unbounded_loop.rs", "wait_for_queue_rs", "loop", "constant upper bound"),
]


@pytest.mark.requires("rustc")
@pytest.mark.parametrize(("name", "func", "key", "fix"), RUST_CASES)
def test_rust_rejection_names_function_and_instruction(
    name: str,
    func: str,
    key: str,
    fix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Rust objects carry no line info: the explanation points at the function and the
    # instruction.  bpfkit's own verifier, then (as root) the kernel's.
    import os

    from bpfkit.toolchain import build

    obj = build(DATA / name, tmp_path / (Path(name).stem + ".o"))
    commands = [["verify", str(obj)]]
    if os.geteuid() == 0:
        commands.append(["verify", "--kernel", str(obj)])
    for argv in commands:
        assert main(argv) == 1
        out = capsys.readouterr().out
        assert f"(in function {func})" in out and "at:       insn " in out
        assert "no line info" in out
        assert f"class:    {key} " in out and fix in out
