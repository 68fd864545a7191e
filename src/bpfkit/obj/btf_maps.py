"""BTF-defined maps: decode each ``.maps`` variable's struct from ``.BTF``, as libbpf does.

A map definition is a struct whose members follow the ``bpf_helpers.h`` macros:

* ``__uint(name, val)`` is ``int (*name)[val]``: a pointer to an array whose length is the
  value (``type``, ``max_entries``, ``map_flags``, ``numa_node``, ``key_size``,
  ``value_size``, ``pinning``, ``map_extra``);
* ``__type(key, T)`` / ``__type(value, T)`` is ``T *key``: the pointee gives the type id
  and the size;
* ``__array(values, struct inner)`` is ``struct inner *values[]``: a zero-length array of
  pointers to the inner map's definition (map-in-map) or to a function prototype (prog
  array); its initial slots come from the relocations of ``.maps``.

The DATASEC of an object file has zero offsets (libbpf fixes them up from the ELF
symbols); offsets here come from the symbols too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bpfkit.btf import types as T
from bpfkit.btf.btf import Btf
from bpfkit.errors import BpfkitError, ObjectError
from bpfkit.obj.spec import MapSpec, Relocation, Symbol
from bpfkit.uapi import MapType

_U32_MAX = 0xFFFF_FFFF
_INT_FIELDS = {"type", "max_entries", "map_flags", "numa_node", "key_size", "value_size", "pinning"}


def decode_btf_maps(
    path: str,
    btf: Btf,
    symbols: Sequence[Symbol],
    relocations: Sequence[Relocation],
) -> list[MapSpec]:
    """One MapSpec per variable of the ``.maps`` DATASEC, in section order.

    ``symbols`` are the ELF symbols of the ``.maps`` section (for offsets) and
    ``relocations`` those applying to it (for initial ``values``).
    """
    secs = btf.find_all(".maps", T.Kind.DATASEC)
    if not secs:
        raise ObjectError(
            f"{path}: section '.maps' has no DATASEC in .BTF; BTF-defined maps need the "
            "object's BTF (compile with clang -g)"
        )
    sec = secs[0]
    assert isinstance(sec, T.Datasec)
    offsets = {s.name: s.value for s in symbols}
    sizes = {s.name: s.size for s in symbols}
    out = []
    for vi in sec.vars:
        var = btf.type(vi.type)
        if not isinstance(var, T.Var):
            raise ObjectError(
                f"{path}: .maps DATASEC entry {vi.type} is a {var.kind.name}, not a variable"
            )
        offset = offsets.get(var.name, vi.offset)
        try:
            spec = _map_def(path, btf, var.name, var.type, offset, inner=False)
        except ObjectError:
            raise
        except BpfkitError as e:
            raise ObjectError(f"{path}: map {var.name!r}: {e}") from e
        if spec.inner is not None or spec.type == MapType.PROG_ARRAY:
            size = sizes.get(var.name) or btf.size_of(var.type)
            spec = _with_init(path, btf, spec, var.type, size, relocations)
        out.append(spec)
    out.sort(key=lambda m: m.offset)
    return out


def _uint(path: str, btf: Btf, map_name: str, m: T.Member) -> int:
    """The value of a ``__uint(name, val)`` member: the length of the pointed-to array."""
    ptr = btf.resolve(m.type)
    arr = btf.resolve(ptr.type) if isinstance(ptr, T.Ptr) else None
    if not isinstance(arr, T.Array):
        raise ObjectError(
            f"{path}: map {map_name!r}: field {m.name!r} is {btf.format(m.type)}, not the "
            "__uint(name, value) form (a pointer to an array)"
        )
    return arr.nelems


def _map_def(path: str, btf: Btf, name: str, type_id: int, offset: int, inner: bool) -> MapSpec:
    st = btf.resolve(type_id)
    if not isinstance(st, T.Struct) or isinstance(st, T.Union):
        raise ObjectError(
            f"{path}: map {name!r}: its definition is {btf.format(type_id)}, not a struct"
        )
    ints: dict[str, int] = {}
    extra: dict[str, int] = {}
    key_id = value_id = None
    key_size = value_size = None
    inner_spec: MapSpec | None = None
    for i, m in enumerate(st.members):
        if m.name in _INT_FIELDS:
            ints[m.name] = _uint(path, btf, name, m)
        elif m.name == "map_extra":
            extra["map_extra"] = _uint(path, btf, name, m)
        elif m.name in ("key", "value"):
            ptr = btf.resolve(m.type)
            if not isinstance(ptr, T.Ptr):
                raise ObjectError(
                    f"{path}: map {name!r}: {m.name} is {btf.format(m.type)}, expected a "
                    f"pointer (__type({m.name}, T))"
                )
            size = btf.size_of(ptr.type)
            if size > _U32_MAX:  # libbpf: "can't determine key/value size" (E2BIG)
                raise ObjectError(
                    f"{path}: map {name!r}: its {m.name} type {btf.format(ptr.type)} is "
                    f"{size} bytes, more than a map's {m.name}_size can hold (u32): "
                    "libbpf refuses it too; use a smaller type"
                )
            if m.name == "key":
                key_id, key_size = ptr.type, size
            else:
                value_id, value_size = ptr.type, size
        elif m.name == "values":
            if inner:
                raise ObjectError(f"{path}: map {name!r}: an inner map cannot have 'values'")
            if i != len(st.members) - 1:
                raise ObjectError(f"{path}: map {name!r}: 'values' must be the last field")
            inner_spec = _values(path, btf, name, m, ints.get("type"), offset)
        else:
            # Unknown fields: libbpf rejects them in strict mode; keep __uint ones for the
            # loader to decide, ignore the rest.
            try:
                extra[m.name] = _uint(path, btf, name, m)
            except ObjectError:
                pass
    for what, sized, explicit in (
        ("key", key_size, ints.get("key_size")),
        ("value", value_size, ints.get("value_size")),
    ):
        if sized is not None and explicit is not None and sized != explicit:
            raise ObjectError(
                f"{path}: map {name!r}: {what}_size {explicit} conflicts with the size of its "
                f"{what} type ({sized})"
            )
    if key_size is None:
        key_size = ints.get("key_size")
    if value_size is None:
        value_size = ints.get("value_size")
    if inner_spec is not None and value_size is None:
        value_size = 4  # map-in-map values are map fds (libbpf sets 4 as well)
    if ints.get("type") == MapType.PROG_ARRAY and value_size is None:
        value_size = 4
    return MapSpec(
        name=name,
        section=".maps",
        offset=offset,
        type=ints.get("type"),
        key_size=key_size,
        value_size=value_size,
        max_entries=ints.get("max_entries"),
        flags=ints.get("map_flags", 0),
        numa_node=ints.get("numa_node"),
        pinning=ints.get("pinning", 0),
        key_type_id=key_id,
        value_type_id=value_id,
        inner=inner_spec,
        extra=extra,
    )


def _values(
    path: str, btf: Btf, name: str, m: T.Member, map_type: int | None, offset: int
) -> MapSpec | None:
    """The inner map template of ``__array(values, ...)`` (None for a prog array)."""
    arr = btf.resolve(m.type)
    if not isinstance(arr, T.Array) or arr.nelems != 0:
        raise ObjectError(
            f"{path}: map {name!r}: 'values' is {btf.format(m.type)}, expected a "
            "zero-length array of pointers (__array(values, ...))"
        )
    ptr = btf.resolve(arr.type)
    if not isinstance(ptr, T.Ptr):
        raise ObjectError(f"{path}: map {name!r}: 'values' elements are not pointers")
    target = btf.resolve(ptr.type)
    if map_type == MapType.PROG_ARRAY:
        if not isinstance(target, T.FuncProto):
            raise ObjectError(f"{path}: map {name!r}: prog array 'values' must point to functions")
        return None
    if map_type not in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
        raise ObjectError(
            f"{path}: map {name!r}: 'values' is only for map-in-map and prog array maps "
            f"(type is {map_type}; set __uint(type, ...) before __array(values, ...))"
        )
    return _map_def(path, btf, f"{name}.inner", target.id, offset, inner=True)


def _with_init(
    path: str,
    btf: Btf,
    spec: MapSpec,
    type_id: int,
    size: int,
    relocations: Sequence[Relocation],
) -> MapSpec:
    """Fill ``init_values`` from the ``.maps`` relocations inside the ``values`` array.

    ``size`` is the variable's ELF symbol size: the struct plus the initialised slots.
    """
    st = btf.resolve(type_id)
    assert isinstance(st, T.Struct)
    values = st.member("values")
    if values is None:
        return spec  # a prog array without __array(values, ...): nothing to initialise
    start = spec.offset + values.bit_offset // 8
    slots = []
    for r in relocations:
        if not spec.offset <= r.offset < spec.offset + size:
            continue
        if r.offset < start or (r.offset - start) % 8:
            raise ObjectError(
                f"{path}: map {spec.name!r}: relocation at .maps offset {r.offset} is not on "
                "a slot of its 'values' array"
            )
        slots.append(((r.offset - start) // 8, r.symbol))
    return replace(spec, init_values=tuple(sorted(slots))) if slots else spec
