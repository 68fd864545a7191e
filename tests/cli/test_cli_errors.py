"""Every CLI command fed bad input: exit 1 (2 for usage errors), one message on stderr that
names the problem, never a traceback, never an output file left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfkit.cli import conformance_plugin
from bpfkit.cli.main import main
from helpers import ROOT

ROOT = ROOT
HELLO = ROOT / "examples" / "hello" / "hello.o"
WRONG_MACHINE = "/bin/true"  # an x86-64 ELF


@pytest.fixture
def bad(tmp_path: Path) -> dict[str, str]:
    """Bad inputs, by kind: a missing file, a directory, an empty file, text, a truncated
    ELF and an ELF of another machine."""
    (tmp_path / "adir").mkdir()
    (tmp_path / "empty.o").write_bytes(b"")
    (tmp_path / "text.o").write_text("hello, not an object\n")
    data = HELLO.read_bytes()
    (tmp_path / "trunc.o").write_bytes(data[: len(data) // 2])
    return {
        "missing": str(tmp_path / "nope.o"),
        "dir": str(tmp_path / "adir"),
        "empty": str(tmp_path / "empty.o"),
        "text": str(tmp_path / "text.o"),
        "trunc": str(tmp_path / "trunc.o"),
        "wrong": WRONG_MACHINE,
    }


# What the message says for each kind of bad object file.
OBJECT_PROBLEM = {
    "missing": "No such file",
    "dir": "Is a directory",
    "empty": "not an ELF file",
    "text": "not an ELF file",
    "trunc": "truncated",
    "wrong": "not a BPF object",
}


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``bpfkit ARGV`` in-process: (status, stdout, stderr)."""
    try:
        status = main(argv)
    except SystemExit as e:  # argparse's usage errors
        status = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, err


def assert_error(status: int, err: str, *words: str, expect: int = 1) -> None:
    """Exit status ``expect``, exactly one ``bpfkit...: error:`` line, mentioning ``words``."""
    assert status == expect, err
    assert "Traceback" not in err
    errors = [ln for ln in err.splitlines() if ln.startswith("bpfkit") and "error:" in ln]
    assert len(errors) == 1, err
    for word in words:
        assert word in err, (word, err)


def assert_no_output_left(directory: Path, before: set[str]) -> None:
    """Nothing new in ``directory``: no output file, no temporary one."""
    assert set(os.listdir(directory)) == before


# -- every command that reads an object --------------------------------------------------
KERNEL = pytest.mark.requires("bpf")


