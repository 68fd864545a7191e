"""Map definitions libbpf and cilium/ebpf refuse are refused by ``bpfkit load`` with one
clear message (and still read, dumped and explained): value types too big for a u32
value_size, legacy records with unknown non-zero options (cilium's ``invalid_map``),
static maps (cilium's ``invalid_map_static``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bpfkit.cli.main import main
from bpfkit.errors import ObjectError
from bpfkit.obj.reader import read_object
from helpers import clang_bpf

pytestmark = pytest.mark.requires("clang19")

LEGACY = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct bpf_map_def { unsigned int type, key_size, value_size, max_entries, map_flags; };
"""
HUGE = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, int);
    __type(value, char[0x10000][0x10001]);
} huge SEC(".maps");
SEC("socket") int prog(void *ctx) { int k = 0; return !!bpf_map_lookup_elem(&huge, &k); }
char LICENSE[] SEC("license") = "GPL";
"""
EXTRA = (
    LEGACY
    + """
struct { struct bpf_map_def def; unsigned int more; } odd SEC("maps") = {
    { BPF_MAP_TYPE_ARRAY, 4, 2, 1, 0 }, 1 };
SEC("socket") int prog(void *ctx) { __u32 k = 0; return !!bpf_map_lookup_elem(&odd, &k); }
char LICENSE[] SEC("license") = "GPL";
"""
)
STATIC = (
    LEGACY
    + """
struct bpf_map_def shown SEC("maps") = { BPF_MAP_TYPE_HASH, 4, 8, 1, 0 };
static struct bpf_map_def hidden SEC("maps") = { BPF_MAP_TYPE_HASH, 4, 8, 1, 0 };
SEC("socket") int prog(void *ctx) { __u32 k = 0; return !!bpf_map_lookup_elem(&hidden, &k); }
char LICENSE[] SEC("license") = "GPL";
"""
)


def _build(tmp_path: Path, name: str, source: str) -> Path:
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    return clang_bpf(src, tmp_path / f"{name}.o")


def test_value_type_bigger_than_a_u32_size_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was read as value_size 4,295,032,832 and loaded as a 65,536-byte map."""
    obj = _build(tmp_path, "huge", HUGE)
    with pytest.raises(ObjectError, match="map 'huge'.*4295032832 bytes.*u32"):
        read_object(str(obj))
    assert main(["load", str(obj)]) == 1
    assert "4295032832 bytes" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "source", "message"),
    [
        ("extra", EXTRA, "map 'odd'.*non-zero bytes after the 20-byte struct bpf_map_def"),
        ("static", STATIC, "map 'hidden'.*is static"),
    ],
)
def test_maps_libbpf_and_cilium_refuse_are_refused_at_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, source: str, message: str
) -> None:
    obj = _build(tmp_path, name, source)
    read_object(str(obj))  # readable: dump and explain still work on it
    assert main(["dump", str(obj)]) == 0
    capsys.readouterr()
    assert main(["load", str(obj)]) == 1  # before any bpf(): no root needed to see it
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err

    assert re.search(message, err), err
