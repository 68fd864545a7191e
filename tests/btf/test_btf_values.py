"""decode_value reads back what the compiler stored for initialised C globals (both byte orders)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from bpfkit.btf import Kind, parse_btf
from bpfkit.btf.values import decode_value
from bpfkit.errors import BtfError
from bpfkit.obj import read_object
from helpers import TESTS

DATA = TESTS / "data" / "obj_reader"


def _globals(tmp_path: Path, target: str) -> dict[str, Any]:
    out = tmp_path / f"values_{target}.o"
    subprocess.run(
        ["clang-19", "-target", target, "-O2", "-g", "-c", str(DATA / "values.c"), "-o", str(out)],
        check=True,
    )
    obj = read_object(out)
    assert obj.btf is not None
    btf = parse_btf(obj.btf)
    found = {}
    for d in obj.data:
        for sym in d.symbols:
            var = btf.find(sym.name, Kind.VAR)
            found[sym.name] = decode_value(btf, var.id, d.data[sym.value : sym.value + sym.size])
    return found


@pytest.mark.requires("clang19")
@pytest.mark.parametrize("target", ["bpf", "bpfeb"])
def test_values_read_back(tmp_path: Path, target: str) -> None:
    g = _globals(tmp_path, target)
    rec = g["rec_v"]
    c4 = "DCBA" if target == "bpf" else "ABCD"  # 0x41424344 in memory order
    assert rec == {
        "a": -7,
        "b": 5,
        "c": -3,
        "d": 1 << 40,
        "name": "abc",
        "in": [{"s": -1, "u": 200}, {"s": 2, "u": 3}],
        "col": "GREEN",
        "unnamed": 5,
        "flag": True,
        "x": 2.5,
        "i": 0x41424344,
        "c4": c4,
        "p": 0,
        "f": -0.5,
        "sc": -100,
    }
    assert g["matrix"] == [[1, 2, 3], [4, 5, 6]]
    assert g["greeting"] == "hello"


@pytest.mark.requires("clang19")
def test_value_errors(tmp_path: Path) -> None:
    out = tmp_path / "v.o"
    subprocess.run(
        ["clang-19", "-target", "bpf", "-O2", "-g", "-c", str(DATA / "values.c"), "-o", str(out)],
        check=True,
    )
    obj = read_object(out)
    assert obj.btf is not None
    btf = parse_btf(obj.btf)
    rec = btf.find("rec", "struct")
    size = next(s.size for s in obj.symbols if s.name == "rec_v")
    with pytest.raises(BtfError, match=f"struct rec needs {size} bytes, got 3"):
        decode_value(btf, rec.id, b"abc")
    with pytest.raises(BtfError, match="has no size"):
        decode_value(btf, 0, bytes(8))  # void
