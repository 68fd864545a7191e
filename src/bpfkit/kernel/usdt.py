"""USDT attachment, as libbpf does it: one uprobe per probe site, and the probe's argument
specs in the maps of ``usdt.bpf.h`` so that ``bpf_usdt_arg()`` can read them.

For a point ``usdt:PATH:PROVIDER:NAME`` (section ``usdt/PATH:PROVIDER:NAME``),
:func:`place` finds the sites in the binary's ``.note.stapsdt`` (:mod:`bpfkit.obj.usdt`),
gives each distinct argument string a spec id, writes ``struct __bpf_usdt_spec`` at that
id in ``__bpf_usdt_specs`` (laid out as the object's BTF says,
:mod:`bpfkit.obj.usdt_spec`) and, for a non-PIE executable whose sites have one address
in every process, the site's address -> spec id in ``__bpf_usdt_ip_to_spec_id`` (what
usdt.bpf.h reads on kernels without BPF cookies).  :mod:`bpfkit.kernel.links` then opens a
uprobe at each site's file offset, with the semaphore's file offset as the uprobe's
``ref_ctr_offset`` (the kernel counts the semaphore up while attached, 4.20+), and links
the program with the spec id as BPF cookie (``bpf_get_attach_cookie()``, 5.15+).

A program that includes no usdt.bpf.h (no such maps) is attached all the same: it reads
no arguments.  Closing the link gives the spec ids back and removes its address entries.
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bpfkit.errors import KernelError, ObjectError
from bpfkit.kernel.maps import Map
from bpfkit.obj import usdt
from bpfkit.obj.spec import ObjectSpec
from bpfkit.obj.usdt_spec import LIBBPF_1_1, SpecLayout, encode_spec, layout_from_btf

# Spec ids in use, per specs map (shared by the programs of one object), by id() of the
# live Map (a Map is a mapping, so it cannot be a dictionary key itself).
_taken: dict[int, tuple[weakref.ref[Map], set[int]]] = {}


def _ids_taken(specs_map: Map) -> set[int]:
    ref, ids = _taken.get(id(specs_map), (None, set()))
    if ref is None or ref() is not specs_map:
        ids = set()
        key = id(specs_map)
        _taken[key] = (weakref.ref(specs_map, lambda _: _taken.pop(key, None)), ids)
    return ids


@dataclass(frozen=True, slots=True)
class Probe:
    """One uprobe to open: at file ``offset``, with ``ref_ctr_offset`` (0: none) and the
    spec id as BPF cookie."""

    offset: int
    ref_ctr_offset: int
    cookie: int
    address: int


@dataclass
class Specs:
    """The spec ids and address entries one attachment wrote; ``close()`` gives them back."""

    specs_map: Map | None = None
    ip_map: Map | None = None
    ids: list[int] = field(default_factory=list)
    addresses: list[int] = field(default_factory=list)

    def close(self) -> None:
        """Free the spec ids and delete the address entries (idempotent)."""
        if self.specs_map is not None:
            _ids_taken(self.specs_map).difference_update(self.ids)
        self.ids.clear()
        if self.ip_map is not None:
            for address in self.addresses:
                try:
                    self.ip_map.typed().delete(struct.pack("<q", address))
                except KernelError:
                    pass  # the map is closing too
        self.addresses.clear()


def has_ref_ctr() -> bool:
    """True if this kernel's uprobe PMU takes a semaphore offset (``ref_ctr_offset``)."""
    return Path("/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset").exists()


def _free_id(specs_map: Map) -> int:
    taken = _ids_taken(specs_map)
    for i in range(specs_map.max_entries):
        if i not in taken:
            taken.add(i)
            return i
    raise KernelError(
        f"USDT: all {specs_map.max_entries} argument specs of {specs_map.name} are in use "
        "(define BPF_USDT_MAX_SPEC_CNT larger before including usdt.bpf.h)"
    )


def _layout(specs_map: Map, obj: ObjectSpec | None) -> SpecLayout:
    btf, type_id = None, None
    if isinstance(obj, ObjectSpec):
        btf = obj.parsed_btf()
        spec = next((m for m in obj.maps if m.name == usdt.SPECS_MAP), None)
        type_id = spec.value_type_id if spec is not None else None
    layout = layout_from_btf(btf, type_id)
    if layout.size != specs_map.value_size:
        layout = LIBBPF_1_1 if specs_map.value_size == LIBBPF_1_1.size else layout
    if layout.size != specs_map.value_size:
        raise KernelError(
            f"USDT: {usdt.SPECS_MAP} has {specs_map.value_size}-byte values, not a "
            f"struct __bpf_usdt_spec of {layout.size} bytes"
        )
    return layout


def place(
    path: str,
    provider: str,
    name: str,
    maps: Mapping[str, Map] | None,
    *,
    obj: ObjectSpec | None = None,
    cookie: int = 0,
) -> tuple[list[Probe], Specs]:
    """The uprobes for probe ``provider:name`` of ``path`` and the specs written for them
    (``maps``: the program's maps; ``obj``: its ObjectSpec, whose BTF gives the layout;
    ``cookie``: what ``bpf_usdt_cookie()`` returns)."""
    where = f"USDT probe {path}:{provider}:{name}"
    try:
        sites = usdt.find_sites(path, provider, name)
    except ObjectError as e:
        raise KernelError(str(e)) from None
    if any(s.semaphore_offset for s in sites) and not has_ref_ctr():
        raise KernelError(
            f"{where} has a semaphore, and this kernel's uprobes cannot count it "
            "(no ref_ctr_offset, Linux < 4.20)"
        )
    maps = maps or {}
    specs_map = maps.get(usdt.SPECS_MAP)
    ip_map = maps.get(usdt.IP_MAP)
    done = Specs(specs_map, ip_map)
    probes: list[Probe] = []
    try:
        by_args: dict[str, int] = {}
        layout = _layout(specs_map, obj) if specs_map is not None else None
        for site in sites:
            spec_id = 0
            if specs_map is not None and layout is not None:
                spec_id = by_args.get(site.note.args, -1)
                if spec_id < 0:
                    args = usdt.parse_args(site.note.args, f"{where} at {site.address:#x}")
                    value = encode_spec(args, cookie, layout, where)
                    spec_id = _free_id(specs_map)
                    done.ids.append(spec_id)
                    by_args[site.note.args] = spec_id
                    specs_map.typed().put(struct.pack("<i", spec_id), value)
                if ip_map is not None and site.executable:
                    key = struct.pack("<q", site.address)
                    ip_map.typed().put(key, struct.pack("<I", spec_id))
                    done.addresses.append(site.address)
            probes.append(Probe(site.offset, site.semaphore_offset, spec_id, site.address))
    except ObjectError as e:
        done.close()
        raise KernelError(str(e)) from None
    except BaseException:
        done.close()
        raise
    return probes, done
