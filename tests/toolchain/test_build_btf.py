"""The BTF bpfkit build writes for a Rust program's .maps, read back by bpftool (libbpf)."""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfkit.toolchain.btf_maps import MapDef, btf_directives, maps_btf


def _defs() -> list[MapDef]:
    return [
        MapDef("COUNTS", 0, 40, type=1, key_size=4, value_size=8, max_entries=10240, flags=0),
        MapDef("EVENTS", 40, 40, type=27, key_size=0, value_size=0, max_entries=4096, flags=0),
        MapDef("BIG", 80, 40, type=1, key_size=12, value_size=2, max_entries=16, flags=1),
    ]


def test_header_and_string_table() -> None:
    blob = maps_btf(_defs())
    magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        "<HBBIIIII", blob
    )
    assert (magic, version, flags, hdr_len, type_off) == (0xEB9F, 1, 0, 24, 0)
    assert str_off == type_len and 24 + type_len + str_len == len(blob)
    strings = blob[24 + str_off :]
    assert strings.startswith(b"\0") and strings.endswith(b"\0")
    for name in (b"COUNTS", b"EVENTS", b"BIG", b".maps", b"max_entries", b"key", b"value"):
        assert b"\0" + name + b"\0" in strings


def test_big_endian_blob() -> None:
    assert struct.unpack_from(">H", maps_btf(_defs(), big_endian=True))[0] == 0xEB9F


def test_directives_carry_every_byte() -> None:
    blob = maps_btf(_defs())
    text = btf_directives(blob)
    assert text.startswith('\t.section\t.BTF,"",@progbits\n')
    values = [int(v) for line in text.splitlines()[1:] for v in line.split("\t")[2].split(",")]
    assert bytes(values) == blob


def _parse_dump(text: str) -> dict[int, dict[str, object]]:
    """bpftool's raw BTF dump as {id: {kind, name, attrs, members}}."""
    types: dict[int, dict[str, object]] = {}
    current: dict[str, object] = {}
    for line in text.splitlines():
        m = re.match(r"\[(\d+)\] (\w+) '([^']*)'(.*)", line)
        if m:
            attrs = dict(re.findall(r"(\w+)=(\S+)", m.group(4)))
            current = {"kind": m.group(2), "name": m.group(3), "attrs": attrs, "members": []}
            types[int(m.group(1))] = current
            continue
        m = re.match(r"\s+'([^']*)' type_id=(\d+)", line)
        if m:
            members = current["members"]
            assert isinstance(members, list)
            members.append((m.group(1), int(m.group(2))))
    return types


def _c_type(types: dict[int, dict[str, object]], tid: int) -> str:
    """A member's type in C, as libbpf's macros write it: ``int (*)[N]`` or ``__u32 *``."""
    t = types[tid]
    attrs = t["attrs"]
    assert isinstance(attrs, dict)
    assert t["kind"] == "PTR"
    target = types[int(attrs["type_id"])]
    tattrs = target["attrs"]
    assert isinstance(tattrs, dict)
    if target["kind"] == "ARRAY":
        elem = types[int(tattrs["type_id"])]["name"]
        return f"{elem} (*)[{tattrs['nr_elems']}]"
    return f"{target['name']} *"


@pytest.mark.requires("bpftool")
def test_bpftool_reads_the_maps_as_libbpf_declares_them(tmp_path: Path) -> None:
    raw = tmp_path / "maps.btf"
    raw.write_bytes(maps_btf(_defs()))
    dump = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(raw)], capture_output=True, text=True, check=True
    ).stdout
    types = _parse_dump(dump)
    maps = {}
    for t in types.values():
        if t["kind"] == "VAR":
            attrs = t["attrs"]
            assert isinstance(attrs, dict)
            struct_t = types[int(attrs["type_id"].rstrip(","))]
            members = struct_t["members"]
            assert isinstance(members, list)
            maps[t["name"]] = {name: _c_type(types, tid) for name, tid in members}
    # What libbpf's __uint(type, 1); __uint(max_entries, 10240); __type(key, __u32); ... write.
    assert maps == {
        "COUNTS": {
            "type": "int (*)[1]",
            "max_entries": "int (*)[10240]",
            "key": "__u32 *",
            "value": "__u64 *",
        },
        "EVENTS": {"type": "int (*)[27]", "max_entries": "int (*)[4096]"},
        "BIG": {
            "type": "int (*)[1]",
            "max_entries": "int (*)[16]",
            "key": "unsigned char (*)[12]",
            "value": "__u16 *",
            "map_flags": "int (*)[1]",
        },
    }
    assert "DATASEC '.maps' size=120 vlen=3" in dump
    assert "offset=80 size=40 (VAR 'BIG')" in dump


@pytest.mark.requires("bpftool")
@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 33),  # map type
            st.sampled_from([0, 1, 2, 3, 4, 8, 12, 16, 64]),  # key size
            st.sampled_from([0, 1, 2, 4, 8, 24, 100]),  # value size
            st.integers(1, 1 << 20),  # max entries
            st.integers(0, 1 << 12),  # flags
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_maps_read_back_through_bpftool(rows: list[tuple[int, int, int, int, int]]) -> None:
    import tempfile

    defs = [MapDef(f"M{i}", 40 * i, 40, t, k, v, n, f) for i, (t, k, v, n, f) in enumerate(rows)]
    with tempfile.NamedTemporaryFile(suffix=".btf") as tmp:
        tmp.write(maps_btf(defs))
        tmp.flush()
        dump = subprocess.run(
            ["bpftool", "btf", "dump", "file", tmp.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    types = _parse_dump(dump)
    got = {}
    for t in types.values():
        if t["kind"] == "VAR":
            attrs = t["attrs"]
            assert isinstance(attrs, dict)
            members = types[int(attrs["type_id"].rstrip(","))]["members"]
            assert isinstance(members, list)
            got[t["name"]] = {name: _c_type(types, tid) for name, tid in members}

    def size_type(n: int) -> str:
        return f"__u{n * 8} *" if n in (1, 2, 4, 8) else f"unsigned char (*)[{n}]"

    for d in defs:
        want = {"type": f"int (*)[{d.type}]", "max_entries": f"int (*)[{d.max_entries}]"}
        if d.key_size:
            want["key"] = size_type(d.key_size)
        if d.value_size:
            want["value"] = size_type(d.value_size)
        if d.flags:
            want["map_flags"] = f"int (*)[{d.flags}]"
        assert got[d.name] == want
    assert f"DATASEC '.maps' size={40 * len(defs)} vlen={len(defs)}" in dump
