"""``bpfkit btf``: output equal to ``bpftool btf dump file [format c]`` (raw, and C: the
kernel's vmlinux.h and objects with awkward layouts, byte for byte); errors as one
message."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bpfkit.cli.main import main
from helpers import ROOT, TESTS, clang_bpf

DATA = TESTS / "data" / "obj_reader"
HELLO = ROOT / "examples" / "hello" / "hello.o"


@pytest.mark.requires("clang19", "bpftool")
def test_object_dump_equals_bpftool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = tmp_path / "types.o"
    subprocess.run(
        ["clang-19", "-target", "bpf", "-O2", "-g", "-c", str(DATA / "types.c"), "-o", str(obj)],
        check=True,
    )
    assert main(["btf", str(obj)]) == 0
    theirs = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(obj)], check=True, capture_output=True, text=True
    ).stdout
    assert capsys.readouterr().out == theirs


@pytest.mark.requires("kernel-btf")
def test_find_in_vmlinux(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["btf", "/sys/kernel/btf/vmlinux", "--find", "bpf_func_id"]) == 0
    out = capsys.readouterr().out
    assert "ENUM 'bpf_func_id'" in out and "'BPF_FUNC_map_lookup_elem' val=1" in out
    assert "/* enum bpf_func_id */" in out
    assert main(["btf", "/sys/kernel/btf/vmlinux", "--find", "list_head", "--c"]) == 0
    out = capsys.readouterr().out
    assert out == "struct list_head {\n\tstruct list_head *next;\n\tstruct list_head *prev;\n};\n"


def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["btf", str(HELLO)]) == 1
    assert "no .BTF section" in capsys.readouterr().err
    junk = tmp_path / "junk.btf"
    junk.write_bytes(b"hello world, not BTF at all")
    assert main(["btf", str(junk)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"bpfkit: error: {junk}: .BTF: bad magic") and "Traceback" not in err
    assert main(["btf", str(tmp_path / "missing")]) == 1
    assert "cannot read" in capsys.readouterr().err


def _bpftool_c(path: Path | str) -> str:
    return subprocess.run(
        ["bpftool", "btf", "dump", "file", str(path), "format", "c"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.mark.requires("kernel-btf", "bpftool")
def test_vmlinux_h_equals_bpftool(capsys: pytest.CaptureFixture[str]) -> None:
    vmlinux = "/sys/kernel/btf/vmlinux"
    assert main(["btf", "dump", "file", vmlinux, "format", "c"]) == 0
    mine = capsys.readouterr().out
    theirs = _bpftool_c(vmlinux)
    assert mine == theirs
    # What makes the comparison worth it: renamed duplicates, padding, packed layouts.
    assert "___2 " in mine and "long: 64;" in mine and "__attribute__((packed))" in mine


@pytest.mark.requires("clang19", "bpftool")
@pytest.mark.parametrize(
    "src", [TESTS / "data" / "bpftool" / "ctypes.c", DATA / "types.c", DATA / "corpus.c"]
)
def test_object_format_c_equals_bpftool(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    obj = clang_bpf(src, tmp_path / "obj.o")
    assert main(["btf", "dump", "file", str(obj), "format", "c"]) == 0
    assert capsys.readouterr().out == _bpftool_c(obj)
    assert main(["btf", "dump", "file", str(obj), "format", "raw"]) == 0
    raw = capsys.readouterr().out
    assert main(["btf", "dump", "file", str(obj)]) == 0
    assert capsys.readouterr().out == raw
    assert main(["btf", str(obj)]) == 0
    assert capsys.readouterr().out == raw


def test_dump_words_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for words, says in (
        (["dump", "id", "5"], "expected 'file FILE'"),
        (["dump", "file", "x.o", "format", "d"], "unexpected 'format d'"),
        (["a.o", "b.o"], "unexpected 'b.o'"),
    ):
        assert main(["btf", *words]) == 1
        err = capsys.readouterr().err
        assert err.startswith("bpfkit: error: ") and says in err, err
        assert len(err.strip().splitlines()) == 1
