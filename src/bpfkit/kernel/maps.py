"""BPF maps as Python mappings.

API::

    create_map(map_type, key_size, value_size, max_entries, *, flags=0, name="",
               btf_fd=None, btf_key_type_id=0, btf_value_type_id=0, inner_map_fd=None,
               numa_node=None, map_extra=0, key=None, value=None) -> Map
    Map: MutableMapping  (m[k], m[k] = v, del m[k], k in m, len(m), keys/values/items)
         .fd, .close(), with-block, .freeze(), .pin(path), .info(), .put(k, v, flags),
         .typed(key=int, value=MyStruct) -> a view of the same map with other codecs
         .raw_get/raw_put/raw_delete/raw_entries/open_records: bytes, for
         bpfkit.btf.typedmap.TypedMap (Collection["name"]: the map typed by its BTF)
         .typed_by_btf() -> TypedMap typed by the BTF the kernel holds for the map
         Map.from_pin(path), Map.from_fd(Fd), Map.from_id(id)

Keys and values go through a :class:`Codec`.  ``key=`` / ``value=`` accept ``int`` (native
byte order, unsigned; ``codec.Int(size, signed=True)`` for signed), ``bytes``, a ctypes type
(``ctypes.c_uint32``, a ``ctypes.Structure`` subclass) or a codec.  The default codec
reads ``bytes`` and writes bytes, ints or ctypes instances.  Per-CPU maps read a list with
one value per possible CPU and write a list or one value (copied to every CPU).
"""

from __future__ import annotations

import ctypes
import errno
import sys
from collections.abc import ItemsView, Iterator, MutableMapping, ValuesView
from functools import cache

from bpfkit.errors import KernelError
from bpfkit.kernel import pins
from bpfkit.kernel.program import kernel_name
from bpfkit.syscalls import Cmd, Fd, attrs, bpf, bpf_errno
from bpfkit.syscalls.causes import error
from bpfkit.syscalls.fd import FdOwner
from bpfkit.uapi import MapType
from bpfkit.uapi.names import type_name, type_number

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

    from bpfkit.btf.typedmap import TypedMap
    from bpfkit.events.polled import PolledReader
    from bpfkit.kernel.info import MapInfo

PERCPU_TYPES = frozenset(
    {
        MapType.PERCPU_HASH,
        MapType.PERCPU_ARRAY,
        MapType.LRU_PERCPU_HASH,
        MapType.PERCPU_CGROUP_STORAGE,
    }
)
# Map types whose every index exists (lookups never miss, deletes are refused).
ARRAY_TYPES = frozenset({MapType.ARRAY, MapType.PERCPU_ARRAY})


def map_type_number(map_type: int | str) -> int:
    """The ``enum bpf_map_type`` number of a name (``"hash"``, ``"BPF_MAP_TYPE_ARRAY"``)."""
    return type_number(MapType, map_type, "BPF_MAP_TYPE_", "map type")


@cache
def possible_cpus() -> int:
    """Number of possible CPUs (the kernel sizes per-CPU values by it)."""
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            text = f.read().strip()
    except OSError:
        import os

        return os.cpu_count() or 1
    n = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return n


class Codec:
    """Turns Python values into the fixed-size bytes of a key or value, and back.

    The base codec reads ``bytes``; it writes ``bytes`` of the exact size, ``int``
    (native byte order) or anything ``bytes()`` accepts of the right size (ctypes objects).
    """

    def __init__(self, size: int) -> None:
        self.size = size

    def encode(self, value: Any) -> bytes:
        """The bytes for ``value``."""
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int):
            try:
                return value.to_bytes(self.size, sys.byteorder, signed=value < 0)
            except OverflowError:
                raise ValueError(f"{value} does not fit in {self.size} bytes") from None
        data = bytes(value)
        if len(data) != self.size:
            raise ValueError(f"expected {self.size} bytes, got {len(data)}")
        return data

    def decode(self, data: bytes) -> Any:
        """The Python value for ``data``."""
        return data


class Int(Codec):
    """Integers in native byte order."""

    def __init__(self, size: int, signed: bool = False) -> None:
        super().__init__(size)
        self.signed = signed

    def decode(self, data: bytes) -> int:
        return int.from_bytes(data, sys.byteorder, signed=self.signed)


class CType(Codec):
    """A ctypes type (``c_uint32``, a Structure): reads instances, writes instances or bytes."""

    def __init__(self, ctype: type[Any], size: int) -> None:
        if ctypes.sizeof(ctype) != size:
            raise ValueError(
                f"{ctype.__name__} is {ctypes.sizeof(ctype)} bytes, the map has {size}"
            )
        super().__init__(size)
        self.ctype = ctype

    def encode(self, value: Any) -> bytes:
        if isinstance(value, int) and issubclass(self.ctype, ctypes._SimpleCData):
            return bytes(self.ctype(value))
        return super().encode(value)

    def decode(self, data: bytes) -> Any:
        obj = self.ctype.from_buffer_copy(data)
        if isinstance(obj, ctypes._SimpleCData):
            return obj.value
        return obj


