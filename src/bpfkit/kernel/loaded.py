"""The text ``bpfkit load`` prints for what it loaded, from plain numbers.

API::

    ProgRow = (id, name, type_name, xlated_insns, jited_bytes)
    MapRow = (id, name, type_name, key_size, value_size, max_entries)
    format_loaded(path, progs, maps) -> str

One owner for both ways a load happens: :func:`bpfkit.kernel.render.render_collection`
(the whole road) and :mod:`bpfkit.kernel.replay` (a recorded load replayed), which must
print the same.  It imports nothing, so a replayed load stays cheap.
"""

from __future__ import annotations

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence

    ProgRow = tuple[int, str, str, int, int]
    MapRow = tuple[int, str, str, int, int, int]


def format_loaded(path: str, progs: Sequence[ProgRow], maps: Sequence[MapRow]) -> str:
    """A heading, then one line per program (kernel id, name, type, translated and jited
    sizes) and per map (id, name, type, key and value sizes, max entries)."""
    nprog, nmap = len(progs), len(maps)
    out = [f"{path}: {nprog} program{'s' * (nprog != 1)}, {nmap} map{'s' * (nmap != 1)}"]
    for pid, name, type_name, xlated, jited in progs:
        out.append(
            f"  prog {pid:<6} {name:<24} {type_name:<14} xlated {xlated} insns  jited {jited} bytes"
        )
    for mid, name, type_name, key, value, max_entries in maps:
        out.append(
            f"  map  {mid:<6} {name:<24} {type_name:<14} "
            f"key {key}  value {value}  max_entries {max_entries}"
        )
    return "\n".join(out)
