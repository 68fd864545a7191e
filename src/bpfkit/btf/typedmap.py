"""A map read and written as Python values, typed by its BTF: the same view of kernel and
VM maps.

::

    m = coll["flows"]                 # kernel (Collection, Session) or vm["flows"] (Vm)
    m[{"ip": 0x0100007F, "port": 80}] = {"packets": 1, "name": "eth0"}
    m[key].packets, m.get(key), key in m, del m[key]
    for key, value in m.items(): ...  # struct keys as hashable records, values as records
    m.put(key, value, BPF_NOEXIST)    # update flags by name (bpfkit.uapi.UpdateFlag)
    m.raw                             # the map itself: bytes in, bytes out, as before
    m.open_ring_buffer(callback)      # ring/perf buffers: decoded records to a callback

Keys and values are encoded and decoded by :class:`bpfkit.btf.mapview.MapTypes` (the
types the one map renderer shows): integers as ``int``, ``char`` arrays as ``str``,
structs as :class:`~bpfkit.btf.values.Record` (a dict with attributes; keys frozen),
arrays as lists (tuples in keys), enums by name (:class:`~bpfkit.btf.values.EnumName`;
a name or a number is accepted).  A per-CPU map's value is a list with one value per CPU
(the VM has one); writing one value sets every CPU.  A map without BTF types takes and
gives ints (1, 2, 4 or 8 bytes) or bytes.  A value that does not fit (out of range, too
long, no such member or enumerator) is a :class:`~bpfkit.errors.MapValueError` naming the
map; nothing is truncated.

The map behind the view is anything with the small :class:`RawMap` protocol: the kernel's
:class:`bpfkit.kernel.maps.Map` and the VM's :class:`bpfkit.vm.maps.VmMap` have it.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterable, Iterator, MutableMapping, ValuesView
from typing import Any, Protocol

from bpfkit.btf.mapview import MapTypes
from bpfkit.btf.records import RecordReader
from bpfkit.btf.values import frozen
from bpfkit.errors import BpfkitError, BtfError, MapValueError
from bpfkit.uapi import BPF_ANY, MapType

__all__ = ["RawMap", "TypedMap", "open_perf_buffer", "open_ring_buffer"]

_ARRAYS = frozenset({MapType.ARRAY, MapType.PERCPU_ARRAY})
_RING = frozenset({MapType.RINGBUF})
_PERF = frozenset({MapType.PERF_EVENT_ARRAY})


class RawMap(Protocol):
    """What a map offers the typed view: bytes in, bytes out.  Per-CPU maps give and take
    a list of values, one per CPU (``ncpus`` of them)."""

    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int

    @property
    def ncpus(self) -> int:
        """Values per key: the CPUs of a per-CPU map, else 1."""
        ...

    def raw_get(self, key: bytes) -> bytes | list[bytes] | None:
        """The value at ``key`` (a list per CPU for per-CPU maps), None if absent."""
        ...

    def raw_put(self, key: bytes, value: bytes | list[bytes], flags: int) -> None:
        """Write ``value`` (one per CPU for per-CPU maps) with update ``flags``."""
        ...

    def raw_delete(self, key: bytes) -> bool:
        """Delete ``key``; False if it was absent."""
        ...

    def raw_entries(self) -> Iterable[tuple[bytes, bytes | list[bytes]]]:
        """Every (key, value) pair (values per CPU for per-CPU maps)."""
        ...

    def open_records(self) -> Any:
        """A reader of the map's records (ring buffers, perf event arrays): ``poll``,
        ``read``, ``close`` giving ``(cpu, bytes)`` pairs."""
        ...


class TypedMap(MutableMapping[Any, Any]):
    """A map's keys and values as Python values (see the module docstring)."""

    def __init__(self, raw: RawMap, types: MapTypes | None = None) -> None:
        self.raw = raw
        self.types = types or MapTypes()
        self.name = raw.name

    def __repr__(self) -> str:
        key = self.types.btf.format(self.types.key) if self.types.btf and self.types.key else "?"
        value = self.types.record_type or "?"
        return f"<TypedMap {self.name!r} {self._kind()} {key} -> {value}>"

    def _kind(self) -> str:
        try:
            return MapType(self.raw.type).name.lower()
        except ValueError:
            return str(self.raw.type)

    @property
    def percpu(self) -> bool:
        """True for per-CPU maps (values are lists, one per CPU)."""
        return self.raw.type in _PERCPU

    # -- encoding -----------------------------------------------------------------------
    def _bad(self, what: str, value: Any, e: BtfError) -> MapValueError:
        why = str(e).split("cannot store ", 1)[-1]
        return MapValueError(
            f"map {self.name!r} ({self._kind()}): cannot store {what} {why}; give a {what} "
            f"of its type ({self._type_text(what)}), or bytes through .raw"
        )

    def _type_text(self, what: str) -> str:
        btf, tid = self.types.btf, (self.types.key if what == "key" else self.types.value)
        if btf is None or not tid:
            size = self.raw.key_size if what == "key" else self.raw.value_size
            return f"{size} bytes, no BTF type"
        return btf.format(tid)

    def encode_key(self, key: Any) -> bytes:
        """The bytes of ``key``; MapValueError if it does not fit the key type."""
        try:
            return self.types.encode_key(key, self.raw.key_size)
        except BtfError as e:
            raise self._bad("key", key, e) from None

    def encode_value(self, value: Any) -> bytes | list[bytes]:
        """The bytes of ``value`` (per CPU for a per-CPU map: a list of ``ncpus`` values,
        or one value for every CPU); MapValueError if it does not fit."""
        if self.percpu:
            n = self.raw.ncpus
            values = list(value) if isinstance(value, list | tuple) else [value] * n
            if len(values) != n:
                raise MapValueError(
                    f"map {self.name!r} is per-CPU: give one value for every CPU or a list "
                    f"of {n} (one per CPU), not {len(values)}"
                )
            return [self._one(v) for v in values]
        return self._one(value)

    def _one(self, value: Any) -> bytes:
        try:
            return self.types.encode_value(value, self.raw.value_size)
        except BtfError as e:
            raise self._bad("value", value, e) from None

    def decode_key(self, raw: bytes) -> Any:
        """A key's bytes as a (hashable) Python value."""
        return frozen(self.types.decode_key(bytes(raw)))

    def decode_value(self, raw: bytes | list[bytes]) -> Any:
        """A value's bytes as a Python value (a list per CPU for per-CPU maps)."""
        if isinstance(raw, list):
            return [self.types.decode_value(bytes(r)) for r in raw]
        return self.types.decode_value(bytes(raw))

    def event(self, data: bytes) -> Any:
        """One ring/perf buffer record's bytes decoded (bcc's ``b["events"].event(data)``)."""
        return self.types.decode_value(bytes(data))

    # -- the mapping protocol ---------------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        raw = self.raw.raw_get(self.encode_key(key))
        if raw is None:
            raise KeyError(key)
        return self.decode_value(raw)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.put(key, value)

    def put(self, key: Any, value: Any, flags: int = BPF_ANY) -> None:
        """Write ``value`` at ``key`` with update ``flags`` (``BPF_ANY``, ``BPF_NOEXIST``:
        only a new key, ``BPF_EXIST``: only an existing key)."""
        self.raw.raw_put(self.encode_key(key), self.encode_value(value), int(flags))

    def __delitem__(self, key: Any) -> None:
        if self.raw.type in _ARRAYS:
            raise MapValueError(
                f"map {self.name!r} is an array: its slots cannot be deleted (set the slot "
                "to a zero value instead)"
            )
        if not self.raw.raw_delete(self.encode_key(key)):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        try:
            encoded = self.encode_key(key)
        except MapValueError:
            return False  # a key of another type is not in the map
        return self.raw.raw_get(encoded) is not None

    def __iter__(self) -> Iterator[Any]:
        for k, _ in self.raw.raw_entries():
            yield self.decode_key(k)

    def __len__(self) -> int:
        return sum(1 for _ in self.raw.raw_entries())

    def items(self) -> ItemsView[Any, Any]:
        """(key, value) pairs, read once each."""
        return _Items(self)

    def values(self) -> ValuesView[Any]:
        """Values, read once each."""
        return _Values(self)

    # -- records ------------------------------------------------------------------------------
    def open_ring_buffer(
        self, callback: Callable[..., Any], ctx: Any = None, *, type: str | None = None
    ) -> RecordReader:
        """Call ``callback`` with each record of this ring buffer, decoded, on ``poll``.

        ``callback(event)`` gets the decoded record; a callback of three parameters is
        called as bcc's, ``callback(ctx, data, size)`` with the record's bytes (decode
        them with :meth:`event`).  ``type``: the C type of the records (``"struct
        event"``) where the object does not show it."""
        if self.raw.type not in _RING:
            raise BpfkitError(
                f"map {self.name!r} is a {self._kind()} map, not a ring buffer: "
                + ("use open_perf_buffer" if self.raw.type in _PERF else "it has no records")
            )
        return RecordReader(self, callback, ctx, type_name=type, perf=False)

    def open_perf_buffer(
        self,
        callback: Callable[..., Any],
        *,
        lost_cb: Callable[[int], Any] | None = None,
        type: str | None = None,
    ) -> RecordReader:
        """Call ``callback`` with each record of this perf event array, decoded, on
        ``poll``: ``callback(event)``, or as bcc's ``callback(cpu, data, size)`` for a
        callback of three parameters; ``lost_cb(count)`` when the kernel dropped
        records.  ``type`` as for :meth:`open_ring_buffer`."""
        if self.raw.type not in _PERF:
            raise BpfkitError(
                f"map {self.name!r} is a {self._kind()} map, not a perf event array: "
                + ("use open_ring_buffer" if self.raw.type in _RING else "it has no records")
            )
        return RecordReader(self, callback, None, type_name=type, perf=True, lost_cb=lost_cb)


