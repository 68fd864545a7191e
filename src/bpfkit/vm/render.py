"""Text for people from VM results (the library never prints; the CLI does)."""

from __future__ import annotations

from bpfkit.text import hexdump
from bpfkit.vm.maps import ArrayMap, HashMap, PerfEventArray, RingBuf, VmMap
from bpfkit.vm.vm import VmResult


def render_map(vmap: VmMap, limit: int = 32) -> str:
    """A map's non-empty contents, one entry a line (keys and values in hex)."""
    items = vmap.items()
    if isinstance(vmap, ArrayMap):
        items = [(k, v) for k, v in items if any(v)]
    head = f"map {vmap.name} ({vmap.type_name}): {len(items)} entries"
    if isinstance(vmap, (RingBuf, PerfEventArray)):
        head = f"map {vmap.name} ({vmap.type_name}): {len(items)} records"
    lines = [head]
    for k, v in items[:limit]:
        label = (
            f"cpu {int.from_bytes(k, 'little')}" if isinstance(vmap, PerfEventArray) else k.hex()
        )
        lines.append(f"  {label}: {v.hex()}")
    if len(items) > limit:
        lines.append(f"  ... {len(items) - limit} more")
    return "\n".join(lines)


def render_result(result: VmResult, *, program: str = "", maps: bool = False) -> str:
    """The printed messages, then r0, the instruction count and the packet (and maps)."""
    out = []
    for msg in result.output:
        out.append(msg[:-1] if msg.endswith("\n") else msg)
    if program:
        out.append(f"program: {program}")
    out.append(f"retval: {result.r0} ({result.r0:#x})")
    out.append(f"instructions: {result.insns_executed} executed")
    if result.packet is not None:
        out.append(f"data_out: {len(result.packet)} bytes")
        if result.packet:
            out.append(hexdump(result.packet))
    if maps:
        for vmap in result.maps.values():
            if isinstance(vmap, (HashMap, ArrayMap, RingBuf, PerfEventArray)):
                out.append(render_map(vmap))
    return "\n".join(out)
