"""Loaded programs and maps as ``bpftool ... show`` and ``bpftool map dump`` present them:
the same JSON keys (``bytes_xlated``, ``bytes_memlock``, ``formatted``...) and the same text
shape, so a bpftool user (and a script written for bpftool's ``--json``) reads bpfkit's.
(``prog dump xlated`` is :mod:`bpfkit.kernel.xlated`, ``prog dump jited``
:mod:`bpfkit.kernel.jited`.)

API::

    prog_record(fd) -> dict                # bpftool -j prog show
    prog_header(fd) -> dict; prog_header_text(rec) -> str   # its first keys / first line
    map_record(fd) -> dict                 # bpftool -j map show
    map_text(record) -> str                # bpftool map show
    link_record(fd) -> dict                # bpftool -j link show
    link_text(record) -> str               # bpftool link show
    map_types(info) -> MapTypes            # the map's key/value types from the kernel's BTF
    entry_record(key, value, types, percpu) -> dict   # one element of bpftool -j map dump
    hex_bytes(data) -> list[str]           # ["0x01", "0x00", ...]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bpfkit.errors import BpfkitError
from bpfkit.kernel.info import (
    MapInfo,
    btf_bytes,
    fdinfo,
    link_info,
    map_info,
    prog_full_name,
    prog_info,
)
from bpfkit.uapi import MapType, ProgType
from bpfkit.uapi.names import type_name

if TYPE_CHECKING:
    from bpfkit.btf.mapview import MapTypes


def _wallclock(load_time_ns: int) -> int:
    """Seconds since the epoch of a time given since boot (bpftool's arithmetic)."""
    real = time.clock_gettime_ns(time.CLOCK_REALTIME)
    boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    return (real - boot + load_time_ns) // 1_000_000_000


def prog_header(fd: int) -> dict[str, Any]:
    """The first keys of ``bpftool -j prog show`` (id, type, name, tag, gpl_compatible, run
    counts): also the header of each program ``prog dump`` lists when a name matches
    several."""
    i = prog_info(fd)
    rec: dict[str, Any] = {"id": i.id, "type": i.type_name}
    if i.name:
        rec["name"] = prog_full_name(fd)
    rec["tag"] = i.tag
    rec["gpl_compatible"] = i.gpl_compatible
    if i.run_time_ns:
        rec["run_time_ns"] = i.run_time_ns
        rec["run_cnt"] = i.run_cnt
    if i.recursion_misses:
        rec["recursion_misses"] = i.recursion_misses
    return rec


def prog_header_text(rec: dict[str, Any]) -> str:
    """bpftool's first line of a program (``prog show``; ``prog dump`` of several)."""
    name = f"name {rec['name']}  " if "name" in rec else ""
    text = f"{rec['id']}: {rec['type']}  {name}tag {rec['tag']}"
    if rec["gpl_compatible"]:
        text += "  gpl"
    if "run_time_ns" in rec:
        text += f" run_time_ns {rec['run_time_ns']} run_cnt {rec['run_cnt']}"
    if "recursion_misses" in rec:
        text += f" recursion_misses {rec['recursion_misses']}"
    return text


def prog_record(fd: int) -> dict[str, Any]:
    """What ``bpftool -j prog show`` says of the program behind ``fd``."""
    i = prog_info(fd)
    extra = fdinfo(fd)
    rec = prog_header(fd)
    rec["loaded_at"] = _wallclock(i.load_time_ns)
    rec["uid"] = i.created_by_uid
    rec["bytes_xlated"] = i.xlated_len
    rec["jited"] = bool(i.jited_len)
    if i.jited_len:
        rec["bytes_jited"] = i.jited_len
    if "memlock" in extra:
        rec["bytes_memlock"] = int(extra["memlock"])
    if i.map_ids:
        rec["map_ids"] = list(i.map_ids)
    if i.btf_id:
        rec["btf_id"] = i.btf_id
    return rec


def map_record(fd: int) -> dict[str, Any]:
    """What ``bpftool -j map show`` says of the map behind ``fd``."""
    i = map_info(fd)
    extra = fdinfo(fd)
    rec: dict[str, Any] = {"id": i.id, "type": i.type_name}
    if i.name:
        rec["name"] = i.name  # bpftool leaves an unnamed map's name out
    rec |= {
        "flags": i.flags,
        "bytes_key": i.key_size,
        "bytes_value": i.value_size,
        "max_entries": i.max_entries,
    }
    if "memlock" in extra:
        rec["bytes_memlock"] = int(extra["memlock"])
    if i.type == MapType.PROG_ARRAY:
        if "owner_prog_type" in extra:
            rec["owner_prog_type"] = type_name(ProgType, int(extra["owner_prog_type"]))
        if "owner_jited" in extra:
            rec["owner_jited"] = extra["owner_jited"].strip() not in ("", "0")
    rec["frozen"] = int(extra.get("frozen", "0"))
    if i.btf_id:
        rec["btf_id"] = i.btf_id
    return rec


def map_text(rec: dict[str, Any]) -> str:
    """The lines ``bpftool map show`` prints for one map record."""
    name = f"name {rec['name']}  " if rec.get("name") else ""
    lines = [f"{rec['id']}: {rec['type']}  {name}flags {rec['flags']:#x}"]
    second = f"\tkey {rec['bytes_key']}B  value {rec['bytes_value']}B  "
    second += f"max_entries {rec['max_entries']}"
    if "bytes_memlock" in rec:
        second += f"  memlock {rec['bytes_memlock']}B"
    lines.append(second)
    owner = f"owner_prog_type {rec['owner_prog_type']}  " if "owner_prog_type" in rec else ""
    if "owner_jited" in rec:
        owner += "owner jited" if rec["owner_jited"] else "owner not jited"
    if owner:
        lines.append("\t" + owner)
    last = [f"btf_id {rec['btf_id']}"] if "btf_id" in rec else []
    if rec.get("frozen"):
        last.append("frozen")
    if last:
        lines.append("\t" + "  ".join(last))
    return "\n".join(lines)


def map_types(info: MapInfo) -> MapTypes:
    """The types of the map's keys and values, from the BTF the kernel holds for it
    (untyped when the map has none or its BTF cannot be read)."""
    from bpfkit.btf import parse_btf
    from bpfkit.btf.mapview import MapTypes

    if not info.btf_id or not info.btf_value_type_id:
        return MapTypes()
    try:
        btf = parse_btf(btf_bytes(info.btf_id))
    except BpfkitError:
        return MapTypes()
    return MapTypes(btf=btf, key=info.btf_key_type_id or None, value=info.btf_value_type_id)


def hex_bytes(data: bytes) -> list[str]:
    """``["0x01", "0x00", ...]``: bytes as bpftool's JSON writes them."""
    return [f"0x{b:02x}" for b in data]


def plain(value: Any) -> Any:
    """A decoded BTF value as JSON takes it (dicts, lists, numbers, strings)."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, bytes | bytearray):
        return hex_bytes(bytes(value))
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def entry_record(
    key: bytes, value: bytes | Sequence[bytes], types: MapTypes | None, *, percpu: bool = False
) -> dict[str, Any]:
    """One element of ``bpftool -j map dump``: key and value as hex bytes, and, when the
    map has BTF, ``formatted`` with both decoded; per-CPU values as ``values`` by cpu."""
    rec: dict[str, Any] = {"key": hex_bytes(key)}
    typed = types is not None and types.btf is not None
    # bpftool: the key only when the map has a key type (global data maps have none).
    fkey = {"key": plain(types.decode_key(key))} if typed and types and types.key else {}
    if percpu:
        vals = [value] if isinstance(value, bytes | bytearray) else list(value)
        rec["values"] = [{"cpu": c, "value": hex_bytes(bytes(v))} for c, v in enumerate(vals)]
        if typed and types is not None:
            rec["formatted"] = {
                **fkey,
                "values": [
                    {"cpu": c, "value": _formatted(types, bytes(v))} for c, v in enumerate(vals)
                ],
            }
        return rec
    assert isinstance(value, bytes | bytearray)
    rec["value"] = hex_bytes(bytes(value))
    if typed and types is not None:
        rec["formatted"] = {**fkey, "value": _formatted(types, bytes(value))}
    return rec


def _formatted(types: MapTypes, raw: bytes) -> Any:
    """A decoded value as bpftool's JSON has it: a DATASEC (a global data map's value) as
    ``{".data": [{"var": value}, ...]}``."""
    from bpfkit.btf import types as T

    out = plain(types.decode_value(raw))
    sec = types.btf.type(types.value) if types.btf is not None and types.value else None
    if isinstance(sec, T.Datasec) and isinstance(out, dict):
        return {sec.name: [{k: v} for k, v in out.items()]}
    return out


# The fields bpftool 7.1 shows per link type (others: none, e.g. an XDP link's ifindex).
_LINK_FIELDS = {
    "raw_tracepoint": ("tp_name",),
    "tracing": ("prog_type", "attach_type"),
    "cgroup": ("cgroup_id", "attach_type"),
    "netns": ("netns_ino", "attach_type"),
}


def link_record(fd: int) -> dict[str, Any]:
    """What ``bpftool -j link show`` says of the link behind ``fd``: its id, type and
    program, and the fields bpftool shows for that type (a tracing link: the program's
    type and the attach type)."""
    i = link_info(fd)
    fields = dict(i.fields)
    if i.type_name == "tracing":
        from bpfkit.kernel.info import prog_fd_by_id

        with prog_fd_by_id(i.prog_id) as prog:
            fields["prog_type"] = prog_info(prog.fd).type_name
    rec: dict[str, Any] = {"id": i.id, "type": i.type_name, "prog_id": i.prog_id}
    for key in _LINK_FIELDS.get(i.type_name, ()):
        if key in fields:
            rec[key] = fields[key]
    return rec


_LINK_TEXT = {"tp_name": "tp '{}'"}


def link_text(rec: dict[str, Any]) -> str:
    """The lines ``bpftool link show`` prints for one link record."""
    lines = [f"{rec['id']}: {rec['type']}  prog {rec['prog_id']}  "]
    extra = [k for k in rec if k not in ("id", "type", "prog_id")]
    if extra:
        lines.append(
            "\t" + "".join(_LINK_TEXT.get(k, k + " {}").format(rec[k]) + "  " for k in extra)
        )
    return "\n".join(lines)
