"""Typed maps and decoded records on the kernel (root, real bpf()): the maps of
examples/flows/flows.c written and read as Python values, compared with bpftool's
BTF-formatted dump of the same maps; ring and perf buffer records to callbacks."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bpfkit import Collection, KernelError, MapValueError, Session, load_collection
from bpfkit.kernel.maps import Map, possible_cpus
from bpfkit.obj import read_object
from bpfkit.uapi import BPF_NOEXIST, XDP_DROP, XDP_PASS
from bpfkit.uapi.verdicts import verdict
from helpers import ROOT, clang_bpf

pytestmark = pytest.mark.requires("bpf", "clang19")

KEY = {"addr": 0x0100007F, "port": 80, "proto": 6}


@pytest.fixture
def coll(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collection]:
    path = clang_bpf(ROOT / "examples/flows/flows.c", tmp_path_factory.mktemp("k") / "flows.o")
    with load_collection(read_object(str(path))) as c:
        yield c


def _run(coll: Collection) -> int:
    return coll.programs["count_flows"].test_run(bytes(64)).retval


def _bpftool(m: Map) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["bpftool", "-j", "map", "dump", "id", str(m.info().id)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [e["formatted"] for e in json.loads(out)]


def _plain(v: Any) -> Any:
    return json.loads(json.dumps(v))


@pytest.mark.requires("bpftool")
def test_typed_maps_read_as_bpftool_formats_them(coll: Collection) -> None:
    coll["flows"][{"addr": 2, "port": 53}] = {"st": "STOPPED", "name": "dns", "delta": [-7]}
    coll["bytes_seen"][1] = list(range(possible_cpus()))
    coll["modes"][1] = "RUNNING"
    _run(coll)
    _run(coll)
    flows = coll["flows"]
    assert flows[KEY] == {"packets": 2, "st": "RUNNING", "name": "first", "delta": [-1, 2, -3]}
    assert flows[KEY].st.value == 1
    mine = sorted(_plain([{"key": k, "value": v} for k, v in flows.items()]), key=str)
    assert mine == sorted(_bpftool(coll.maps["flows"]), key=str)
    # Per-CPU: one value per possible CPU, as bpftool lists them.
    seen = coll["bytes_seen"]
    assert len(seen[2]) == possible_cpus() and sum(seen[2]) == 128
    assert seen[1] == list(range(possible_cpus()))
    theirs = {
        e["key"]: [c["value"] for c in e["values"]] for e in _bpftool(coll.maps["bytes_seen"])
    }
    assert dict(seen.items()) == theirs
    modes = [{"key": k, "value": v} for k, v in coll["modes"].items()]
    assert (
        modes
        == _bpftool(coll.maps["modes"])
        == [
            {"key": 0, "value": "IDLE"},
            {"key": 1, "value": "RUNNING"},
        ]
    )


def test_the_program_sees_what_python_writes(coll: Collection) -> None:
    assert verdict("xdp", _run(coll)) is XDP_PASS
    coll["modes"][0] = "STOPPED"
    assert verdict("xdp", _run(coll)) is XDP_DROP
    coll["flows"][KEY] = {**coll["flows"][KEY], "packets": 41}
    _run(coll)
    assert coll["flows"][KEY].packets == 42
    assert coll[".bss"][0].seq == 3
    raw = coll.maps["flows"].raw_get(coll["flows"].encode_key(KEY))
    assert isinstance(raw, bytes) and raw[:8] == (42).to_bytes(8, "little")


def test_refusals(coll: Collection) -> None:
    _run(coll)
    flows = coll["flows"]
    with pytest.raises(MapValueError, match=r"map 'flows' .* out of range \(0\.\."):
        flows[KEY] = {"packets": -1}
    with pytest.raises(KernelError):
        flows.put(KEY, {}, BPF_NOEXIST)
    with pytest.raises(MapValueError, match="cannot be deleted"):
        del coll["modes"][0]
    with pytest.raises(KeyError):
        del flows[{"addr": 9}]
    assert flows[KEY].packets == 1  # nothing written by the refusals


def test_a_map_by_id_is_typed_by_the_kernels_btf(coll: Collection) -> None:
    _run(coll)
    with Map.from_id(coll.maps["flows"].info().id) as m:
        assert dict(m.typed_by_btf().items()) == dict(coll["flows"].items())


def test_ring_buffer_records_to_a_callback(coll: Collection) -> None:
    for _ in range(3):
        _run(coll)
    got: list[Any] = []
    with coll["events"].open_ring_buffer(got.append) as reader:
        assert reader.poll(1.0) == 3
    assert [(e.pid, e.st, e.comm, e.len, e.seq) for e in got] == [
        (42, "STOPPED", "xdp", 64, n) for n in (1, 2, 3)
    ]


def test_perf_buffer_records_to_a_callback(coll: Collection) -> None:
    got: list[Any] = []
    events = coll["perf_events"]
    with events.open_perf_buffer(
        lambda cpu, data, size: got.append((cpu, events.event(data)))
    ) as r:
        _run(coll)
        _run(coll)
        while len(got) < 2 and r.poll(1.0):
            pass
    assert [(e.pid, e.comm, e.seq) for _, e in got] == [(7, "perf", 1), (7, "perf", 2)]
    assert all(0 <= cpu < possible_cpus() for cpu, _ in got)


@pytest.mark.requires("tracepoint")
def test_run_shows_buffer_records_decoded(tmp_path: Path) -> None:
    """What `bpfkit run` prints for each record (MapEvent.render): decoded when the
    object shows the record type (here: a global pointer puts struct record in BTF)."""
    src = tmp_path / "buffers.c"
    text = (ROOT / "tests/kernel/progs/buffers.c").read_text()
    src.write_text(text + "\nconst struct record *unused_record __attribute__((unused));\n")
    obj = read_object(str(clang_bpf(src, tmp_path / "buffers.o")))
    seen: dict[str, list[str]] = {"ring": [], "perf": []}
    with Session(obj, trace=False, buffers=True) as s:
        for _ in range(3):
            os.getppid()
        for event in s.events(duration=5):
            if event.value is not None and event.value.tgid == os.getpid():
                seen[event.map].append(event.render())
            if all(len(v) >= 3 for v in seen.values()):
                break
    assert seen["ring"][:3] == [f'ring: {{tgid: {os.getpid()}, tag: "RING"}}'] * 3
    assert all(
        re.fullmatch(rf'perf\[cpu \d+\]: {{tgid: {os.getpid()}, tag: "PERF"}}', line)
        for line in seen["perf"]
    )


def test_test_run_and_vm_print_the_same_maps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bpfkit.cli.main import main

    obj = clang_bpf(ROOT / "examples/flows/flows.c", tmp_path / "flows.o")
    pkt = tmp_path / "pkt.bin"
    pkt.write_bytes(bytes(64))
    blocks = []
    for command in ("vm", "test-run"):
        assert main([command, "--maps", "--packet", str(pkt), str(obj)]) == 0
        out = capsys.readouterr().out
        assert "retval: 2 (XDP_PASS)\n" in out
        blocks.append({b.split(" ", 1)[0]: b for b in out.split("\nmap ")[1:]})
    vm, kernel = blocks
    for name in ("flows", "modes", "events", "perf_events"):
        assert vm[name] == kernel[name], name
    assert vm["events"].startswith("events (ringbuf): 1 records\n  {pid: 42, st: STOPPED")
