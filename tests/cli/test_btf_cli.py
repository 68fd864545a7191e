"""``bpfkit btf``: output equal to ``bpftool btf dump file``; errors as one message."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bpfkit.cli.main import main
from helpers import ROOT, TESTS

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
