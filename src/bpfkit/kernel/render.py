"""Text for people about loaded kernel objects (the library never prints; the CLI does).

API::

    render_collection(coll) -> str          # what `bpfkit load` prints (kernel.loaded)
    collection_rows(coll) -> (progs, maps)  # its numbers, one tuple per program and map
    render_programs(infos) -> str           # what `bpfkit prog list` prints
    render_test_run(result) -> str          # what `bpfkit test-run` prints
    render_maps(maps, types=...) -> str     # by bpfkit.btf.mapview, typed by BTF
    hexdump(data) -> str                    # re-exported from bpfkit.text
    log_tail(log, lines=20) -> str
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from bpfkit.errors import KernelError
from bpfkit.kernel.loaded import format_loaded
from bpfkit.text import hexdump
from bpfkit.uapi import MapType

if TYPE_CHECKING:  # only annotations: `bpfkit prog list` need not import the loader
    from bpfkit.btf.mapview import MapTypes
    from bpfkit.kernel.collection import Collection
    from bpfkit.kernel.info import ProgramInfo
    from bpfkit.kernel.loaded import MapRow, ProgRow
    from bpfkit.kernel.maps import Map
    from bpfkit.kernel.program import TestRunResult

# Maps whose entries user space cannot read as key/value pairs.
_OPAQUE = {
    MapType.PERF_EVENT_ARRAY,
    MapType.RINGBUF,
    MapType.USER_RINGBUF,
    MapType.PROG_ARRAY,
    MapType.ARRAY_OF_MAPS,
    MapType.HASH_OF_MAPS,
    MapType.STACK_TRACE,
}


def log_tail(log: str, lines: int = 20) -> str:
    """The last ``lines`` lines of a verifier log (all of it if shorter)."""
    rows = log.rstrip("\n").splitlines()
    if len(rows) <= lines:
        return "\n".join(rows)
    return "\n".join([f"... ({len(rows) - lines} earlier lines; -v shows all)", *rows[-lines:]])


def collection_rows(coll: Collection) -> tuple[list[ProgRow], list[MapRow]]:
    """The kernel's numbers of each program and map of ``coll`` (ids, types, sizes)."""
    progs: list[ProgRow] = []
    for name, prog in coll.programs.items():
        i = prog.info()
        progs.append((i.id, name, i.type_name, i.xlated_insns, i.jited_len))
    maps: list[MapRow] = []
    for name, m in coll.maps.items():
        mi = m.info()
        maps.append((mi.id, name, mi.type_name, mi.key_size, mi.value_size, mi.max_entries))
    return progs, maps


def render_collection(coll: Collection) -> str:
    """One line per program (kernel id, name, type, translated and jited sizes) and map."""
    return format_loaded(coll.spec.path, *collection_rows(coll))


def _when(info: ProgramInfo) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(info.loaded_at))


def render_programs(infos: Sequence[ProgramInfo], *, as_json: bool = False) -> str:
    """A table like ``bpftool prog show``: id, type, name, tag, loaded at."""
    if as_json:
        import json

        return json.dumps(
            [
                {
                    "id": i.id,
                    "type": i.type_name,
                    "name": i.name,
                    "tag": i.tag,
                    "loaded_at": _when(i),
                    "uid": i.created_by_uid,
                    "bytes_xlated": i.xlated_len,
                    "bytes_jited": i.jited_len,
                    "map_ids": list(i.map_ids),
                }
                for i in infos
            ],
            indent=2,
        )
    rows = [("ID", "TYPE", "NAME", "TAG", "LOADED AT")]
    rows += [(str(i.id), i.type_name, i.name, i.tag, _when(i)) for i in infos]
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    return "\n".join("  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4] for r in rows)


def render_test_run(
    result: TestRunResult, *, program: str = "", repeat: int = 1, prog_type: int | None = None
) -> str:
    """retval (named when it is a verdict of ``prog_type``: ``2 (XDP_PASS)``), duration
    and the output packet."""
    from bpfkit.uapi.verdicts import retval_text

    head = f"program: {program}\n" if program else ""
    lines = [
        f"{head}retval: {retval_text(prog_type, result.retval)}",
        f"duration: {result.duration_ns} ns"
        + (f" (average of {repeat} runs)" if repeat > 1 else ""),
        f"data_out: {len(result.data_out)} bytes",
    ]
    if result.data_out:
        lines.append(hexdump(result.data_out))
    return "\n".join(lines)


def map_entries(m: Map) -> list[tuple[bytes, bytes | list[bytes]]]:
    """A live map's entries as the one map renderer takes them (per-CPU values split)."""
    return list(m.raw_entries())


def render_maps(
    maps: Mapping[str, Map],
    limit: int = 50,
    types: Mapping[str, MapTypes] | None = None,
    samples: Mapping[str, Sequence[tuple[int, bytes]]] | None = None,
) -> str:
    """Each map's contents by :func:`bpfkit.btf.mapview.render_map` (the renderer the VM's
    ``--maps`` uses too), typed by ``types`` (from :func:`object_map_types`) where given;
    ``samples``: the (cpu, bytes) records a perf event array's reader caught."""
    from bpfkit.btf.mapview import render_map

    out = []
    entries: list[tuple[bytes, bytes | list[bytes]]]
    for name, m in maps.items():
        if samples is not None and name in samples:
            entries = [(cpu.to_bytes(4, "little"), r) for cpu, r in samples[name]]
            out.append(render_map(name, m.type, entries, (types or {}).get(name), limit=limit))
            continue
        if m.type == MapType.RINGBUF:
            # The records not consumed yet (a Session's reader takes them as they come):
            # read, and so consumed, as `bpfkit vm --maps` shows the VM's.
            try:
                with m.open_records() as reader:
                    records = reader.read()
            except KernelError as e:
                out.append(f"map {name} ({m.type_name}): {e}")
                continue
            entries = [(i.to_bytes(4, "little"), r) for i, r in enumerate(records)]
            out.append(render_map(name, m.type, entries, (types or {}).get(name), limit=limit))
            continue
        if m.type in _OPAQUE:
            out.append(f"map {name} ({m.type_name}): not readable as entries")
            continue
        try:
            entries = map_entries(m)
        except KernelError as e:
            out.append(f"map {name} ({m.type_name}): {e}")
            continue
        out.append(render_map(name, m.type, entries, (types or {}).get(name), limit=limit))
    return "\n".join(out)
