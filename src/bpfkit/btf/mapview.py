"""How a map's contents look, in every command: the one map renderer.

``bpfkit vm --maps``, ``bpfkit run --maps``, ``bpfkit test-run --maps`` (and the Python
API's text) all pass through :func:`render_map`, so the same map prints the same wherever
it lives.  A map whose object carries BTF is shown by its types (ints, enums by name, char
arrays as strings, structs as fields, arrays as lists: :func:`bpfkit.btf.values.decode_value`);
a map without types is shown as numbers (keys and values of 1, 2, 4 or 8 bytes) or hex.

Rules, for people reading a terminal:

* hash-like maps: one ``key: value`` line per entry, at most ``limit`` of them;
* arrays: every slot ``[i]: value``, but runs of all-zero slots summarised as one line
  (``[3..255]: 0 (253 zero slots)``), so nothing is hidden and nothing floods;
* per-CPU maps: the value of each CPU, and their sum when they are numbers;
* ring and perf buffers: their records, decoded when a record type is known.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bpfkit.btf.btf import Btf
from bpfkit.btf.values import EnumName, Record, decode_value, encode_value
from bpfkit.errors import BtfError
from bpfkit.uapi import MapType

__all__ = ["MapTypes", "format_value", "object_map_types", "render_map"]

_ARRAYS = {
    MapType.ARRAY,
    MapType.PERCPU_ARRAY,
    MapType.PROG_ARRAY,
    MapType.PERF_EVENT_ARRAY,
    MapType.CGROUP_ARRAY,
    MapType.ARRAY_OF_MAPS,
}
_PERCPU = {
    MapType.PERCPU_HASH,
    MapType.PERCPU_ARRAY,
    MapType.LRU_PERCPU_HASH,
    MapType.PERCPU_CGROUP_STORAGE,
}
_RECORDS = {MapType.RINGBUF, MapType.PERF_EVENT_ARRAY, MapType.USER_RINGBUF}


@dataclass(frozen=True, slots=True)
class MapTypes:
    """The BTF types a map's keys and values are read as (ids in ``btf``; None: untyped)."""

    btf: Btf | None = None
    key: int | None = None
    value: int | None = None
    # A global data map's value: its variables as (name, offset, type id).  Compilers leave
    # a DATASEC's offsets to the loader; the ELF symbols know them.
    variables: tuple[tuple[str, int, int], ...] = ()

    def decode_key(self, raw: bytes) -> Any:
        return _decode(self.btf, self.key, raw)

    def decode_value(self, raw: bytes) -> Any:
        if self.variables and self.btf is not None:
            out = Record()
            for name, off, tid in self.variables:
                try:
                    size = self.btf.size_of(tid)
                except BtfError:
                    continue
                if off + size <= len(raw):
                    out[name] = _decode(self.btf, tid, raw[off : off + size])
            return out
        return _decode(self.btf, self.value, raw)

    def encode_key(self, value: Any, size: int) -> bytes:
        """The ``size`` bytes of a key given as a Python value (the inverse of
        :meth:`decode_key`); BtfError if it does not fit the type."""
        return _encode(self.btf, self.key, value, size)

    def encode_value(self, value: Any, size: int) -> bytes:
        """The ``size`` bytes of a value given as a Python value (the inverse of
        :meth:`decode_value`; a global data map's value as a dict of its variables,
        those left out keeping ``base``'s bytes, zeros by default)."""
        if self.variables and self.btf is not None and isinstance(value, dict):
            return self._encode_variables(value, size)
        return _encode(self.btf, self.value, value, size)

    def _encode_variables(self, value: dict[str, Any], size: int) -> bytes:
        assert self.btf is not None
        out = bytearray(size)
        known = {name: (off, tid) for name, off, tid in self.variables}
        for name, v in value.items():
            if name not in known:
                raise BtfError(f"no variable {name!r} (variables: {', '.join(known)})")
            off, tid = known[name]
            data = encode_value(self.btf, tid, v)
            out[off : off + len(data)] = data
        return bytes(out)

    @property
    def record_type(self) -> str | None:
        """The C name of the value (record) type (``struct event``), or None."""
        if self.btf is None or not self.value:
            return None
        return self.btf.format(self.value)


def object_map_types(obj: Any, btf: Btf | None = None) -> dict[str, MapTypes]:
    """The types of each map of ``obj`` (an ObjectSpec) by map name: BTF-defined maps by
    their ``key``/``value`` types, global data maps (``.data``, ``.rodata``, ``.bss``...)
    by their DATASEC.  ``btf``: the object's parsed BTF (parsed here if not given)."""
    if btf is None and getattr(obj, "btf", None):
        from bpfkit.btf.btf import parse_btf

        try:
            btf = parse_btf(obj.btf, big_endian=obj.big_endian)
        except BtfError:
            btf = None
    if btf is None:
        return {}
    out: dict[str, MapTypes] = {}
    for m in getattr(obj, "maps", ()):
        if m.key_type_id or m.value_type_id:
            out[m.name] = MapTypes(btf, m.key_type_id or None, m.value_type_id or None)
    # Ring buffers and perf event arrays: their records' type, where the code shows it.
    records = obj.record_types() if hasattr(obj, "record_types") else {}
    for name, type_id in records.items():
        if name not in out or out[name].value is None:
            out[name] = MapTypes(btf, None, type_id)
    for d in getattr(obj, "data", ()):
        offsets = {sym.name: sym.value for sym in d.symbols}
        for t in btf.find_all(d.name, "DATASEC"):
            variables = []
            for sv in getattr(t, "vars", ()):
                var = btf.type(sv.type)
                off = offsets.get(var.name, sv.offset)
                variables.append((var.name, off, getattr(var, "type", sv.type)))
            variables.sort(key=lambda v: v[1])
            out[d.name] = MapTypes(btf, None, t.id, tuple(variables))
            break
    return out


