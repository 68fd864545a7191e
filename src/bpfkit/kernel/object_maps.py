"""The maps of an object: created from its map definitions and global data sections.

API (used by :mod:`bpfkit.kernel.collection`)::

    maker = ObjectMaps(obj, btf_fd=None, pin_maps_dir=None)
    maker.create()                    # legacy `maps` and BTF `.maps` definitions
    maker.create_data()               # .data/.rodata/.bss...: one-element array maps
    maker.fill_initial_values(progs)  # prog arrays and maps of maps with `values`
    maker.maps (name -> Map), maker.map_fds, maker.data_fds, maker.notes

As libbpf does: perf event arrays get one slot per possible CPU, ring buffers are rounded
up to a power-of-two number of pages, ``LIBBPF_PIN_BY_NAME`` maps are reused from (or
pinned in) ``pin_maps_dir`` (default /sys/fs/bpf), a data section's map has the section's
DATASEC as its BTF value type (key type 0), the map types in ``NO_BTF_TYPES`` get no
BTF type ids, a map the kernel refuses with BTF type ids is
created again without them (with a note), and ``.rodata`` is frozen once written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from bpfkit.errors import KernelError, ObjectError
from bpfkit.kernel import pins
from bpfkit.kernel.maps import Map, create_map, possible_cpus
from bpfkit.kernel.program import Program
from bpfkit.obj.legacy_maps import loadable_problem
from bpfkit.obj.spec import DataSpec, MapSpec, ObjectSpec
from bpfkit.syscalls import attrs
from bpfkit.uapi import MapType

PIN_BY_NAME = 1

# Map types libbpf creates without BTF type ids even when the object gives them (the
# kernel refuses or ignores a BTF value type for them).
NO_BTF_TYPES = frozenset(
    {
        MapType.PERF_EVENT_ARRAY,
        MapType.CGROUP_ARRAY,
        MapType.STACK_TRACE,
        MapType.ARRAY_OF_MAPS,
        MapType.HASH_OF_MAPS,
        MapType.DEVMAP,
        MapType.DEVMAP_HASH,
        MapType.CPUMAP,
        MapType.XSKMAP,
        MapType.SOCKMAP,
        MapType.SOCKHASH,
        MapType.QUEUE,
        MapType.STACK,
        MapType.ARENA,
    }
)


def object_prefix(obj: ObjectSpec) -> str:
    base = os.path.basename(obj.path).split(".")[0] or "obj"
    return "".join(c if c.isalnum() or c == "_" else "_" for c in base)


def data_map_name(obj: ObjectSpec, section: str) -> str:
    # libbpf: a prefix of the object name, then the section name, within 15 bytes.
    prefix = object_prefix(obj)[: max(0, 15 - len(section))]
    return (prefix + section)[:15]


class ObjectMaps:
    """Creates and owns (until handed over) the maps of one object."""

    def __init__(
        self, obj: ObjectSpec, *, btf_fd: int | None = None, pin_maps_dir: str | None = None
    ) -> None:
        self.obj = obj
        self.btf_fd = btf_fd
        self.pin_maps_dir = pin_maps_dir
        self.maps: dict[str, Map] = {}
        self.map_fds: dict[str, int] = {}
        self.data_fds: dict[str, int] = {}
        self.notes: list[str] = []

    def close(self) -> None:
        """Close every map created so far."""
        for m in self.maps.values():
            m.close()

    def create(self) -> None:
        """Create the maps the object defines (legacy and BTF)."""
        legacy = [m for m in self.obj.maps if m.legacy]
        for spec in self.obj.maps:  # before creating (and pinning) any map
            problem = loadable_problem(self.obj.path, spec, list(self.obj.symbols))
            if problem:
                raise ObjectError(problem)
            if spec.pinning not in (0, PIN_BY_NAME):
                raise ObjectError(
                    f"{self.obj.path}: map {spec.name!r}: pinning {spec.pinning} is invalid "
                    "(0: none, 1: LIBBPF_PIN_BY_NAME; libbpf refuses the object too)"
                )
        for spec in self.obj.maps:
            if spec.name in self.maps:
                continue
            inner_fd: int | None = None
            inner: Map | None = None
            if spec.inner is not None:
                inner = self._create(spec.inner, f"{spec.name}.inner", None)
            elif (
                spec.legacy
                and spec.inner_map_idx
                and spec.type
                in (
                    MapType.ARRAY_OF_MAPS,
                    MapType.HASH_OF_MAPS,
                )
            ):
                if spec.inner_map_idx >= len(legacy):
                    raise ObjectError(
                        f"{self.obj.path}: map {spec.name!r}: inner_map_idx "
                        f"{spec.inner_map_idx} is out of range"
                    )
                target = legacy[spec.inner_map_idx]
                self._ensure(target)
                inner_fd = self.maps[target.name].fd
            try:
                if inner is not None:
                    inner_fd = inner.fd
                self._ensure(spec, inner_fd)
            finally:
                if inner is not None:
                    inner.close()

    def _ensure(self, spec: MapSpec, inner_fd: int | None = None) -> None:
        if spec.name in self.maps:
            return
        m = self._create(spec, spec.name, inner_fd)
        self.maps[spec.name] = m
        self.map_fds[spec.name] = m.fd

    def _create(self, spec: MapSpec, name: str, inner_fd: int | None) -> Map:
        if spec.type is None and spec.section == ".maps" and not self.obj.btf:
            raise ObjectError(
                f"{self.obj.path}: map {spec.name!r} is BTF-defined (section '.maps') but the "
                "object has no .BTF section to define it: compile with clang -g"
            )
        if spec.type is None:
            raise ObjectError(
                f"{self.obj.path}: map {spec.name!r} in {spec.section!r}: its definition "
                "could not be read (no type)"
            )
        mtype = spec.type
        key_size = spec.key_size or 0
        value_size = spec.value_size or 0
        max_entries = spec.max_entries or 0
        if mtype == MapType.PERF_EVENT_ARRAY:
            # libbpf: the fd arrays hold ints; one slot per possible CPU unless given.
            key_size, value_size = key_size or 4, value_size or 4
            max_entries = max_entries or possible_cpus()
        if mtype in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS, MapType.PROG_ARRAY):
            value_size = value_size or 4
        if mtype in (MapType.RINGBUF, MapType.USER_RINGBUF):
            # The kernel wants a power-of-two multiple of the page size; libbpf rounds up.
            page = os.sysconf("SC_PAGE_SIZE")
            size = page
            while size < max_entries:
                size *= 2
            max_entries = size
        if mtype == MapType.STRUCT_OPS:
            raise ObjectError(
                f"{self.obj.path}: map {spec.name!r}: struct_ops maps are not supported yet"
            )
        pin_path = None
        if spec.pinning == PIN_BY_NAME:
            root = self.pin_maps_dir or pins.DEFAULT_BPFFS
            pins.ensure_bpffs() if root.startswith(pins.DEFAULT_BPFFS) else None
            pin_path = os.path.join(root, spec.name)
            if os.path.exists(pin_path):
                existing = Map.from_pin(pin_path)
                if (existing.type, existing.key_size, existing.value_size) != (
                    mtype,
                    key_size,
                    value_size,
                ):
                    existing.close()
                    raise ObjectError(
                        f"{self.obj.path}: map {spec.name!r}: the map pinned at {pin_path} "
                        "has a different type or key/value size; remove the pin"
                    )
                self.notes.append(f"map {spec.name!r}: reusing the map pinned at {pin_path}")
                return existing
        kwargs = dict(
            flags=spec.flags,
            name=name,
            inner_map_fd=inner_fd,
            numa_node=spec.numa_node if spec.numa_node else None,
            map_extra=spec.extra.get("map_extra", 0),
        )
        typed = mtype not in NO_BTF_TYPES
        m = self._create_typed(
            name,
            (spec.key_type_id or 0, spec.value_type_id or 0) if typed else (0, 0),
            mtype,
            key_size,
            value_size,
            max_entries,
            **kwargs,  # type: ignore[arg-type]
        )
        if pin_path is not None:
            try:
                m.pin(pin_path)
            except BaseException:
                m.close()
                raise
        return m

    def _create_typed(
        self, what: str, type_ids: tuple[int, int], *args: int, **kwargs: int | str | None
    ) -> Map:
        """``create_map(*args, **kwargs)`` with the BTF ``type_ids`` (key, value) if the
        object's BTF is loaded and they are set; as libbpf, a map the kernel refuses with
        them is created again without (with a note)."""
        key_id, value_id = type_ids
        if self.btf_fd is not None and (key_id or value_id):
            try:
                return create_map(
                    *args,
                    btf_fd=self.btf_fd,
                    btf_key_type_id=key_id,
                    btf_value_type_id=value_id,
                    **kwargs,  # type: ignore[arg-type]
                )
            except KernelError as e:
                self.notes.append(f"map {what!r}: {e}; created again without BTF")
        return create_map(*args, **kwargs)  # type: ignore[arg-type]

    def create_data(self) -> None:
        """One array map per global data section, with its initial contents."""
        for d in self.obj.data:
            self._data_map(d)

    def _data_map(self, d: DataSpec) -> None:
        flags = attrs.F_MMAPABLE | (attrs.F_RDONLY_PROG if d.readonly else 0)
        m = self._create_typed(
            d.name,
            (0, d.value_type_id),
            MapType.ARRAY,
            4,
            d.size,
            1,
            flags=flags,
            name=data_map_name(self.obj, d.name),
        )
        self.maps[d.name] = m
        self.data_fds[d.name] = m.fd
        if any(d.data):
            m[0] = d.data.ljust(d.size, b"\0")
        if d.readonly:
            m.freeze()

    def fill_initial_values(self, programs: Mapping[str, Program]) -> None:
        """Fill prog arrays and maps of maps declared with initial ``values``."""
        for spec in self.obj.maps:
            slots = getattr(spec, "init_values", ())
            m = self.maps.get(spec.name)
            if not slots or m is None:
                continue
            for slot, symbol in slots:
                if spec.type == MapType.PROG_ARRAY:
                    prog = programs.get(symbol)
                    if prog is None:
                        self.notes.append(
                            f"map {spec.name!r}[{slot}]: program {symbol!r} was not loaded; "
                            "slot left empty"
                        )
                        continue
                    m[slot] = prog.fd
                else:
                    inner = self.maps.get(symbol)
                    if inner is None:
                        raise ObjectError(
                            f"{self.obj.path}: map {spec.name!r}[{slot}]: no map {symbol!r}"
                        )
                    m[slot] = inner.fd
