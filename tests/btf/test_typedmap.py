"""Maps as Python values typed by BTF (bpfkit.btf.typedmap) and decoded ring/perf buffer
records to callbacks (bpfkit.btf.records), in the VM: structs, enums, arrays, strings and
per-CPU maps, read and written, checked against what the program itself reads and
writes (its return value depends on a map value the test writes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfkit import MapValueError, TypedMap, Vm, open_perf_buffer, open_ring_buffer
from bpfkit.btf.values import EnumName, Record
from bpfkit.cli.main import main
from bpfkit.errors import BpfkitError, VmError
from bpfkit.obj import read_object
from bpfkit.obj.spec import ObjectSpec
from bpfkit.uapi import BPF_EXIST, BPF_NOEXIST, XDP_DROP, XDP_PASS
from helpers import ROOT, clang_bpf

FLOWS = ROOT / "examples/flows/flows.c"
KEY = {"addr": 0x0100007F, "port": 80, "proto": 6}

pytestmark = pytest.mark.requires("clang19")


@pytest.fixture(scope="module")
def obj(tmp_path_factory: pytest.TempPathFactory) -> ObjectSpec:
    return read_object(str(clang_bpf(FLOWS, tmp_path_factory.mktemp("flows") / "flows.o")))


@pytest.fixture
def vm(obj: ObjectSpec) -> Vm:
    return Vm(obj.program("count_flows"), obj=obj, packet=bytes(64))


def test_struct_keys_and_values(vm: Vm) -> None:
    vm.run()
    vm.run()
    flows = vm["flows"]
    assert isinstance(flows, TypedMap) and len(flows) == 1
    [(key, value)] = flows.items()
    assert key == {**KEY, "pad": 0} and hash(key) == hash(flows.decode_key(flows.encode_key(KEY)))
    assert isinstance(value, Record)
    assert value == {"packets": 2, "st": "RUNNING", "name": "first", "delta": [-1, 2, -3]}
    assert value.packets == 2 and value.st == "RUNNING" and value.st.value == 1
    assert isinstance(value.st, EnumName) and value.name == "first"
    assert flows[KEY].delta == [-1, 2, -3] and KEY in flows and flows.get({"addr": 1}) is None
    assert (0x0100007F, 80, 6, 0) in flows  # a struct key as its members in order
    with pytest.raises(KeyError):
        flows[{"addr": 9}]
    # Written values read back, by the program too: it counts on from what we store.
    value.packets = 41
    flows[key] = value
    vm.run()
    assert flows[KEY].packets == 42
    flows[{"addr": 2, "port": 53}] = {"st": "STOPPED", "name": "dns", "delta": [-32768, 32767]}
    other = flows[{"addr": 2, "port": 53}]
    assert other == {"packets": 0, "st": "STOPPED", "name": "dns", "delta": [-32768, 32767, 0]}
    assert sorted(k.addr for k in flows) == [2, 0x0100007F]
    del flows[{"addr": 2, "port": 53}]
    assert len(flows) == 1
    with pytest.raises(KeyError):
        del flows[{"addr": 2, "port": 53}]
    # The map's bytes are still there.
    raw = flows.raw.raw_get(flows.encode_key(KEY))
    assert isinstance(raw, bytes) and raw[:8] == (42).to_bytes(8, "little")


def test_frozen_keys(vm: Vm) -> None:
    vm.run()
    key = next(iter(vm["flows"]))
    with pytest.raises(TypeError):
        key["port"] = 1
    assert {key: 1}[next(iter(vm["flows"]))] == 1 and key == dict(key)  # hashable; a dict too


def test_update_flags_by_name(vm: Vm) -> None:
    vm.run()
    flows = vm["flows"]
    with pytest.raises(VmError, match="exists and BPF_NOEXIST"):
        flows.put(KEY, {}, BPF_NOEXIST)
    with pytest.raises(VmError, match="does not exist and BPF_EXIST"):
        flows.put({"addr": 3}, {}, BPF_EXIST)
    flows.put({"addr": 3}, {"packets": 5}, BPF_NOEXIST)
    assert flows[{"addr": 3}].packets == 5


def test_enum_array_steers_the_program(vm: Vm) -> None:
    modes = vm["modes"]
    assert modes[0] == "IDLE" and modes[0].value == 0 and len(modes) == 2
    assert vm.run().verdict is XDP_PASS
    modes[0] = "STOPPED"
    assert vm.maps["modes"].get(0) == (5).to_bytes(4, "little")
    assert vm.run().verdict is XDP_DROP
    modes[0] = 1  # a number works too
    assert modes[0] == "RUNNING" and vm.run().verdict is XDP_PASS
    with pytest.raises(MapValueError, match="cannot be deleted"):
        del modes[0]
    assert 5 not in modes and 1 in modes


def test_per_cpu_values_are_lists(vm: Vm) -> None:
    vm.run()
    counts = vm["bytes_seen"]
    assert counts.percpu and counts[2] == [64] and counts[0] == [0]
    counts[1] = 7  # one value: every CPU
    counts[3] = [9]
    assert counts[1] == [7] and counts[3] == [9]
    vm.run()
    assert counts[2] == [128]
    assert dict(counts.items()) == {0: [0], 1: [7], 2: [128], 3: [9]}
    with pytest.raises(MapValueError, match="one value for every CPU or a list of 1"):
        counts[0] = [1, 2]


@pytest.mark.parametrize(
    ("name", "key", "value", "says"),
    [
        ("flows", KEY, {"packets": -1}, r"cannot store value -1 as __u64: out of range \(0\.\."),
        ("flows", KEY, {"name": "x" * 13}, r"as char\[12\]: 13 bytes, room for 12"),
        ("flows", KEY, {"name": "naïve"}, "not ASCII"),
        ("flows", KEY, {"st": "PAUSED"}, "'PAUSED' as enum state: no such enumerator"),
        ("flows", KEY, {"nope": 1}, "no member 'nope'"),
        ("flows", KEY, {"delta": [1, 2, 3, 4]}, "4 elements, room for 3"),
        ("flows", KEY, {"delta": [40000]}, r"as __s16: out of range \(-32768\.\.32767"),
        ("flows", {"port": 70000}, {}, r"cannot store key 70000 as __u16"),
        ("flows", KEY, 5, "give a dict"),
        ("bytes_seen", 0, 2**64, r"out of range \(0\.\.18446744073709551615"),
        ("bytes_seen", -1, 0, "cannot store key -1 as __u32"),
        ("modes", 0, "PAUSED", "no such enumerator"),
    ],
)
def test_values_that_do_not_fit_are_refused(
    vm: Vm, name: str, key: Any, value: Any, says: str
) -> None:
    m = vm[name]
    before = [(bytes(k), bytes(v) if isinstance(v, bytes) else v) for k, v in m.raw.items()]
    with pytest.raises(MapValueError, match=says) as e:
        m[key] = value
    assert f"map {name!r}" in str(e.value) and "give a" in str(e.value)
    assert [(bytes(k), v) for k, v in m.raw.items()] == before  # nothing half-written


def test_global_data_as_variables(vm: Vm) -> None:
    vm.run()
    bss = vm[".bss"]
    assert bss[0]["seq"] == 1
    bss[0] = {"seq": 100}
    vm.run()
    assert bss[0].seq == 101


def test_ring_buffer_records_to_a_callback(vm: Vm) -> None:
    for _ in range(3):
        vm.run()
    got: list[Any] = []
    with vm["events"].open_ring_buffer(got.append) as reader:
        assert reader.poll(0) == 3 and reader.poll(0) == 0  # consumed
    assert [e.seq for e in got] == [1, 2, 3]
    assert got[0] == {"pid": 42, "st": "STOPPED", "comm": "xdp", "len": 64, "seq": 1}
    # bcc's shape: cb(ctx, data, size) with the bytes; m.event(data) decodes them.
    vm.run()
    seen: list[tuple[Any, Any, int]] = []
    events = vm["events"]
    events.open_ring_buffer(
        lambda ctx, data, size: seen.append((ctx, events.event(data), size)), "c"
    ).poll(0)
    assert seen == [("c", {"pid": 42, "st": "STOPPED", "comm": "xdp", "len": 64, "seq": 4}, 32)]


def test_perf_buffer_records_to_a_callback(vm: Vm) -> None:
    vm.run()
    vm.run()
    got: list[tuple[int, int]] = []
    cb = lambda cpu, data, size: got.append((cpu, size))  # noqa: E731
    assert vm["perf_events"].open_perf_buffer(cb).poll(0) == 2
    assert got == [(0, 32), (0, 32)]
    vm.run()
    events: list[Any] = []
    open_perf_buffer(vm["perf_events"], events.append).poll()
    assert events == [{"pid": 7, "st": "RUNNING", "comm": "perf", "len": 64, "seq": 3}]


def test_record_type_by_name_and_bytes_without_one(vm: Vm) -> None:
    vm.run()
    got: list[Any] = []
    open_ring_buffer(vm.maps["events"], got.append).poll(0)  # a raw map: bytes
    assert isinstance(got[0], bytes) and len(got[0]) == 32
    vm.run()
    open_ring_buffer(vm["events"], got.append, type="struct stats").poll(0)  # as told
    assert isinstance(got[1], Record) and set(got[1]) == {"packets", "st", "name", "delta"}
    with pytest.raises(BpfkitError, match="no BTF to find"):
        open_ring_buffer(vm.maps["events"], got.append, type="struct nope")
    with pytest.raises(BpfkitError, match="has no type 'struct nope'"):
        vm["events"].open_ring_buffer(got.append, type="struct nope")
    with pytest.raises(BpfkitError, match="not a ring buffer: use open_perf_buffer"):
        vm["perf_events"].open_ring_buffer(got.append)
    with pytest.raises(BpfkitError, match="not a perf event array"):
        vm["flows"].open_perf_buffer(got.append)


def test_record_types_come_from_the_code(obj: ObjectSpec, tmp_path: Path) -> None:
    event = obj.parsed_btf().find("event", "struct")  # type: ignore[union-attr]
    assert obj.record_types() == {"events": event.id, "perf_events": event.id}
    # Without the pointer that puts struct event in BTF, clang leaves it out: no guess
    # (struct stats has the same size but is a map's value).
    src = tmp_path / "plain.c"
    src.write_text(FLOWS.read_text().replace("const struct event *unused_event", "// "))
    plain = read_object(str(clang_bpf(src, tmp_path / "plain.o")))
    assert plain.record_types() == {}


def test_vm_maps_prints_the_records_decoded(
    obj: ObjectSpec, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkt = tmp_path / "pkt.bin"
    pkt.write_bytes(bytes(64))
    assert main(["vm", "--maps", "--packet", str(pkt), obj.path]) == 0
    out = capsys.readouterr().out
    assert "retval: 2 (XDP_PASS)\n" in out
    assert (
        'map events (ringbuf): 1 records\n  {pid: 42, st: STOPPED, comm: "xdp", len: 64, seq: 1}'
        in out
    )
    assert (
        '  {addr: 16777343, port: 80, proto: 6, pad: 0}: {packets: 1, st: IDLE, name: "first", delta: [-1, 2, -3]}'
        in out
    )


_VALUES = st.fixed_dictionaries(
    {
        "packets": st.integers(0, 2**64 - 1),
        "st": st.sampled_from(["IDLE", "RUNNING", "STOPPED"]),
        "name": st.text(alphabet=[chr(c) for c in range(32, 127)], max_size=12),
        "delta": st.lists(st.integers(-(2**15), 2**15 - 1), min_size=3, max_size=3),
    }
)
_KEYS = st.fixed_dictionaries(
    {
        "addr": st.integers(0, 2**32 - 1),
        "port": st.integers(0, 2**16 - 1),
        "proto": st.integers(0, 255),
    }
)


@settings(max_examples=200, deadline=None)
@given(key=_KEYS, value=_VALUES)
def test_written_values_read_back(
    obj: ObjectSpec, key: dict[str, int], value: dict[str, Any]
) -> None:
    flows = Vm(obj.program("count_flows"), obj=obj)["flows"]
    flows[key] = value
    assert flows[key] == value and dict(next(iter(flows))) == {**key, "pad": 0}
