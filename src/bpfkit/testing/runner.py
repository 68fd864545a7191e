"""Run one program of an object in the VM, in the kernel (BPF_PROG_TEST_RUN) or in both.

>>> bpf = BpfRunner(read_object("xdp_count.o"), mode="vm")          # doctest: +SKIP
>>> r = bpf.run("xdp_count", packet=ether() / ipv4() / udp(), maps={"counts": {17: 0}})
>>> r.retval, r.maps["counts"]                                        # doctest: +SKIP
(2, {17: 1})

A run's :class:`RunResult` holds the return value, the packet after the run, the maps'
contents (decoded with the object's BTF where it has types: ints, dicts, strings), the lines
the program printed (VM) and the ring-buffer records it submitted.  Struct keys come back
as tuples of their members (dicts cannot be dict keys), and are given the same way.  Maps are filled before
each run from Python values (encoded with BTF, or given as bytes).  In ``both`` mode the
program runs in the VM and in the kernel, and the two results must agree: where they do
not, :class:`Disagreement` (an ``AssertionError``) shows a diff field by field.

The kernel's ``bpf_trace_printk`` output goes to the machine-wide trace buffer, which other
processes share: kernel runs report no printed lines, and ``both`` compares lines only
between VM runs.
"""

from __future__ import annotations

import difflib
import pprint
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bpfkit.btf import Btf
from bpfkit.btf.values import decode_value, encode_value
from bpfkit.errors import BpfkitError
from bpfkit.obj.spec import MapSpec, ObjectSpec
from bpfkit.testing.packets import packet_bytes
from bpfkit.uapi import MapType
from bpfkit.vm import Env, Vm, program_type
from bpfkit.vm.maps import RingBuf, VmMap

MODES = ("vm", "kernel", "both")
# Program types BPF_PROG_TEST_RUN runs (others, like kprobes and tracepoints, it refuses).
TEST_RUN_TYPES = frozenset(
    {
        "socket_filter",
        "sched_cls",
        "sched_act",
        "xdp",
        "cgroup_skb",
        "lwt_in",
        "lwt_out",
        "lwt_xmit",
        "lwt_seg6local",
        "flow_dissector",
        "raw_tracepoint",
        "sk_lookup",
        "syscall",
        "netfilter",
    }
)
_EVENT_MAPS = (MapType.RINGBUF, MapType.PERF_EVENT_ARRAY)


@dataclass
class RunResult:
    """What one run of a program produced."""

    mode: str  # "vm" or "kernel"
    retval: int
    packet: bytes | None
    maps: dict[str, dict[Any, Any]]
    lines: list[str] = field(default_factory=list)
    records: dict[str, list[bytes]] = field(default_factory=dict)  # ring buffer records


class Disagreement(AssertionError):
    """The VM and the kernel did not agree on a run (the message is a readable diff)."""


def _fmt(value: Any) -> list[str]:
    if isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
        # maps (and ring buffers): one line per entry, "name[key] = value"
        return [
            f"{name}[{k!r}] = {v!r}"
            for name, entries in sorted(value.items())
            for k, v in sorted(entries.items(), key=lambda kv: repr(kv[0]))
        ] or ["(no entries)"]
    if isinstance(value, dict):
        return [f"{name}: {v!r}" for name, v in sorted(value.items())] or ["(none)"]
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
        return [f"{i:04x}: {data[i : i + 16].hex(' ')}" for i in range(0, len(data), 16)] or ["b''"]
    return pprint.pformat(value, width=88, sort_dicts=True).splitlines()


def diff_results(a: RunResult, b: RunResult, *, what: str = "") -> str:
    """A unified diff of ``a`` and ``b``, field by field ('' when they agree)."""
    parts = []
    fields: list[tuple[str, Any, Any]] = [
        ("return value", a.retval, b.retval),
        ("packet", a.packet, b.packet),
        ("maps", a.maps, b.maps),
        ("ring buffer records", a.records, b.records),
    ]
    if a.mode == b.mode or (a.lines and b.lines):
        fields.append(("printed lines", a.lines, b.lines))
    for name, x, y in fields:
        if x == y:
            continue
        lines = difflib.unified_diff(_fmt(x), _fmt(y), a.mode, b.mode, lineterm="", n=2)
        parts.append(f"{name} differs:\n" + "\n".join(lines))
    if not parts:
        return ""
    head = f"{what}: " if what else ""
    return head + f"{a.mode} and {b.mode} disagree\n" + "\n\n".join(parts)


