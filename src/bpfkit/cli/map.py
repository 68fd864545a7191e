"""``bpfkit map list|show|dump|lookup|update|delete|pin``: maps in the kernel, named and
addressed as ``bpftool map`` does (``id N | pinned PATH | name NAME``, ``key [hex] B..``,
``value [hex] B..``); entries print through the one map renderer
(:func:`bpfkit.btf.mapview.render_map`), typed by the map's BTF as the kernel holds it;
``--json`` uses bpftool's keys (hex byte arrays, and ``formatted`` when the map has BTF)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from bpfkit.cli.objref import USAGE
from bpfkit.errors import KernelError

if TYPE_CHECKING:
    from bpfkit.kernel.maps import Map

_FLAGS = {"any": 0, "noexist": 1, "exist": 2}


def register(sub: Any) -> None:
    """Add the ``map`` sub-command."""
    p = sub.add_parser("map", help="inspect and edit maps in the kernel (like bpftool map)")
    msub = p.add_subparsers(dest="map_command", metavar="SUBCOMMAND")

    def add(name: str, helptext: str, metavar: str, func: Any, **kw: Any) -> None:
        c = msub.add_parser(name, help=helptext, **kw)
        c.add_argument("words", nargs="*", metavar=metavar)
        c.add_argument("--json", "-j", action="store_true", help="JSON output (bpftool's keys)")
        c.set_defaults(func=func)

    add("show", "show maps: id, type, name, sizes", f"[{USAGE}]", run_show, aliases=["list"])
    dump = msub.add_parser("dump", help="print every entry of a map")
    dump.add_argument("words", nargs="*", metavar=USAGE)
    dump.add_argument("--json", "-j", action="store_true", help="JSON output (bpftool's keys)")
    dump.add_argument(
        "--hist",
        nargs="?",
        const="log2",
        choices=["log2", "linear"],
        help="draw the map as a histogram (keys: slots, values: counts; per-CPU values "
        "summed), as bcc's print_log2_hist / print_linear_hist (default log2)",
    )
    dump.add_argument(
        "--label", default="value", help="the histogram's value label (bcc's val_type)"
    )
    dump.set_defaults(func=run_dump)
    add("lookup", "print one entry: lookup MAP key [hex] B..", f"{USAGE} key [hex] B..", run_lookup)
    add(
        "update",
        "write one entry: update MAP key [hex] B.. value [hex] B.. [any|exist|noexist]",
        f"{USAGE} key .. value ..",
        run_update,
    )
    add("delete", "delete one entry: delete MAP key [hex] B..", f"{USAGE} key ..", run_delete)
    add("pin", "pin a map: pin MAP PATH", f"{USAGE} PATH", run_pin)
    p.set_defaults(func=run_show, words=[], json=False)


def _privileged(what: str) -> None:
    from bpfkit.kernel.features import require_privileges

    require_privileges(f"bpfkit map {what}")


def run_show(args: argparse.Namespace) -> int:
    """Show the maps named (all of them by default)."""
    from bpfkit.cli.objref import print_records, show_records
    from bpfkit.kernel.show import map_record, map_text

    _privileged("show")
    records, named = show_records(list(args.words), "map", map_record)
    print_records(records, named, args.json, map_text)
    return 0


def _open_map(ref: list[str]) -> Map:
    from bpfkit.cli.objref import open_one
    from bpfkit.kernel.maps import Map

    return Map.from_fd(open_one(ref, "map"))


def _bytes(words: list[str], what: str, size: int) -> tuple[bytes, list[str]]:
    """``[hex] B0 B1 ..`` (bytes as in bpftool: decimal, 0x.., or all hex after ``hex``)
    of exactly ``size`` bytes, and the words after them."""
    base = 0
    if words and words[0] == "hex":
        base, words = 16, words[1:]
    out = bytearray()
    while words and len(out) < size:
        word = words[0]
        try:
            b = int(word, base)
        except ValueError:
            break
        if not 0 <= b <= 255:
            raise KernelError(f"{what} byte {word!r} is not in 0..255")
        out.append(b)
        words = words[1:]
    if len(out) != size:
        got = len(out) + sum(1 for _ in words if _.isdigit())
        raise KernelError(f"{what} needs {size} bytes, got {got}; give e.g. {what} {'0 ' * size}")
    return bytes(out), words


def _entry_text(m: Map, key: bytes, value: bytes, types: Any) -> str:
    from bpfkit.btf.mapview import format_value

    vals: list[bytes]
    if m.percpu:
        slot = (m.value_size + 7) & ~7
        vals = [value[i : i + m.value_size] for i in range(0, len(value), slot)]
        shown = ", ".join(
            f"cpu{c}: {format_value(types.decode_value(v))}" for c, v in enumerate(vals)
        )
        return f"key: {format_value(types.decode_key(key))}  values: {{{shown}}}"
    return (
        f"key: {format_value(types.decode_key(key))}  "
        f"value: {format_value(types.decode_value(value))}"
    )


def _split_percpu(m: Map, value: bytes) -> bytes | list[bytes]:
    if not m.percpu:
        return value
    slot = (m.value_size + 7) & ~7
    return [value[i : i + m.value_size] for i in range(0, len(value), slot)]


def run_dump(args: argparse.Namespace) -> int:
    """Every entry of the map."""
    from bpfkit.btf.mapview import render_map
    from bpfkit.cli.objref import split_ref
    from bpfkit.kernel.render import _OPAQUE, map_entries
    from bpfkit.kernel.show import entry_record, map_types
    from bpfkit.uapi import MapType

    _privileged("dump")
    ref, rest = split_ref(list(args.words), "map")
    if rest or not ref:
        raise KernelError(f"usage: bpfkit map dump {USAGE}")
    with _open_map(ref) as m:
        info = m.info()
        # Maps of programs or maps read back as the ids held in their filled slots (empty
        # ones are absent), as bpftool's map dump lists them.
        ids = (MapType.PROG_ARRAY, MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS)
        if m.type in _OPAQUE and m.type not in ids:
            raise KernelError(f"map {info.name} ({m.type_name}) cannot be read as entries")
        types = map_types(info)
        entries = map_entries(m)
        if getattr(args, "hist", None):
            print(_histogram(m, entries, args.hist, args.label), end="")
            return 0
        if args.json:
            recs = [entry_record(k, v, types, percpu=m.percpu) for k, v in entries]
            print(json.dumps(recs, indent=2))
        else:
            print(render_map(info.name, m.type, entries, types, limit=max(len(entries), 1)))
    return 0


def _histogram(m: Map, entries: list[tuple[bytes, Any]], kind: str, label: str) -> str:
    """The map as a histogram: each key a slot number, each value its count."""
    from bpfkit.text import linear_hist, log2_hist

    if m.key_size > 8 or m.value_size > 8:
        raise KernelError(
            f"map {m.name!r} has {m.key_size}-byte keys and {m.value_size}-byte values; "
            "--hist needs integer slots (keys) and counts (values) of at most 8 bytes"
        )
    slots: dict[int, int] = {}
    for key, value in entries:
        vals = value if isinstance(value, list) else [value]
        slot = int.from_bytes(key, "little")
        slots[slot] = slots.get(slot, 0) + sum(int.from_bytes(v, "little") for v in vals)
    if slots and max(slots) > 1 << 16:
        raise KernelError(f"map {m.name!r} has slot {max(slots)}: too many rows to draw")
    draw = log2_hist if kind == "log2" else linear_hist
    return draw(slots, label) or f"map {m.name!r}: no counts yet\n"


def _key_args(m: Map, words: list[str]) -> tuple[bytes, list[str]]:
    if not words or words[0] != "key":
        raise KernelError("expected `key [hex] B..` after the map")
    return _bytes(words[1:], "key", m.key_size)


def run_lookup(args: argparse.Namespace) -> int:
    """One entry of the map."""
    from bpfkit.cli.objref import split_ref
    from bpfkit.kernel.show import entry_record, map_types

    _privileged("lookup")
    ref, rest = split_ref(list(args.words), "map")
    if not ref:
        raise KernelError(f"usage: bpfkit map lookup {USAGE} key [hex] B..")
    with _open_map(ref) as m:
        key, rest = _key_args(m, rest)
        if rest:
            raise KernelError(f"unexpected {' '.join(rest)!r} after the key")
        value = m.lookup(key)
        if value is None:
            raise KernelError(f"map {m.name!r} has no entry for key {key.hex(' ')}")
        types = map_types(m.info())
        if args.json:
            rec = entry_record(key, _split_percpu(m, value), types, percpu=m.percpu)
            print(json.dumps(rec, indent=2))
        else:
            print(_entry_text(m, key, value, types))
    return 0


def run_update(args: argparse.Namespace) -> int:
    """Write one entry."""
    from bpfkit.cli.objref import split_ref
    from bpfkit.kernel.maps import possible_cpus

    _privileged("update")
    ref, rest = split_ref(list(args.words), "map")
    if not ref:
        raise KernelError(f"usage: bpfkit map update {USAGE} key .. value .. [flags]")
    with _open_map(ref) as m:
        key, rest = _key_args(m, rest)
        if not rest or rest[0] != "value":
            raise KernelError("expected `value [hex] B..` after the key")
        value, rest = _bytes(rest[1:], "value", m.value_size)
        flags = 0
        if rest:
            if len(rest) > 1 or rest[0] not in _FLAGS:
                raise KernelError(f"unexpected {' '.join(rest)!r}; flags are any|exist|noexist")
            flags = _FLAGS[rest[0]]
        # A per-CPU map: bpftool writes the one value given to every CPU.
        m.put(key, [value] * possible_cpus() if m.percpu else value, flags)
    return 0


def run_delete(args: argparse.Namespace) -> int:
    """Delete one entry."""
    from bpfkit.cli.objref import split_ref

    _privileged("delete")
    ref, rest = split_ref(list(args.words), "map")
    if not ref:
        raise KernelError(f"usage: bpfkit map delete {USAGE} key [hex] B..")
    with _open_map(ref) as m:
        key, rest = _key_args(m, rest)
        if rest:
            raise KernelError(f"unexpected {' '.join(rest)!r} after the key")
        if not m.delete(key):
            raise KernelError(f"map {m.name!r} has no entry for key {key.hex(' ')}")
    return 0


def run_pin(args: argparse.Namespace) -> int:
    """Pin the map at PATH."""
    from bpfkit.cli.objref import pin_ref

    _privileged("pin")
    print(f"pinned at {pin_ref(list(args.words), 'map')}")
    return 0