def _decode(btf: Btf | None, type_id: int | None, raw: bytes) -> Any:
    if btf is not None and type_id:
        try:
            return decode_value(btf, type_id, raw)
        except BtfError:
            pass  # a value that does not fit its type: show the bytes
    if len(raw) in (1, 2, 4, 8):
        return int.from_bytes(raw, "little")
    return bytes(raw)


def _encode(btf: Btf | None, type_id: int | None, value: Any, size: int) -> bytes:
    if btf is not None and type_id:
        return encode_value(btf, type_id, value)
    big = btf is not None and btf.big_endian
    if isinstance(value, bytes | bytearray):
        if len(value) != size:
            raise BtfError(f"cannot store {len(value)} bytes: the size is {size} bytes")
        return bytes(value)
    if isinstance(value, int) and size in (1, 2, 4, 8):
        lo, hi = -(1 << (size * 8 - 1)), (1 << (size * 8)) - 1
        if not lo <= value <= hi:
            raise BtfError(f"cannot store {value}: out of range ({lo}..{hi}, {size} bytes)")
        return (value % (1 << (size * 8))).to_bytes(size, "big" if big else "little")
    raise BtfError(
        f"cannot store {value!r}: without BTF types give bytes of the size ({size})"
        + (" or an int" if size in (1, 2, 4, 8) else "")
    )


def format_value(v: Any) -> str:
    """A decoded value as one line of text: C-like braces for structs, quotes for strings."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, bytes | bytearray):
        return v.hex(" ") if v else "(empty)"
    if isinstance(v, EnumName):
        return str.__str__(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {format_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        return _list_text(list(v))
    return str(v)


def _list_text(items: list[Any]) -> str:
    """A list, with runs of four or more equal items shown once with a count (``0 x60``)."""
    parts: list[str] = []
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[i]:
            j += 1
        if j - i >= 3:
            parts.append(f"{format_value(items[i])} x{j - i + 1}")
        else:
            parts.extend(format_value(x) for x in items[i : j + 1])
        i = j + 1
    return "[" + ", ".join(parts) + "]"


def _zero(raw: bytes | Sequence[bytes]) -> bool:
    if isinstance(raw, bytes | bytearray):
        return not any(raw)
    return all(not any(r) for r in raw)


def _show_value(types: MapTypes, raw: bytes | Sequence[bytes]) -> str:
    if isinstance(raw, bytes | bytearray):
        return format_value(types.decode_value(bytes(raw)))
    vals = [types.decode_value(bytes(r)) for r in raw]
    text = "{" + ", ".join(f"cpu{i}: {format_value(v)}" for i, v in enumerate(vals)) + "}"
    if vals and all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        text += f" (sum {sum(vals)})"
    return text


def render_map(
    name: str,
    map_type: int,
    entries: Iterable[tuple[bytes, bytes | Sequence[bytes]]],
    types: MapTypes | None = None,
    *,
    limit: int = 50,
) -> str:
    """The text of one map: a heading, then its entries by the rules of this module.
    ``entries``: (key bytes, value bytes) pairs, a list of per-CPU value bytes for per-CPU
    maps; for ring/perf buffers, (index, record bytes)."""
    types = types or MapTypes()
    if map_type in _PERCPU:  # the VM runs on one CPU: its values are one CPU's
        entries = ((k, [v] if isinstance(v, bytes | bytearray) else v) for k, v in entries)
    try:
        kind = MapType(map_type).name.lower()
    except ValueError:
        kind = str(map_type)
    items = list(entries)
    if map_type in _RECORDS:
        lines = [f"map {name} ({kind}): {len(items)} records"]
        for _, rec in items[:limit]:
            lines.append(f"  {_show_value(types, rec)}")
        if len(items) > limit:
            lines.append(f"  ... {len(items) - limit} more records")
        return "\n".join(lines)
    if map_type in _ARRAYS:
        lines = [f"map {name} ({kind}): {len(items)} slots"]
        shown = 0
        i = 0
        while i < len(items):
            key, raw = items[i]
            idx = int.from_bytes(key[:4], "little") if len(key) >= 4 else i
            if _zero(raw):
                j = i
                while j + 1 < len(items) and _zero(items[j + 1][1]):
                    j += 1
                if j > i:
                    lkey = items[j][0]
                    last = int.from_bytes(lkey[:4], "little") if len(lkey) >= 4 else j
                    one = raw if isinstance(raw, bytes | bytearray) else raw[0]
                    zero = format_value(types.decode_value(bytes(one)))
                    lines.append(f"  [{idx}..{last}]: {zero} ({j - i + 1} zero slots)")
                    i = j + 1
                    continue
            if shown >= limit:
                lines.append(f"  ... {len(items) - i} more slots")
                break
            lines.append(f"  [{idx}]: {_show_value(types, raw)}")
            shown += 1
            i += 1
        return "\n".join(lines)
    lines = [f"map {name} ({kind}): {len(items)} entries"]
    for key, raw in items[:limit]:
        shown_key = format_value(types.decode_key(bytes(key)))
        lines.append(f"  {shown_key}: {_show_value(types, raw)}")
    if len(items) > limit:
        lines.append(f"  ... {len(items) - limit} more entries")
    return "\n".join(lines)