@pytest.mark.parametrize("kind", list(OBJECT_PROBLEM))
@pytest.mark.parametrize(
    "command",
    [
        "explain",
        "dump",
        "vm",
        "run --vm",
        pytest.param("load", marks=KERNEL),
        pytest.param("test-run", marks=KERNEL),
        pytest.param("run --duration 0", marks=KERNEL),
    ],
)
def test_bad_object(
    command: str, kind: str, bad: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = bad[kind]
    status, out, err = cli([*command.split(), path], capsys)
    assert_error(status, err, path, OBJECT_PROBLEM[kind])
    assert out == ""


@pytest.mark.parametrize("kind", list(OBJECT_PROBLEM))
def test_btf_bad_file(kind: str, bad: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    # btf also reads raw BTF, so a non-ELF file is judged as BTF.
    path = bad[kind]
    status, out, err = cli(["btf", path], capsys)
    problem = {"empty": "too short", "text": "too short"}.get(kind, OBJECT_PROBLEM[kind])
    assert_error(status, err, path, problem)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["explain", str(HELLO), "--program", "nosuch"], ["no program named 'nosuch'"]),
        (["explain", str(HELLO), "--section", "nosuch"], ["no program in section 'nosuch'"]),
        (["dump", str(HELLO), "-j", "nosuch"], ["no section named 'nosuch'", ".text"]),
        (["vm", str(HELLO), "--program", "nosuch"], ["no program named 'nosuch'"]),
        (["btf", str(HELLO)], ["no .BTF section"]),
        (["vm", str(HELLO), "--budget", "-1"], ["budget"]),
        (["vm", str(HELLO), "--repeat", "0"], ["--repeat", "0"]),
        (["vm", str(HELLO), "--ctx", "/nonexistent/ctx"], ["/nonexistent/ctx"]),
        (["vm", str(HELLO), "--packet", "/"], ["packet", "Is a directory"]),
        (["run", str(HELLO), "--vm", "--repeat", "-1"], ["--repeat"]),
    ],
)
def test_bad_names_and_values(
    argv: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = cli(argv, capsys)
    assert_error(status, err, *words)


def test_vm_context_not_hex(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = tmp_path / "ctx.hex"
    ctx.write_text("zz not hex\n")
    status, _, err = cli(["vm", str(HELLO), "--ctx", str(ctx)], capsys)
    assert_error(status, err, str(ctx), "not hex")


@pytest.mark.requires("kernel-btf")
def test_btf_unknown_type(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = cli(["btf", "/sys/kernel/btf/vmlinux", "--find", "no_such_type"], capsys)
    assert_error(status, err, "no type named 'no_such_type'")
    assert out == ""


# -- usage errors: argparse's status 2 --------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["nosuch"], ["invalid choice: 'nosuch'"]),
        (["dump", str(HELLO), "--mcpu", "v9"], ["--mcpu"]),
        (["explain", str(HELLO), "--syntax", "foo"], ["--syntax"]),
        (["explain", str(HELLO), "--format", "pdf"], ["--format"]),
        (["run", str(HELLO), "--count", "-1"], ["--count", "'-1'"]),
        (["run", str(HELLO), "--count", "many"], ["--count", "'many'"]),
        (["run", str(HELLO), "--duration", "-1"], ["--duration", "'-1'"]),
        (["run", str(HELLO), "--duration", "nan"], ["--duration"]),
        (["trace", "--count", "-5"], ["--count"]),
        (["trace", "--duration", "soon"], ["--duration", "'soon'"]),
        (["test-run", str(HELLO), "--repeat", "x"], ["--repeat"]),
        (["prog", "list", "--bogus"], ["--bogus"]),
        (["prog", "nosuch"], ["'nosuch'"]),
        (["dump"], ["object"]),
        (["asm"], ["source"]),
        (["build"], ["source"]),
    ],
)
def test_usage_errors(
    argv: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = cli(argv, capsys)
    assert_error(status, err, *words, expect=2)
    assert out == ""


# -- asm and build: bad sources, and no half-written output -----------------------------
@pytest.fixture
def sources(tmp_path: Path) -> Path:
    (tmp_path / "ok.s").write_text("r0 = 1\nexit\n")
    (tmp_path / "bad.s").write_text("r0 = 1\nbogus insn here\nexit\n")
    (tmp_path / "binary.s").write_bytes(HELLO.read_bytes())
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("")
    return tmp_path


@pytest.mark.parametrize("command", ["asm", "build"])
@pytest.mark.parametrize(
    ("source", "out", "words"),
    [
        ("bad.s", "out.o", ["bad.s:2:1", "bogus"]),
        ("binary.s", "out.o", ["binary.s", "not UTF-8"]),
        ("nope.s", "out.o", ["nope.s"]),
        ("adir", "out.o", ["adir"]),
        ("ok.s", "adir", ["adir", "Is a directory"]),
        ("ok.s", "afile/out.o", ["afile"]),  # the output's directory is a file
    ],
)
def test_asm_build_errors_leave_nothing(
    command: str,
    source: str,
    out: str,
    words: list[str],
    sources: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = set(os.listdir(sources))
    before_adir = set(os.listdir(sources / "adir"))
    argv = [command, str(sources / source), "-o", str(sources / out)]
    status, stdout, err = cli(argv, capsys)
    assert_error(status, err, *words)
    assert stdout == ""
    assert_no_output_left(sources, before)
    assert_no_output_left(sources / "adir", before_adir)


@pytest.mark.parametrize(
    ("source", "out", "words"),
    [
        ("bad.s", "out.bin", ["bad.s:1:1", "unknown mnemonic 'r0'"]),
        ("binary.s", "out.bin", ["binary.s", "not UTF-8"]),
        ("nope.s", "out.bin", ["nope.s", "No such file"]),
        ("ok.s", "adir", ["adir", "Is a directory"]),
    ],
)
def test_asm_mnemonic_errors(
    source: str, out: str, words: list[str], sources: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if source == "ok.s":
        (sources / "ok.s").write_text("mov %r0, 1\nexit\n")
    before = set(os.listdir(sources))
    argv = ["asm", "--mnemonic", str(sources / source), "-o", str(sources / out)]
    status, _, err = cli(argv, capsys)
    assert_error(status, err, *words)
    assert err.count(str(sources / source if source != "ok.s" else sources / out)) == 1
    assert_no_output_left(sources, before)


@pytest.mark.parametrize("command", ["asm", "build"])
def test_output_never_overwrites_the_source(
    command: str, sources: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = sources / "ok.s"
    text = src.read_text()
    status, _, err = cli([command, str(src), "-o", str(src)], capsys)
    assert_error(status, err, "overwrite the source")
    assert src.read_text() == text


def test_asm_default_output_never_overwrites_the_source(
    sources: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `bpfkit asm prog.o` would write prog.o (the source's stem + .o) over itself.
    src = sources / "prog.o"
    src.write_text("r0 = 0\nexit\n")
    monkeypatch.chdir(sources)
    status, _, err = cli(["asm", "prog.o"], capsys)
    assert_error(status, err, "overwrite the source")
    assert src.read_text() == "r0 = 0\nexit\n"


def test_build_unknown_kind(sources: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(["build", str(HELLO), "-o", str(sources / "x.o")], capsys)
    assert_error(status, err, "unknown kind of source '.o'", ".rs")
    assert not (sources / "x.o").exists()


def test_asm_empty_source_is_an_empty_object(
    sources: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Like llvm-mc, an empty source assembles: an object with no instructions, not an error.
    (sources / "empty.s").write_text("")
    status, _, err = cli(["asm", str(sources / "empty.s"), "-o", str(sources / "e.o")], capsys)
    assert status == 0, err
    assert (sources / "e.o").read_bytes()[:4] == b"\x7fELF"


@pytest.mark.requires("clang19")
def test_build_c_compile_error(sources: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (sources / "bad.c").write_text("int f(void) { return undeclared_x; }\n")
    before = set(os.listdir(sources))
    status, _, err = cli(["build", str(sources / "bad.c"), "-o", str(sources / "o.o")], capsys)
    assert_error(status, err, "undeclared_x")
    assert_no_output_left(sources, before)


@pytest.mark.requires("rustc")
def test_build_rust_unwritable_asm(sources: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = ROOT / "examples" / "hello" / "hello.rs"
    before = set(os.listdir(sources))
    argv = ["build", str(src), "-o", str(sources / "h.o"), "--asm", str(sources / "no/h.s")]
    status, _, err = cli(argv, capsys)
    assert_error(status, err, "no/h.s", "--asm")
    assert_no_output_left(sources, before)


# -- the kernel commands ----------------------------------------------------------------
@pytest.mark.requires("bpf")
@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["load", str(HELLO), "--program", "nosuch"], ["no program named 'nosuch'"]),
        (["load", str(HELLO), "--type", "garbage"], ["--type", "NAME=TYPE"]),
        (["load", str(HELLO), "--type", "kprobe__sys_clone=nosuch"], ["program type 'nosuch'"]),
        (["load", str(HELLO), "--pin", "/tmp"], ["/tmp", "not on a BPF filesystem"]),
        (["test-run", str(HELLO), "--program", "nosuch"], ["no program named 'nosuch'"]),
        (["test-run", str(HELLO), "--repeat", "0"], ["--repeat"]),
        (["test-run", str(HELLO), "--repeat", str(1 << 40)], ["out of range"]),  # a __u32
        (["test-run", str(HELLO), "--packet", "/nonexistent/p"], ["/nonexistent/p"]),
        (["test-run", str(HELLO)], ["not supported"]),  # a kprobe cannot be test-run
        (["run", str(HELLO), "--program", "nosuch", "--duration", "0"], ["'nosuch'"]),
        (["run", str(HELLO), "--attach", "bogus:x", "--duration", "0"], ["'bogus'"]),
    ],
)
def test_kernel_command_errors(
    argv: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = cli(argv, capsys)
    assert_error(status, err, *words)


REJECTED = """\
\t.section "tracepoint/syscalls/sys_enter_getpid","ax"
\t.globl prog
prog:
\tr0 = r2
\texit
\t.section "license","aw"
\t.asciz "GPL"
"""


@pytest.mark.requires("bpf")
@pytest.mark.parametrize("command", ["load", "test-run", "run --duration 0"])
def test_verifier_rejection(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same on every command: the explanation of the rejection (bpfkit.verify; -v adds
    # the whole log before it), then one error line with its summary.
    from bpfkit.asm.assemble import assemble

    obj = tmp_path / "rejected.o"
    obj.write_bytes(assemble(REJECTED, "rejected.s"))
    status, out, err = cli([*command.split(), str(obj)], capsys)
    assert_error(status, err, "verifier rejected", "R2 !read_ok")
    assert err.splitlines()[-1].startswith("bpfkit: error: loading program 'prog'")
    assert "at:       insn 0: r0 = r2" in err and "class:    uninit" in err  # explained first
    status, out, err = cli([*command.split(), "-v", str(obj)], capsys)
    assert "0: (bf) r0 = r2" in err  # -v: the whole log too


@pytest.mark.requires("bpf")
def test_load_corrupt_symbol_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A data symbol at an offset no BTF variable can hold (found by fuzzing `bpfkit load`:
    # it was a struct.error traceback from the BTF fix-up).
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    src = ROOT / "tests" / "corpus" / "obj" / "globals_v3_g.o"
    data = bytearray(src.read_bytes())
    with open(src, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection)
        index = next(i for i, sym in enumerate(symtab.iter_symbols()) if sym.name == "names")
        at = symtab["sh_offset"] + index * symtab["sh_entsize"] + 8  # Elf64_Sym.st_value
    data[at : at + 8] = (0x3E0000000011).to_bytes(8, "little")
    obj = tmp_path / "corrupt.o"
    obj.write_bytes(data)
    status, _, err = cli(["load", str(obj)], capsys)
    assert_error(status, err, "'names'", "corrupt")


@pytest.mark.requires("bpf", "tracepoint")
def test_run_unknown_tracepoint(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", str(HELLO), "--attach", "tracepoint:nosuch:event", "--duration", "0"]
    status, _, err = cli(argv, capsys)
    assert_error(status, err, "nosuch")


@pytest.mark.requires("bpf")
def test_load_pin_in_bpffs_root(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # The root of a bpffs is a valid --pin directory (it used to be refused because its
    # parent is not bpffs).  A bpffs of its own, so no other test run's pin is in the way.
    import ctypes

    from bpfkit.kernel import pins

    root = pins.ensure_bpffs(str(tmp_path / "bpffs"))
    pin = os.path.join(root, "kprobe__sys_clone")
    try:
        assert pins.is_bpffs(root) and not os.path.exists(pin)
        status, out, err = cli(["load", str(HELLO), "--pin", root], capsys)
        assert status == 0, err
        assert os.path.exists(pin)
    finally:
        if os.path.exists(pin):
            os.unlink(pin)
        assert ctypes.CDLL(None, use_errno=True).umount2(os.fsencode(root), 0) == 0


# -- in a real process: no traceback reaches the terminal -------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["dump", "/nonexistent.o"],
        ["explain", WRONG_MACHINE],
        ["run", str(HELLO), "--duration", "-1"],
    ],
)
def test_subprocess_no_traceback(argv: list[str]) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "bpfkit", *argv], capture_output=True, text=True, timeout=60
    )
    assert p.returncode in (1, 2)
    assert "Traceback" not in p.stderr + p.stdout
    assert len([ln for ln in p.stderr.splitlines() if "error:" in ln]) == 1


# -- bpfkit-conformance-plugin ------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "stdin", "words"),
    [
        (["--debug"], "zz\n", ["not hex"]),
        (["--debug"], "0000\n", ["not a multiple of 8"]),
        (["--debug"], "\n", ["fell off the end"]),
        (["--debug", "--elf"], "95000000000000\n", ["not an ELF"]),
        (["--debug", "--elf"], HELLO.read_bytes()[:600].hex() + "\n", ["truncated"]),
        (["--debug", "--elf"], Path(WRONG_MACHINE).read_bytes().hex() + "\n", ["not a BPF"]),
        (["--debug", "zz"], "9500000000000000\n", ["memory", "not hex"]),
    ],
)
def test_conformance_plugin_errors(
    argv: list[str],
    stdin: str,
    words: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    status = conformance_plugin.run(argv)
    out, err = capsys.readouterr()
    assert status == 1
    assert out == ""
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("bpfkit-conformance-plugin: ")
    for word in words:
        assert word in err


def test_conformance_plugin_quiet_without_debug() -> None:
    # The suite's protocol: without --debug a program that cannot run is exit 1, silently.
    script = shutil.which("bpfkit-conformance-plugin", path=os.path.dirname(sys.executable))
    cmd = (
        [script]
        if script
        else [sys.executable, "-c", "from bpfkit.cli.conformance_plugin import entry; entry()"]
    )
    p = subprocess.run(cmd, input="zz\n", capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert p.stdout == "" and p.stderr == ""


@pytest.mark.requires("dev-full")
@pytest.mark.parametrize("argv", [["dump", str(HELLO)], ["explain", str(HELLO)]])
def test_output_write_error(argv: list[str]) -> None:
    # A full disk (here /dev/full) is one message, not a traceback from print().
    with open("/dev/full", "w") as full:
        p = subprocess.run(
            [sys.executable, "-m", "bpfkit", *argv],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert p.returncode == 1
    assert p.stderr == "bpfkit: error: writing the output: No space left on device\n"


# -- corrupt objects: whatever the damage, an error message, never a traceback -------------
CORRUPTED = [
    ROOT / "tests" / "corpus" / "obj" / name
    for name in ("globals_v3_g.o", "legacy_maps_v2_g.o", "subprogs_v1.o", "atomics_v3_g.o")
]


def _damageable(path: Path) -> list[tuple[int, int]]:
    """(offset, size) of the parts of ``path`` a loader reads: the section headers and
    every section but DWARF and string tables."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        elf = ELFFile(f)
        parts = [
            (s["sh_offset"], s["sh_size"])
            for s in elf.iter_sections()
            if s["sh_size"] and s["sh_type"] != "SHT_NOBITS" and not s.name.startswith(".debug")
        ]
        parts.append((elf["e_shoff"], elf["e_shnum"] * elf["e_shentsize"]))
    return parts


def _corrupt(data: st.DataObject, tmp_path: Path) -> str:
    src = data.draw(st.sampled_from(CORRUPTED), label="object")
    raw = bytearray(src.read_bytes())
    parts = _damageable(src)
    for _ in range(data.draw(st.integers(1, 3), label="bytes")):
        off, size = data.draw(st.sampled_from(parts))
        raw[off + data.draw(st.integers(0, size - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path / "corrupt.o"
    path.write_bytes(raw)
    return str(path)


def _no_traceback(argv: list[str]) -> None:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as e:
        status = main(argv)  # anything but a BpfkitError propagates and fails the test
    assert status in (0, 1), e.getvalue()
    if status == 1:  # one error line, last (a verifier log may come before it)
        lines = e.getvalue().splitlines()
        assert lines[-1].startswith("bpfkit: error: ")
        assert sum(ln.startswith("bpfkit: error: ") for ln in lines) == 1


@settings(max_examples=40, deadline=None, derandomize=True)
@given(data=st.data())
def test_corrupt_object_readers(
    data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = _corrupt(data, tmp_path_factory.mktemp("c"))
    for argv in (["dump", "-d", "-r", path], ["explain", path], ["btf", path], ["vm", path]):
        _no_traceback(argv)


@pytest.mark.requires("bpf")
@settings(max_examples=40, deadline=None, derandomize=True)
@given(data=st.data())
def test_corrupt_object_load(data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    _no_traceback(["load", _corrupt(data, tmp_path_factory.mktemp("c"))])


def test_test_run_says_a_packet_is_needed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before loading anything (no root needed to hear it): a packet program needs
    --packet, and BPF_PROG_TEST_RUN refuses one shorter than an Ethernet header."""
    obj = ROOT / "tests" / "corpus" / "obj" / "xdp_count_v3_g.o"
    assert main(["test-run", str(obj)]) == 1
    assert "--packet FILE" in capsys.readouterr().err
    short = tmp_path / "short.bin"
    short.write_bytes(b"12345")
    assert main(["test-run", str(obj), "--packet", str(short)]) == 1
    err = capsys.readouterr().err
    assert "5 bytes" in err and "EINVAL" in err
