"""Text for people from VM results (the library never prints; the CLI does)."""

from __future__ import annotations

from bpfkit.btf import mapview
from bpfkit.btf.mapview import MapTypes
from bpfkit.obj.spec import ObjectSpec
from bpfkit.text import hexdump
from bpfkit.uapi.verdicts import retval_text
from bpfkit.vm.maps import ArrayMap, HashMap, PerfEventArray, RingBuf, VmMap
from bpfkit.vm.vm import VmResult


def render_map(vmap: VmMap, limit: int = 50, types: MapTypes | None = None) -> str:
    """A VM map's contents by the one map renderer (:mod:`bpfkit.btf.mapview`), the same
    text the kernel commands print for the same map."""
    return mapview.render_map(vmap.name, vmap.type, vmap.items(), types, limit=limit)


def render_result(
    result: VmResult, *, program: str = "", maps: bool = False, obj: ObjectSpec | None = None
) -> str:
    """The printed messages, then r0, the instruction count and the packet (and maps, typed
    by ``obj``'s BTF when given)."""
    out = []
    for msg in result.output:
        out.append(msg[:-1] if msg.endswith("\n") else msg)
    if program:
        out.append(f"program: {program}")
    out.append(f"retval: {retval_text(result.prog_type, result.r0)}")
    out.append(f"instructions: {result.insns_executed} executed")
    if result.packet is not None:
        out.append(f"data_out: {len(result.packet)} bytes")
        if result.packet:
            out.append(hexdump(result.packet))
    if maps:
        types = mapview.object_map_types(obj) if obj is not None else {}
        for vmap in result.maps.values():
            if isinstance(vmap, (HashMap, ArrayMap, RingBuf, PerfEventArray)):
                out.append(render_map(vmap, types=types.get(vmap.name)))
    return "\n".join(out)
