"""The one map renderer (bpfkit.btf.mapview): typed by BTF, the same text in every command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bpfkit.btf.mapview import MapTypes, format_value, object_map_types, render_map
from bpfkit.cli.main import main
from bpfkit.obj import read_object
from bpfkit.uapi import MapType
from helpers import clang_bpf

TYPED_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
enum color { RED = 1, GREEN = 2, BLUE = 7 };
struct val { __u32 count; enum color c; char name[8]; __u16 ports[3]; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8);
         __type(key, __u32); __type(value, struct val); } h SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 100);
         __type(key, __u32); __type(value, __u64); } a SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 2);
         __type(key, __u32); __type(value, __u64); } pc SEC(".maps");
__u64 seen = 0;
const volatile char greeting[6] = "hello";
SEC("xdp") int prog(struct xdp_md *ctx) {
    __u32 k = 7;
    struct val v = {.count = 3, .c = BLUE, .name = "eth0", .ports = {80, 443, 0}};
    bpf_map_update_elem(&h, &k, &v, BPF_ANY);
    __u32 i = 42; __u64 x = 5;
    bpf_map_update_elem(&a, &i, &x, BPF_ANY);
    i = 1;
    bpf_map_update_elem(&pc, &i, &x, BPF_ANY);
    seen += greeting[0] == 'h';
    return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
"""

EXPECTED = """\
map h (hash): 1 entries
  7: {count: 3, c: BLUE, name: "eth0", ports: [80, 443, 0]}
map a (array): 100 slots
  [0..41]: 0 (42 zero slots)
  [42]: 5
  [43..99]: 0 (57 zero slots)"""


@pytest.fixture(scope="module")
def typed_obj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("mapview")
    src = d / "typed.c"
    src.write_text(TYPED_C)
    return clang_bpf(src, d / "typed.o")


def _blocks(out: str) -> dict[str, str]:
    """The text of each ``map NAME (...)`` block of a command's output, by map name."""
    blocks: dict[str, str] = {}
    name = None
    for line in out.splitlines():
        m = re.match(r"map (\S+) \(", line)
        if m:
            name = m.group(1)
            blocks[name] = line
        elif name and line.startswith("  "):
            blocks[name] += "\n" + line
        else:
            name = None
    return blocks


@pytest.mark.requires("clang19")
def test_vm_shows_maps_by_their_btf_types(
    typed_obj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkt = typed_obj.parent / "pkt.bin"
    pkt.write_bytes(bytes(64))
    assert main(["vm", "--maps", "--packet", str(pkt), str(typed_obj)]) == 0
    blocks = _blocks(capsys.readouterr().out)
    assert blocks["h"] + "\n" + blocks["a"] == EXPECTED
    assert blocks[".bss"].endswith("[0]: {seen: 1}")
    assert blocks[".rodata"].endswith('[0]: {greeting: "hello"}')
    assert "[1]: {cpu0: 5} (sum 5)" in blocks["pc"]


@pytest.mark.requires("clang19", "bpf")
def test_same_map_prints_the_same_in_vm_and_test_run(
    typed_obj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkt = typed_obj.parent / "pkt.bin"
    pkt.write_bytes(bytes(64))
    assert main(["vm", "--maps", "--packet", str(pkt), str(typed_obj)]) == 0
    vm = _blocks(capsys.readouterr().out)
    assert main(["test-run", "--maps", "--packet", str(pkt), str(typed_obj)]) == 0
    kernel = _blocks(capsys.readouterr().out)
    for name in ("h", "a", ".bss", ".rodata"):
        assert vm[name] == kernel[name], name
    # Per-CPU: the kernel has a value per possible CPU, the VM one CPU; the sum agrees.
    assert re.search(r"\[1\]: \{cpu0: \d+(, cpu\d+: \d+)*\} \(sum 5\)", kernel["pc"])


def test_arrays_summarise_zero_runs_and_never_hide_a_value() -> None:
    entries = [
        (i.to_bytes(4, "little"), (7 if i in (3, 60) else 0).to_bytes(8, "little"))
        for i in range(64)
    ]
    text = render_map("arr", MapType.ARRAY, entries)
    assert text.splitlines() == [
        "map arr (array): 64 slots",
        "  [0..2]: 0 (3 zero slots)",
        "  [3]: 7",
        "  [4..59]: 0 (56 zero slots)",
        "  [60]: 7",
        "  [61..63]: 0 (3 zero slots)",
    ]


def test_untyped_values_as_numbers_or_hex() -> None:
    entries = [(b"\x01\x00\x00\x00", b"\x02\x00"), (b"\x02\x00\x00\x00", b"abc")]
    text = render_map("h", MapType.HASH, entries, MapTypes())
    assert text.splitlines()[1:] == ["  1: 2", "  2: 61 62 63"]


def test_format_value() -> None:
    assert format_value({"a": [0] * 10 + [1], "s": 'x"y', "b": True}) == (
        '{a: [0 x10, 1], s: "x\\"y", b: true}'
    )


@pytest.mark.requires("clang19")
def test_object_map_types(typed_obj: Path) -> None:
    types = object_map_types(read_object(str(typed_obj)))
    assert set(types) >= {"h", "a", "pc", ".bss", ".rodata"}
    assert types["h"].decode_key((7).to_bytes(4, "little")) == 7


@pytest.mark.requires("clang19", "bpf", "tracepoint")
def test_same_map_prints_the_same_in_run_and_vm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bpfkit run --maps` (attached, the kernel's maps after real events) prints a map
    as `bpfkit vm --maps` does: the same program body on a tracepoint."""
    import os
    import threading

    src = tmp_path / "typed_tp.c"
    src.write_text(
        TYPED_C.replace(
            'SEC("xdp") int prog(struct xdp_md *ctx)',
            'SEC("tracepoint/syscalls/sys_enter_getppid") int prog(void *ctx)',
        )
    )
    obj = clang_bpf(src, tmp_path / "typed_tp.o")
    assert main(["vm", "--maps", str(obj)]) == 0
    vm = _blocks(capsys.readouterr().out)
    stop = threading.Event()

    def calls() -> None:
        while not stop.is_set():
            os.getppid()
            stop.wait(0.01)

    t = threading.Thread(target=calls)
    t.start()
    try:
        assert main(["run", "--duration", "1", "--maps", str(obj)]) == 0
    finally:
        stop.set()
        t.join()
    run = _blocks(capsys.readouterr().out)
    for name in ("h", "a", ".rodata"):
        assert vm[name] == run[name], name
    assert vm["h"] + "\n" + vm["a"] == EXPECTED
