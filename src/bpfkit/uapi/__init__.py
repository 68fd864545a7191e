"""Kernel constants as data: the helper table and the uapi enums, generated from pinned sources.

:mod:`bpfkit.uapi.helpers` holds the helper table (:data:`~bpfkit.uapi.helpers.HELPERS`,
:func:`~bpfkit.uapi.helpers.by_id`, :func:`~bpfkit.uapi.helpers.by_name`); the enums below
mirror the kernel's ``enum bpf_prog_type``, ``bpf_map_type``, ``bpf_attach_type``,
``bpf_link_type`` and ``bpf_cmd`` (members without their ``BPF_..._`` prefix).
``scripts/gen_uapi.py`` regenerates :mod:`bpfkit.uapi._generated` from the kernel's BTF
and libbpf's ``bpf_helper_defs.h``.
"""

from bpfkit.uapi._generated import AttachType, Cmd, LinkType, MapType, ProgType
from bpfkit.uapi.helpers import HELPERS, Helper, HelperArg, by_id, by_name

__all__ = [
    "HELPERS",
    "AttachType",
    "Cmd",
    "Helper",
    "HelperArg",
    "LinkType",
    "MapType",
    "ProgType",
    "by_id",
    "by_name",
]
