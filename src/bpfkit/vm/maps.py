"""Maps of the VM: hash, array, per-CPU (one CPU), LRU hash, program array, ring buffer and
perf event array, with the kernel's update flags and error numbers.

A map keeps its contents as Python bytes; the values a program reaches through
``bpf_map_lookup_elem`` are mapped into the VM's memory as regions (created when first
looked up, reused after), so the program reads and writes the map's own storage.

Storage is charged to the VM's memory budget (:meth:`bpfkit.vm.memory.Memory.charge`):
arrays up to 1 MiB when the VM takes them, larger arrays one element at a time as the
program (or an update) first touches it, hash entries when inserted, ring buffer records
and perf event samples when made.

For the host (the typed view :class:`bpfkit.btf.typedmap.TypedMap`, ``vm["name"]``) every
map offers ``raw_get``/``raw_put``/``raw_delete``/``raw_entries`` on bytes (per-CPU maps:
a list of one value, the VM being one CPU) with the kernel's flags and refusals as a
VmError naming the map, and ``open_records()`` for ring buffers and perf event arrays
(records consumed, as a kernel reader consumes them).
"""

from __future__ import annotations

import errno
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from bpfkit.errors import VmError
from bpfkit.uapi import BPF_EXIST, BPF_NOEXIST
from bpfkit.vm.memory import Fault, Memory, Region

if TYPE_CHECKING:
    from bpfkit.obj.spec import DataSpec, MapSpec

# enum bpf_map_type (include/uapi/linux/bpf.h): the types the VM emulates.
MAP_HASH = 1
MAP_ARRAY = 2
MAP_PROG_ARRAY = 3
MAP_PERF_EVENT_ARRAY = 4
MAP_PERCPU_HASH = 5
MAP_PERCPU_ARRAY = 6
MAP_LRU_HASH = 9
MAP_LRU_PERCPU_HASH = 10
MAP_RINGBUF = 27

MAP_TYPE_NAMES = {
    MAP_HASH: "hash",
    MAP_ARRAY: "array",
    MAP_PROG_ARRAY: "prog_array",
    MAP_PERF_EVENT_ARRAY: "perf_event_array",
    MAP_PERCPU_HASH: "percpu_hash",
    MAP_PERCPU_ARRAY: "percpu_array",
    MAP_LRU_HASH: "lru_hash",
    MAP_LRU_PERCPU_HASH: "lru_percpu_hash",
    MAP_RINGBUF: "ringbuf",
}

LAZY_ARRAY_BYTES = 1 << 20  # larger arrays get each element when it is first used
MAX_RECORD = 64 << 20  # ring buffer records the VM is willing to allocate

BPF_F_RDONLY_PROG = 1 << 7  # map_flags: programs may only read the map
PERCPU_TYPES = frozenset({MAP_PERCPU_HASH, MAP_PERCPU_ARRAY, MAP_LRU_PERCPU_HASH})