def _hashable(value: Any) -> Any:
    """A decoded key as a dict key: structs become tuples of their members, lists tuples."""
    if isinstance(value, dict):
        return tuple(_hashable(v) for v in value.values())
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


class BpfRunner:
    """Runs the programs of one object in ``mode`` (``vm``, ``kernel`` or ``both``)."""

    def __init__(self, obj: ObjectSpec, *, mode: str = "vm", env: Env | None = None) -> None:
        if mode not in MODES:
            raise BpfkitError(f"mode {mode!r}: use one of {', '.join(MODES)}")
        self.obj = obj
        self.mode = mode
        self.env = env if env is not None else Env()
        self._btf: Btf | None = None
        try:
            self._btf = obj.parsed_btf()
        except BpfkitError:
            self._btf = None

    # --- values ------------------------------------------------------------------------

    def _spec(self, name: str) -> MapSpec:
        for m in self.obj.maps:
            if m.name == name:
                return m
        names = ", ".join(m.name for m in self.obj.maps) or "none"
        raise BpfkitError(f"{self.obj.path}: no map named {name!r} (maps: {names})")

    def encode(self, spec: MapSpec, value: Any, *, key: bool) -> bytes:
        """``value`` as the bytes of the map's key (or value): BTF-typed, else an int of
        the map's size, or bytes of exactly that size."""
        size = spec.key_size if key else spec.value_size
        type_id = spec.key_type_id if key else spec.value_type_id
        what = f"map {spec.name} {'key' if key else 'value'}"
        if size is None:
            raise BpfkitError(f"{what}: the object does not say its size")
        if self._btf is not None and type_id:
            return encode_value(self._btf, type_id, value, big_endian=self.obj.big_endian)
        if isinstance(value, (bytes, bytearray)):
            if len(value) != size:
                raise BpfkitError(f"{what}: {len(value)} bytes given, the map's are {size}")
            return bytes(value)
        if isinstance(value, int):
            try:
                if self.obj.big_endian:
                    return value.to_bytes(size, "big", signed=value < 0)
                return value.to_bytes(size, "little", signed=value < 0)
            except OverflowError:
                raise BpfkitError(f"{what}: {value} does not fit in {size} bytes") from None
        raise BpfkitError(f"{what}: give an int or {size} bytes (the map has no BTF types)")

    def decode(self, spec: MapSpec, data: bytes, *, key: bool) -> Any:
        type_id = spec.key_type_id if key else spec.value_type_id
        if self._btf is not None and type_id:
            return decode_value(self._btf, type_id, data, big_endian=self.obj.big_endian)
        if len(data) in (1, 2, 4, 8):
            return int.from_bytes(data, "big" if self.obj.big_endian else "little")
        return data

    def _contents(self, name: str, items: list[tuple[bytes, bytes]]) -> dict[Any, Any]:
        spec = self._spec(name)
        out = {}
        for k, v in items:
            dk = self.decode(spec, k, key=True)
            out[_hashable(dk)] = self.decode(spec, v, key=False)
        return out

    def _entries(
        self, maps: Mapping[str, Mapping[Any, Any]] | None
    ) -> dict[str, list[tuple[bytes, bytes]]]:
        out = {}
        for name, entries in (maps or {}).items():
            spec = self._spec(name)
            out[name] = [
                (self.encode(spec, k, key=True), self.encode(spec, v, key=False))
                for k, v in entries.items()
            ]
        return out

    # --- runs --------------------------------------------------------------------------

    def _main(self, program: str | None) -> str:
        mains = [p.name for p in self.obj.programs if not p.is_subprog]
        if program is not None:
            if program not in mains:
                raise BpfkitError(
                    f"{self.obj.path}: no program named {program!r} (programs: {', '.join(mains)})"
                )
            return program
        if len(mains) != 1:
            raise BpfkitError(
                f"{self.obj.path} has {len(mains)} programs ({', '.join(mains)}): name one"
            )
        return mains[0]

    def run(
        self,
        program: str | None = None,
        *,
        packet: object = None,
        ctx: bytes | None = None,
        maps: Mapping[str, Mapping[Any, Any]] | None = None,
    ) -> RunResult:
        """Run ``program`` once on ``packet`` (bytes, layers or scapy) / ``ctx`` with
        ``maps`` filled first; in ``both`` mode, fail with a diff unless VM and kernel agree
        (the VM's result is returned)."""
        __tracebackhide__ = True  # a Disagreement's traceback ends in the test
        name = self._main(program)
        data = None if packet is None else packet_bytes(packet)
        entries = self._entries(maps)
        if self.mode == "vm":
            return self._vm(name, data, ctx, entries)
        runnable = program_type(self.obj.program(name)) in TEST_RUN_TYPES
        if self.mode == "kernel":
            if not runnable:
                raise BpfkitError(
                    f"{self.obj.path}: {name} is a {program_type(self.obj.program(name))} "
                    "program, which BPF_PROG_TEST_RUN cannot run: use the vm mode"
                )
            return self._kernel(name, data, ctx, entries)
        vm = self._vm(name, data, ctx, entries)
        if not runnable:
            # The kernel cannot run it: it must at least accept it (the verifier's verdict).
            self.verify(name)
            return vm
        kernel = self._kernel(name, data, ctx, entries)
        diff = diff_results(vm, kernel, what=f"{self.obj.path}: {name}")
        if diff:
            raise Disagreement(diff)
        return vm

    def verify(self, name: str) -> None:
        """Load ``name`` in the kernel and close it (the verifier's rejection is raised)."""
        from bpfkit.kernel.collection import load_collection

        with load_collection(self.obj, programs=[name]):
            pass

    def _vm(
        self,
        name: str,
        data: bytes | None,
        ctx: bytes | None,
        entries: dict[str, list[tuple[bytes, bytes]]],
    ) -> RunResult:
        from dataclasses import replace

        vm = Vm(self.obj.program(name), obj=self.obj, packet=data, ctx=ctx, env=replace(self.env))
        for mname, items in entries.items():
            m: VmMap = vm.maps[mname]
            for k, v in items:
                if m.update(k, v, 0) < 0:
                    raise BpfkitError(f"map {mname}: the VM refused the entry {k.hex()}")
        r = vm.run()
        maps, records = {}, {}
        for mname, m in r.maps.items():
            if isinstance(m, RingBuf):
                records[mname] = list(m.records)
            elif any(s.name == mname for s in self.obj.maps) and m.type not in _EVENT_MAPS:
                maps[mname] = self._contents(mname, m.items())
        return RunResult("vm", r.r0 & 0xFFFFFFFF, r.packet, maps, r.lines, records)

    def _kernel(
        self,
        name: str,
        data: bytes | None,
        ctx: bytes | None,
        entries: dict[str, list[tuple[bytes, bytes]]],
    ) -> RunResult:
        from bpfkit.events.ringbuf import RingBufReader
        from bpfkit.kernel.collection import load_collection

        with load_collection(self.obj, programs=[name]) as coll:
            for mname, given in entries.items():
                for k, v in given:
                    coll.maps[mname].put(k, v)
            readers = {
                s.name: RingBufReader(coll.maps[s.name].fd, s.max_entries or 0)
                for s in self.obj.maps
                if s.type == MapType.RINGBUF and s.name in coll.maps
            }
            try:
                result = coll.programs[name].test_run(data or b"", ctx=ctx)
                records = {n: r.read() for n, r in readers.items()}
            finally:
                for r in readers.values():
                    r.close()
            maps = {}
            for s in self.obj.maps:
                if s.type in _EVENT_MAPS or s.name not in coll.maps:
                    continue
                m = coll.maps[s.name]
                items: list[tuple[bytes, bytes]] = []
                for k in m.raw_keys():
                    found = m.lookup(k)
                    if found is not None:
                        items.append((k, found))
                maps[s.name] = self._contents(s.name, items)
        packet = result.data_out if data is not None else None
        return RunResult("kernel", result.retval & 0xFFFFFFFF, packet, maps, [], records)