def make_codec(spec: Any, size: int) -> Codec:
    """A codec from ``None``/``bytes`` (raw), ``int``, a ctypes type or a :class:`Codec`."""
    if isinstance(spec, Codec):
        if spec.size != size:
            raise ValueError(f"codec of {spec.size} bytes for a {size}-byte field")
        return spec
    if spec is None or spec is bytes:
        return Codec(size)
    if spec is int:
        return Int(size)
    if isinstance(spec, type) and issubclass(
        spec, (ctypes._SimpleCData, ctypes.Structure, ctypes.Union, ctypes.Array)
    ):
        return CType(spec, size)
    raise TypeError(f"cannot use {spec!r} as a map key/value type")


class Map(FdOwner, MutableMapping["Any", "Any"]):  # strings: typing is not imported
    """A live BPF map, read and written as a Python mapping."""

    def __init__(
        self,
        fd: Fd,
        *,
        map_type: int,
        key_size: int,
        value_size: int,
        max_entries: int,
        flags: int = 0,
        name: str = "",
        key: Any = None,
        value: Any = None,
    ) -> None:
        self._fd = fd
        self._owned = True  # False for views made by typed()
        self.type = map_type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.flags = flags
        self.name = name
        self.percpu = map_type in PERCPU_TYPES
        self.key_codec = make_codec(key, key_size)
        self.value_codec = make_codec(value, value_size)
        # Per-CPU values are rounded up to 8 bytes each, one per possible CPU.
        self._slot = (value_size + 7) & ~7 if self.percpu else value_size
        self._vbuf_size = self._slot * (possible_cpus() if self.percpu else 1)

    # -- ownership ---------------------------------------------------------------------
    @property
    def type_name(self) -> str:
        """``hash``, ``array``, ..."""
        return type_name(MapType, self.type)

    def close(self) -> None:
        """Close the descriptor (a view from :meth:`typed` leaves it to its owner)."""
        if self._owned:
            self._fd.close()

    def __repr__(self) -> str:
        return f"Map({self.name!r}, {self.type_name}, {self._fd!r})"

    def typed(self, key: Any = None, value: Any = None) -> Map:
        """A view of this map (same descriptor, not owned) with other key/value codecs."""
        view = Map.__new__(Map)
        view.__dict__.update(self.__dict__)
        view._owned = False
        view.key_codec = make_codec(key, self.key_size)
        view.value_codec = make_codec(value, self.value_size)
        return view

    # -- construction from existing objects -----------------------------------------------
    @classmethod
    def from_fd(cls, fd: Fd, *, key: Any = None, value: Any = None) -> Map:
        """Wrap an owned map descriptor (its shape is read from the kernel)."""
        from bpfkit.kernel.info import map_info

        info = map_info(fd.fd)
        return cls(
            fd,
            map_type=info.type,
            key_size=info.key_size,
            value_size=info.value_size,
            max_entries=info.max_entries,
            flags=info.flags,
            name=info.name,
            key=key,
            value=value,
        )

    @classmethod
    def from_pin(cls, path: str, *, key: Any = None, value: Any = None) -> Map:
        """Open the map pinned at ``path``."""
        return cls.from_fd(pins.get(path), key=key, value=value)

    @classmethod
    def from_id(cls, map_id: int, *, key: Any = None, value: Any = None) -> Map:
        """Open the map with kernel id ``map_id``."""
        attr = attrs.GetIdAttr(start_id=map_id)
        fd = Fd(bpf(Cmd.MAP_GET_FD_BY_ID, attr, f"opening map id {map_id}"), "map")
        return cls.from_fd(fd, key=key, value=value)

    # -- kernel operations -----------------------------------------------------------------
    def info(self) -> MapInfo:
        """The kernel's view of the map (id, type, sizes, flags)."""
        from bpfkit.kernel.info import map_info

        return map_info(self.fd)

    def freeze(self) -> None:
        """Make the map read-only from user space (BPF_MAP_FREEZE)."""
        bpf(Cmd.MAP_FREEZE, attrs.MapFdAttr(map_fd=self.fd), f"freezing map {self.name!r}")

    def pin(self, path: str) -> None:
        """Pin the map in bpffs at ``path``."""
        pins.pin(self.fd, path)

    def _key(self, key: Any) -> ctypes.Array[ctypes.c_char]:
        data = self.key_codec.encode(key)
        return ctypes.create_string_buffer(data, max(len(data), 1))

    def _encode_value(self, value: Any) -> bytes:
        if not self.percpu:
            return self.value_codec.encode(value)
        n = possible_cpus()
        values = list(value) if isinstance(value, (list, tuple)) else [value] * n
        if len(values) != n:
            raise ValueError(f"per-CPU map {self.name!r} needs {n} values, got {len(values)}")
        pad = bytes(self._slot - self.value_size)
        return b"".join(self.value_codec.encode(v) + pad for v in values)

    def _decode_value(self, data: bytes) -> Any:
        if not self.percpu:
            return self.value_codec.decode(data)
        return [
            self.value_codec.decode(data[i : i + self.value_size])
            for i in range(0, len(data), self._slot)
        ]

    def lookup(self, key: Any) -> bytes | None:
        """The raw value bytes for ``key``, or None if absent."""
        kbuf = self._key(key)
        vbuf = ctypes.create_string_buffer(max(self._vbuf_size, 1))
        attr = attrs.MapElemAttr(
            map_fd=self.fd, key=ctypes.addressof(kbuf), value=ctypes.addressof(vbuf)
        )
        ret, err = bpf_errno(Cmd.MAP_LOOKUP_ELEM, attr)
        if ret < 0:
            if err == errno.ENOENT:
                return None
            raise error(Cmd.MAP_LOOKUP_ELEM, err, f"reading map {self.name!r}")
        return vbuf.raw[: self._vbuf_size]

    def put(self, key: Any, value: Any, flags: int = attrs.ANY) -> None:
        """Write ``value`` at ``key`` (``flags``: ANY, NOEXIST, EXIST, F_LOCK)."""
        self._update(self._key(key), self._encode_value(value), flags)

    def _update(self, kbuf: ctypes.Array[ctypes.c_char], data: bytes, flags: int) -> None:
        vbuf = ctypes.create_string_buffer(data, max(len(data), 1))
        attr = attrs.MapElemAttr(
            map_fd=self.fd, key=ctypes.addressof(kbuf), value=ctypes.addressof(vbuf), flags=flags
        )
        bpf(Cmd.MAP_UPDATE_ELEM, attr, f"writing map {self.name!r}")

    def delete(self, key: Any) -> bool:
        """Delete ``key``; False if it was absent."""
        kbuf = self._key(key)
        attr = attrs.MapElemAttr(map_fd=self.fd, key=ctypes.addressof(kbuf))
        ret, err = bpf_errno(Cmd.MAP_DELETE_ELEM, attr)
        if ret < 0:
            if err == errno.ENOENT:
                return False
            raise error(Cmd.MAP_DELETE_ELEM, err, f"deleting from map {self.name!r}")
        return True

    def raw_keys(self) -> Iterator[bytes]:
        """Every key as bytes (BPF_MAP_GET_NEXT_KEY from the start)."""
        size = max(self.key_size, 1)
        cur = ctypes.create_string_buffer(size)
        nxt = ctypes.create_string_buffer(size)
        first = True
        while True:
            attr = attrs.MapElemAttr(
                map_fd=self.fd,
                key=0 if first else ctypes.addressof(cur),
                value=ctypes.addressof(nxt),
            )
            ret, err = bpf_errno(Cmd.MAP_GET_NEXT_KEY, attr)
            if ret < 0:
                if err == errno.ENOENT:
                    return
                raise error(Cmd.MAP_GET_NEXT_KEY, err, f"iterating map {self.name!r}")
            key = nxt.raw[: self.key_size]
            yield key
            ctypes.memmove(cur, nxt, size)
            first = False

    # -- bytes, for the typed view (bpfkit.btf.typedmap) --------------------------------
    @property
    def ncpus(self) -> int:
        """Values per key: the possible CPUs for a per-CPU map, else 1."""
        return possible_cpus() if self.percpu else 1

    def _split(self, data: bytes) -> bytes | list[bytes]:
        if not self.percpu:
            return data
        return [data[i : i + self.value_size] for i in range(0, len(data), self._slot)]

    def raw_get(self, key: bytes) -> bytes | list[bytes] | None:
        """The value bytes at ``key`` (a list per CPU for a per-CPU map), None if absent."""
        data = self.lookup(key)
        return None if data is None else self._split(data)

    def raw_put(self, key: bytes, value: bytes | list[bytes], flags: int) -> None:
        """Write value bytes (one per CPU for a per-CPU map) at ``key``."""
        if isinstance(value, list):
            pad = bytes(self._slot - self.value_size)
            data = b"".join(v + pad for v in value)
        else:
            data = value
        if len(data) != self._vbuf_size or len(key) != self.key_size:
            raise KernelError(
                f"map {self.name!r}: {len(key)}-byte key and {len(data)}-byte value given; "
                f"it takes {self.key_size} and {self._vbuf_size}"
            )
        self._update(ctypes.create_string_buffer(key, max(len(key), 1)), data, flags)

    def raw_delete(self, key: bytes) -> bool:
        """Delete ``key`` (bytes); False if it was absent."""
        return self.delete(key)

    def raw_entries(self) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        """(key bytes, value bytes) pairs, values split per CPU for a per-CPU map."""
        for k, v in self.items_raw():
            yield k, self._split(v)

    def open_records(self) -> PolledReader[Any]:
        """A reader of this ring buffer's or perf event array's records (mmap + epoll;
        close it)."""
        if self.type == MapType.RINGBUF:
            from bpfkit.events.ringbuf import RingBufReader

            return RingBufReader(self.fd, self.max_entries)
        if self.type == MapType.PERF_EVENT_ARRAY:
            from bpfkit.events.perf import PerfBufferReader

            return PerfBufferReader(self.fd)
        raise KernelError(f"map {self.name!r} ({self.type_name}) has no records to read")

    def typed_by_btf(self) -> TypedMap:
        """This map as Python values, typed by the BTF the kernel holds for it (ints and
        bytes when it has none); see :mod:`bpfkit.btf.typedmap`."""
        from bpfkit.btf.typedmap import TypedMap
        from bpfkit.kernel.show import map_types

        return TypedMap(self, map_types(self.info()))

    # -- the mapping protocol ---------------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        data = self.lookup(key)
        if data is None:
            raise KeyError(key)
        return self._decode_value(data)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.put(key, value)

    def __delitem__(self, key: Any) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        try:
            return self.lookup(key) is not None
        except (ValueError, TypeError):
            return False  # a key this map's codec cannot encode is not in it

    def items(self) -> ItemsView[Any, Any]:
        """(key, value) pairs; keys a running program deletes meanwhile are skipped."""
        return _Items(self)

    def values(self) -> ValuesView[Any]:
        """Values; keys a running program deletes meanwhile are skipped."""
        return _Values(self)

    def __iter__(self) -> Iterator[Any]:
        for raw in self.raw_keys():
            yield self.key_codec.decode(raw)

    def __len__(self) -> int:
        return sum(1 for _ in self.raw_keys())

    def items_raw(self) -> Iterator[tuple[bytes, bytes]]:
        """(key bytes, value bytes) pairs, skipping keys deleted meanwhile."""
        for k in self.raw_keys():
            v = self.lookup(k)
            if v is not None:
                yield k, v