class VmMap:
    """Common part of every VM map: name, type, sizes, and the value regions it hands out."""

    def __init__(
        self, name: str, type: int, key_size: int, value_size: int, max_entries: int
    ) -> None:
        self.name = name
        self.type = type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.handle = 0  # the map's address as lddw src=1 gives it (set by the VM)
        self.memory: Memory | None = None
        self._regions: dict[bytes, tuple[bytearray | memoryview, Region]] = {}
        self.readonly = False  # for programs: .rodata, BPF_F_RDONLY_PROG (the kernel's verifier)
        self.frozen = False  # for the host (BPF_MAP_FREEZE): update() raises

    def _host_value(self, key: bytes, value: bytes) -> None:
        """Check a key and value given to update(): the map's sizes, not frozen."""
        if self.frozen:
            raise VmError(f"map {self.name} is frozen (read-only data): it cannot be changed")
        if len(key) < self.key_size or len(value) < self.value_size:
            raise VmError(
                f"map {self.name}: update with a {len(key)}-byte key and {len(value)}-byte "
                f"value; its keys are {self.key_size} and its values {self.value_size} bytes"
            )

    @property
    def type_name(self) -> str:
        """``hash``, ``array``, ... (the type number if unknown)."""
        return MAP_TYPE_NAMES.get(self.type, str(self.type))

    def bind(self, memory: Memory) -> None:
        """Attach the map to a VM's memory (forgetting regions of a previous VM)."""
        if self.memory is not memory:
            self.memory = memory
            self._regions = {}
            self._charge(self.storage_bytes())

    def storage_bytes(self) -> int:
        """Bytes the map's contents take now (charged when bound to a VM)."""
        return 0

    def _charge(self, size: int) -> None:
        if self.memory is not None and size:
            self.memory.charge(size, f"{self.type_name} map {self.name}")

    def _release(self, size: int) -> None:
        if self.memory is not None:
            self.memory.release(size)

    def _region(self, key: bytes, buf: bytearray | memoryview, writable: bool = True) -> Region:
        """The region of the value ``buf`` stored under ``key`` (mapped on first use)."""
        if self.memory is None:
            raise VmError(f"map {self.name} is not attached to a VM")
        cached = self._regions.get(key)
        if cached is not None and cached[0] is buf:
            return cached[1]
        region = self.memory.add(f"map {self.name} value", buf, writable=writable)
        self._regions[key] = (buf, region)
        return region

    # The helper-facing operations return a region / 0 / -errno, as the kernel's helpers.
    def lookup(self, key: bytes) -> Region | None:
        """``bpf_map_lookup_elem``: the value's region, or None."""
        return None

    def update(self, key: bytes, value: bytes, flags: int) -> int:
        """``bpf_map_update_elem``: 0 or a negative errno."""
        return -errno.EINVAL

    def delete(self, key: bytes) -> int:
        """``bpf_map_delete_elem``: 0 or a negative errno."""
        return -errno.EINVAL

    def items(self) -> list[tuple[bytes, bytes]]:
        """The contents as (key, value) pairs, in a stable order."""
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {len(self.items())} entries>"

    # Bytes for the host: the typed view's protocol (bpfkit.btf.typedmap.RawMap).
    @property
    def percpu(self) -> bool:
        """True for per-CPU maps (the VM has one CPU: values come as a list of one)."""
        return self.type in PERCPU_TYPES

    @property
    def ncpus(self) -> int:
        """Values per key: 1 (the VM runs on one CPU)."""
        return 1

    def host_get(self, key: bytes) -> bytes | None:
        """The value at ``key`` as the host reads it (no LRU touch), or None."""
        raise VmError(f"map {self.name} ({self.type_name}) has no values to read by key")

    def raw_get(self, key: bytes) -> bytes | list[bytes] | None:
        """The value bytes at ``key`` (a list of one for per-CPU maps), None if absent."""
        value = self.host_get(bytes(key))
        if value is None:
            return None
        return [value] if self.percpu else value

    def raw_put(self, key: bytes, value: bytes | list[bytes], flags: int) -> None:
        """Write value bytes at ``key`` with update ``flags``; VmError as the kernel
        refuses (EEXIST with BPF_NOEXIST, ENOENT with BPF_EXIST, a full map, ...)."""
        if isinstance(value, list):
            if len(value) != 1:
                raise VmError(
                    f"map {self.name}: the VM has one CPU: give one value, not {len(value)}"
                )
            value = value[0]
        err = self.update(bytes(key), bytes(value), flags)
        if err:
            raise VmError(self._refusal(-err, flags))

    def _refusal(self, err: int, flags: int) -> str:
        why = {
            errno.EEXIST: "the key exists and BPF_NOEXIST was given",
            errno.ENOENT: "the key does not exist and BPF_EXIST was given",
            errno.E2BIG: f"the map is full or the index is past its {self.max_entries} entries",
            errno.EINVAL: f"flags {flags} are not BPF_ANY, BPF_NOEXIST or BPF_EXIST",
        }.get(err, f"error {errno.errorcode.get(err, err)}")
        return f"map {self.name} ({self.type_name}): update refused: {why}"

    def raw_delete(self, key: bytes) -> bool:
        """Delete ``key``; False if it was absent."""
        err = self.delete(bytes(key))
        if err == -errno.ENOENT:
            return False
        if err:
            raise VmError(f"map {self.name} ({self.type_name}): delete refused (EINVAL)")
        return True

    def raw_entries(self) -> list[tuple[bytes, bytes | list[bytes]]]:
        """(key, value) pairs (values as a list of one for per-CPU maps)."""
        if self.percpu:
            return [(k, [v]) for k, v in self.items()]
        return [(k, v) for k, v in self.items()]

    def open_records(self) -> VmRecords:
        """A reader of this ring buffer's or perf event array's records."""
        raise VmError(f"map {self.name} ({self.type_name}) has no records to read")