_PERCPU = frozenset(
    {
        MapType.PERCPU_HASH,
        MapType.PERCPU_ARRAY,
        MapType.LRU_PERCPU_HASH,
        MapType.PERCPU_CGROUP_STORAGE,
    }
)


class _Items(ItemsView[Any, Any]):
    _mapping: TypedMap

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        m = self._mapping
        for k, v in m.raw.raw_entries():
            yield m.decode_key(k), m.decode_value(v)


class _Values(ValuesView[Any]):
    _mapping: TypedMap

    def __iter__(self) -> Iterator[Any]:
        m = self._mapping
        for _, v in m.raw.raw_entries():
            yield m.decode_value(v)


def _typed(m: Any) -> TypedMap:
    return m if isinstance(m, TypedMap) else TypedMap(m)


def open_ring_buffer(
    m: Any, callback: Callable[..., Any], ctx: Any = None, *, type: str | None = None
) -> RecordReader:
    """``m.open_ring_buffer(callback, ctx, type=...)`` for a typed map (``coll["events"]``,
    ``vm["events"]``), or a raw map (its records then come as bytes unless ``type``)."""
    return _typed(m).open_ring_buffer(callback, ctx, type=type)


def open_perf_buffer(
    m: Any,
    callback: Callable[..., Any],
    *,
    lost_cb: Callable[[int], Any] | None = None,
    type: str | None = None,
) -> RecordReader:
    """``m.open_perf_buffer(callback, ...)`` for a typed or raw map (as
    :func:`open_ring_buffer`)."""
    return _typed(m).open_perf_buffer(callback, lost_cb=lost_cb, type=type)