class _Items(ItemsView["Any", "Any"]):
    """A map's items, robust to keys disappearing while iterating (a live map)."""

    _mapping: Map

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        m = self._mapping
        for raw, value in m.items_raw():
            yield m.key_codec.decode(raw), m._decode_value(value)


class _Values(ValuesView["Any"]):
    """A map's values, robust to keys disappearing while iterating (a live map)."""

    _mapping: Map

    def __iter__(self) -> Iterator[Any]:
        m = self._mapping
        for _, value in m.items_raw():
            yield m._decode_value(value)


def create_map(
    map_type: int | str,
    key_size: int,
    value_size: int,
    max_entries: int,
    *,
    flags: int = 0,
    name: str = "",
    btf_fd: int | None = None,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
    btf_vmlinux_value_type_id: int = 0,
    inner_map_fd: int | None = None,
    numa_node: int | None = None,
    map_extra: int = 0,
    key: Any = None,
    value: Any = None,
) -> Map:
    """Create a map (BPF_MAP_CREATE); ``key``/``value`` choose codecs (see the module)."""
    mtype = map_type_number(map_type)
    attr = attrs.MapCreateAttr(
        map_type=mtype,
        key_size=key_size,
        value_size=value_size,
        max_entries=max_entries,
        map_flags=flags,
        map_name=kernel_name(name),
        map_extra=map_extra,
    )
    if inner_map_fd is not None:
        attr.inner_map_fd = inner_map_fd
    if numa_node is not None:
        attr.numa_node = numa_node
        attr.map_flags |= 1 << 2  # BPF_F_NUMA_NODE
    if btf_fd is not None and (btf_key_type_id or btf_value_type_id or btf_vmlinux_value_type_id):
        attr.btf_fd = btf_fd
        attr.btf_key_type_id = btf_key_type_id
        attr.btf_value_type_id = btf_value_type_id
        attr.btf_vmlinux_value_type_id = btf_vmlinux_value_type_id
    what = f"creating map {name!r}" if name else "creating a map"
    what += (
        f" ({type_name(MapType, mtype)}, key {key_size}, value {value_size}, {max_entries} entries)"
    )
    fd = Fd(bpf(Cmd.MAP_CREATE, attr, what), "map")
    return Map(
        fd,
        map_type=mtype,
        key_size=key_size,
        value_size=value_size,
        max_entries=max_entries,
        flags=attr.map_flags,
        name=name,
        key=key,
        value=value,
    )
