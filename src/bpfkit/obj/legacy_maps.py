"""Legacy map definitions: the ``maps`` and ``maps/*`` sections of ``struct bpf_map_def`` records.

Layout (uapi of old libbpf, kernel samples/bpf and iproute2; all u32)::

    type, key_size, value_size, max_entries, map_flags    -- struct bpf_map_def (20 bytes)
    inner_map_idx, numa_node                             -- optional (samples/bpf bpf_load.c)

As libbpf did (bpf_object__init_user_maps, removed in 1.0), the size of one record is
the section size divided by the number of symbols in it.
"""

from __future__ import annotations

import struct

from bpfkit.errors import ObjectError
from bpfkit.obj.spec import MapSpec, Symbol

_FIELDS = ("type", "key_size", "value_size", "max_entries", "map_flags", "inner_map_idx", "numa")


def decode_legacy_maps(
    path: str, section: str, data: bytes, symbols: list[Symbol], big_endian: bool
) -> list[MapSpec]:
    """One :class:`MapSpec` per symbol of a legacy maps section, in offset order."""
    syms = sorted(
        (s for s in symbols if s.type not in ("STT_SECTION", "STT_FILE")),
        key=lambda s: (s.value, s.name),
    )
    if not syms:
        return []
    if not data or len(data) % len(syms):
        raise ObjectError(
            f"{path}: cannot determine the map definition size in section {section!r}: "
            f"{len(syms)} map symbols in {len(data)} bytes"
        )
    rec = len(data) // len(syms)
    if rec < 4:
        raise ObjectError(
            f"{path}: section {section!r}: map definitions of {rec} bytes are too small "
            "(struct bpf_map_def needs at least the map type)"
        )
    e = ">" if big_endian else "<"
    maps = []
    for s in syms:
        if s.value + rec > len(data):
            raise ObjectError(
                f"{path}: section {section!r}: map {s.name!r} at offset {s.value} runs past "
                f"the end of the section ({len(data)} bytes, records of {rec} bytes)"
            )
        raw = data[s.value : s.value + rec]
        n = min(len(raw) // 4, len(_FIELDS))
        vals = dict(zip(_FIELDS, struct.unpack_from(f"{e}{n}I", raw), strict=False))
        maps.append(
            MapSpec(
                name=s.name,
                section=section,
                offset=s.value,
                type=vals.get("type"),
                key_size=vals.get("key_size", 0),
                value_size=vals.get("value_size", 0),
                max_entries=vals.get("max_entries", 0),
                flags=vals.get("map_flags", 0),
                inner_map_idx=vals.get("inner_map_idx"),
                numa_node=vals.get("numa"),
                legacy=True,
                raw=raw,
            )
        )
    return maps


_DEF_SIZE = 20  # struct bpf_map_def
_SAMPLES_DEF_SIZE = 28  # samples/bpf's bpf_load_map_def: + inner_map_idx, numa_node


def loadable_problem(obj_path: str, spec: MapSpec, symbols: list[Symbol]) -> str | None:
    """Why libbpf and cilium/ebpf would refuse to load map ``spec``, or None.

    - A static map (an STB_LOCAL symbol; legacy or BTF-defined): libbpf "static maps are
      not supported", cilium/ebpf's ``invalid_map_static``.
    - A legacy record with non-zero bytes after the fields bpfkit knows (the 20-byte
      ``struct bpf_map_def``, or the 28-byte samples/bpf form): libbpf "has unrecognized,
      non-zero options", cilium/ebpf's ``invalid_map``.
    """
    sym = next(
        (
            s
            for s in symbols
            if s.name == spec.name and s.section == spec.section and s.type != "STT_SECTION"
        ),
        None,
    )
    if sym is not None and sym.bind == "STB_LOCAL":
        return (
            f"{obj_path}: map {spec.name!r} in section {spec.section!r} is static: libbpf and "
            "cilium/ebpf do not load static maps; declare it without 'static'"
        )
    if spec.legacy:
        known = _SAMPLES_DEF_SIZE if len(spec.raw) == _SAMPLES_DEF_SIZE else _DEF_SIZE
        extra = spec.raw[known:]
        if any(extra):
            return (
                f"{obj_path}: map {spec.name!r} in section {spec.section!r}: its "
                f"{len(spec.raw)}-byte definition has non-zero bytes after the "
                f"{known}-byte struct bpf_map_def (at offset {known}): unknown map options, "
                "which libbpf and cilium/ebpf refuse too; make the record a bpf_map_def "
                "(or leave the extra fields zero)"
            )
    return None