class ArrayMap(VmMap):
    """``BPF_MAP_TYPE_ARRAY`` and ``PERCPU_ARRAY`` (one CPU): a fixed table of zeroed values.

    Up to :data:`LAZY_ARRAY_BYTES` the table is one bytearray; a larger array keeps only
    the elements used so far (``items()`` lists those), so declaring 256 MiB and using one
    element costs one element."""

    def __init__(
        self,
        name: str,
        key_size: int,
        value_size: int,
        max_entries: int,
        *,
        type: int = MAP_ARRAY,
        initial: bytes = b"",
        readonly: bool = False,
    ) -> None:
        super().__init__(name, type, key_size, value_size, max_entries)
        if key_size != 4:
            raise VmError(f"array map {name}: key size must be 4, not {key_size}")
        self.lazy = value_size * max_entries > LAZY_ARRAY_BYTES
        self._elements: dict[int, bytearray] = {}
        self.data = bytearray(0 if self.lazy else value_size * max_entries)
        if initial:
            if self.lazy:
                for i in range(0, min(len(initial), value_size * max_entries), value_size):
                    chunk = initial[i : i + value_size]
                    if any(chunk):
                        self._elements[i // value_size] = bytearray(chunk.ljust(value_size, b"\0"))
            else:
                self.data[: len(initial)] = initial[: len(self.data)]
        self.readonly = self.frozen = readonly  # libbpf freezes .rodata after filling it
        self._view = memoryview(self.data)

    def storage_bytes(self) -> int:
        return len(self.data) + self.value_size * len(self._elements)

    def _index(self, key: bytes) -> int | None:
        i = int.from_bytes(key[:4], "little")
        return i if i < self.max_entries else None

    def _element(self, i: int) -> bytearray | memoryview:
        """Element ``i``'s storage (made, and charged, on first use in a lazy array)."""
        vs = self.value_size
        if not self.lazy:
            return self._view[i * vs : (i + 1) * vs]
        elem = self._elements.get(i)
        if elem is None:
            self._charge(vs)
            elem = self._elements[i] = bytearray(vs)
        return elem

    def lookup(self, key: bytes) -> Region | None:
        i = self._index(key)
        if i is None:
            return None
        k = bytes(key[:4])
        cached = self._regions.get(k)
        if cached is not None:
            return cached[1]
        return self._region(k, self._element(i), not self.readonly)

    def value_address(self, index: int = 0) -> int:
        """Address of element ``index`` (global data: ``lddw`` src=2)."""
        region = self.lookup(index.to_bytes(4, "little"))
        if region is None:
            raise VmError(f"map {self.name} has no element {index}")
        return region.base

    def update(self, key: bytes, value: bytes, flags: int) -> int:
        self._host_value(key, value)
        if flags > BPF_EXIST:
            return -errno.EINVAL
        i = self._index(key)
        if i is None:
            return -errno.E2BIG
        if flags == BPF_NOEXIST:
            return -errno.EEXIST
        self._element(i)[:] = value[: self.value_size]
        return 0

    def items(self) -> list[tuple[bytes, bytes]]:
        if self.lazy:
            return [(i.to_bytes(4, "little"), bytes(v)) for i, v in sorted(self._elements.items())]
        vs = self.value_size
        return [
            (i.to_bytes(4, "little"), bytes(self.data[i * vs : (i + 1) * vs]))
            for i in range(self.max_entries)
        ]

    def host_get(self, key: bytes) -> bytes | None:
        i = self._index(key) if len(key) == 4 else None
        return None if i is None else self.get(i)

    def get(self, index: int) -> bytes:
        """The value at ``index``."""
        if self.lazy:
            return bytes(self._elements.get(index, bytes(self.value_size)))
        vs = self.value_size
        return bytes(self.data[index * vs : (index + 1) * vs])


class HashMap(VmMap):
    """``HASH``, ``PERCPU_HASH`` (one CPU) and, with ``lru=True``, ``LRU_HASH`` variants."""

    def __init__(
        self,
        name: str,
        key_size: int,
        value_size: int,
        max_entries: int,
        *,
        type: int = MAP_HASH,
        lru: bool = False,
    ) -> None:
        super().__init__(name, type, key_size, value_size, max_entries)
        self.lru = lru
        self.entries: OrderedDict[bytes, bytearray] = OrderedDict()

    def lookup(self, key: bytes) -> Region | None:
        key = bytes(key)
        value = self.entries.get(key)
        if value is None:
            return None
        if self.lru:
            self.entries.move_to_end(key)
        return self._region(key, value)

    def update(self, key: bytes, value: bytes, flags: int) -> int:
        self._host_value(key, value)
        if flags > BPF_EXIST:
            return -errno.EINVAL
        key = bytes(key)
        old = self.entries.get(key)
        if old is not None:
            if flags == BPF_NOEXIST:
                return -errno.EEXIST
            old[:] = value[: self.value_size]  # in place: pointers handed out stay valid
            if self.lru:
                self.entries.move_to_end(key)
            return 0
        if flags == BPF_EXIST:
            return -errno.ENOENT
        if len(self.entries) >= self.max_entries:
            if not self.lru:
                return -errno.E2BIG
            self.entries.popitem(last=False)  # the least recently used goes
            self._release(self.key_size + self.value_size)
        self._charge(self.key_size + self.value_size)
        self.entries[key] = bytearray(value[: self.value_size])
        return 0

    def storage_bytes(self) -> int:
        return len(self.entries) * (self.key_size + self.value_size)

    def host_get(self, key: bytes) -> bytes | None:
        value = self.entries.get(bytes(key))
        return None if value is None else bytes(value)

    def delete(self, key: bytes) -> int:
        key = bytes(key)
        if self.entries.pop(key, None) is None:
            return -errno.ENOENT
        self._release(self.key_size + self.value_size)
        # The value's region stays mapped (as under RCU in the kernel): no dangling access.
        self._regions.pop(key, None)
        return 0

    def items(self) -> list[tuple[bytes, bytes]]:
        return sorted((k, bytes(v)) for k, v in self.entries.items())


class ProgArray(VmMap):
    """``PROG_ARRAY``: slots holding programs for ``bpf_tail_call``.

    A slot holds whatever the VM accepts as a program (a name of a program of the same
    object, or a list of instructions); the VM resolves it when the tail call happens.
    """

    def __init__(self, name: str, max_entries: int) -> None:
        super().__init__(name, MAP_PROG_ARRAY, 4, 4, max_entries)
        self.slots: dict[int, object] = {}

    def set(self, index: int, program: object) -> None:
        """Put ``program`` in slot ``index``."""
        if not 0 <= index < self.max_entries:
            raise VmError(f"prog array {self.name}: index {index} >= {self.max_entries}")
        self.slots[index] = program

    def items(self) -> list[tuple[bytes, bytes]]:
        return [(i.to_bytes(4, "little"), repr(p).encode()) for i, p in sorted(self.slots.items())]


class RingBuf(VmMap):
    """``RINGBUF``: records submitted by the program, in order, in ``records``."""

    HEADER = 8  # each record takes an 8-byte header in the kernel's ring

    def __init__(self, name: str, max_entries: int) -> None:
        super().__init__(name, MAP_RINGBUF, 0, 0, max_entries)
        self.records: list[bytes] = []
        self._pending: dict[int, Region] = {}
        self._used = 0

    def _round(self, size: int) -> int:
        return (size + self.HEADER + 7) & ~7

    def output(self, data: bytes) -> int:
        """``bpf_ringbuf_output``."""
        if self._used + self._round(len(data)) > self.max_entries:
            return -errno.EAGAIN
        self._charge(len(data))
        self.records.append(bytes(data))
        self._used += self._round(len(data))
        return 0

    def reserve(self, size: int) -> Region | None:
        """``bpf_ringbuf_reserve``: a writable record region, or None when full."""
        if self.memory is None:
            raise VmError(f"map {self.name} is not attached to a VM")
        if size > MAX_RECORD:
            raise Fault(f"ringbuf {self.name}: a record of {size} bytes is more than the VM makes")
        if self._used + self._round(size) > self.max_entries:
            return None
        self._charge(size)
        self._used += self._round(size)
        region = self.memory.add(f"ringbuf {self.name} record", bytearray(size))
        self._pending[region.base] = region
        return region

    def finish(self, address: int, submit: bool) -> bool:
        """``bpf_ringbuf_submit`` / ``_discard``; False if ``address`` is no reserved record."""
        region = self._pending.pop(address, None)
        if region is None:
            return False
        if submit:
            self.records.append(bytes(region.buf))
        else:
            self._used -= self._round(region.size)
            self._release(region.size)
        assert self.memory is not None
        self.memory.remove(region)
        return True

    def items(self) -> list[tuple[bytes, bytes]]:
        return [(i.to_bytes(4, "little"), r) for i, r in enumerate(self.records)]

    def consume(self) -> list[bytes]:
        """Take the submitted records out (their room in the ring is free again)."""
        out, self.records = self.records, []
        for r in out:
            self._used -= self._round(len(r))
            self._release(len(r))
        return out

    def open_records(self) -> VmRecords:
        return VmRecords(self)


class PerfEventArray(VmMap):
    """``PERF_EVENT_ARRAY``: ``bpf_perf_event_output`` samples, as (cpu, bytes)."""

    def __init__(self, name: str, max_entries: int) -> None:
        super().__init__(name, MAP_PERF_EVENT_ARRAY, 4, 4, max_entries)
        self.events: list[tuple[int, bytes]] = []

    def output(self, cpu: int, data: bytes) -> None:
        """A ``bpf_perf_event_output`` sample (charged to the VM's memory budget)."""
        self._charge(len(data))
        self.events.append((cpu, data))

    def items(self) -> list[tuple[bytes, bytes]]:
        return [(cpu.to_bytes(4, "little"), data) for cpu, data in self.events]

    def consume(self) -> list[tuple[int, bytes]]:
        """Take the samples out, as (cpu, bytes)."""
        out, self.events = self.events, []
        for _, data in out:
            self._release(len(data))
        return out

    def open_records(self) -> VmRecords:
        return VmRecords(self)


class VmRecords:
    """Reads a VM ring buffer's or perf event array's records, consuming them, as the
    kernel's readers do; ``poll`` never waits (the VM's runs have already happened)."""

    lost = 0  # the VM drops nothing silently: a full ring makes reserve/output fail

    def __init__(self, vmap: RingBuf | PerfEventArray) -> None:
        self.vmap = vmap

    @property
    def discarded(self) -> int:
        """Records the program discarded (not kept by the VM: 0)."""
        return 0

    def read(self) -> list[bytes] | list[tuple[int, bytes]]:
        """The records submitted since the last read."""
        return self.vmap.consume()

    def poll(self, timeout: float | None = None) -> list[bytes] | list[tuple[int, bytes]]:
        """As :meth:`read` (``timeout`` is for the kernel's readers' shape)."""
        return self.read()

    def close(self) -> None:
        """Nothing to release."""


class UnemulatedMap(VmMap):
    """A map of a type the VM does not emulate: using it stops the program, naming it."""

    def _refuse(self) -> VmError:
        return Fault(f"map {self.name}: map type {self.type} is not emulated by the VM")

    def lookup(self, key: bytes) -> Region | None:
        raise self._refuse()

    def update(self, key: bytes, value: bytes, flags: int) -> int:
        raise self._refuse()

    def delete(self, key: bytes) -> int:
        raise self._refuse()


def _need(spec: MapSpec, value: int | None, what: str) -> int:
    if value is None:
        raise VmError(f"map {spec.name}: the object gives no {what}")
    return value


def map_from_spec(spec: MapSpec) -> VmMap:
    """A VM map for a map definition of an object."""
    t = _need(spec, spec.type, "type")
    ks = spec.key_size or 0
    vs = spec.value_size or 0
    if t == MAP_PERF_EVENT_ARRAY and not spec.max_entries:
        n = 1  # libbpf: one slot per possible CPU when not given; the VM has one CPU
    else:
        n = _need(spec, spec.max_entries, "max_entries")
    makers: dict[int, Callable[[], VmMap]] = {
        MAP_HASH: lambda: HashMap(spec.name, ks, vs, n),
        MAP_PERCPU_HASH: lambda: HashMap(spec.name, ks, vs, n, type=MAP_PERCPU_HASH),
        MAP_LRU_HASH: lambda: HashMap(spec.name, ks, vs, n, type=MAP_LRU_HASH, lru=True),
        MAP_LRU_PERCPU_HASH: lambda: HashMap(
            spec.name, ks, vs, n, type=MAP_LRU_PERCPU_HASH, lru=True
        ),
        MAP_ARRAY: lambda: ArrayMap(spec.name, ks, vs, n),
        MAP_PERCPU_ARRAY: lambda: ArrayMap(spec.name, ks, vs, n, type=MAP_PERCPU_ARRAY),
        MAP_PROG_ARRAY: lambda: ProgArray(spec.name, n),
        MAP_PERF_EVENT_ARRAY: lambda: PerfEventArray(spec.name, n),
        MAP_RINGBUF: lambda: RingBuf(spec.name, n),
    }
    maker = makers.get(t)
    if maker is None:  # loading works; the program stops if it uses the map
        return UnemulatedMap(spec.name, t, ks, vs, n)
    vmap = maker()
    vmap.readonly = bool(spec.flags & BPF_F_RDONLY_PROG)
    return vmap


def map_from_data(spec: DataSpec) -> ArrayMap:
    """The one-element array map libbpf makes of a global data section."""
    return ArrayMap(spec.name, 4, max(spec.size, 1), 1, initial=spec.data, readonly=spec.readonly)
