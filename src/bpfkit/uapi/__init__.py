"""Kernel constants as data: the helper table and the uapi enums, generated from pinned sources.

:mod:`bpfkit.uapi.helpers` holds the helper table (:data:`~bpfkit.uapi.helpers.HELPERS`,
:func:`~bpfkit.uapi.helpers.by_id`, :func:`~bpfkit.uapi.helpers.by_name`); the enums below
mirror the kernel's ``enum bpf_prog_type``, ``bpf_map_type``, ``bpf_attach_type``,
``bpf_link_type`` and ``bpf_cmd`` (members without their ``BPF_..._`` prefix).
``scripts/gen_uapi.py`` regenerates :mod:`bpfkit.uapi._generated` from the kernel's BTF
and libbpf's ``bpf_helper_defs.h``.
"""

from typing import TYPE_CHECKING, Any

from bpfkit.uapi._generated import AttachType, Cmd, LinkType, MapType, ProgType

if TYPE_CHECKING:
    from bpfkit.uapi.helpers import HELPERS, Helper, HelperArg, by_id, by_name

_HELPER_NAMES = frozenset({"HELPERS", "Helper", "HelperArg", "by_id", "by_name"})


def __getattr__(name: str) -> Any:
    # The helper table is imported on first use: the kernel commands need only the enums.
    if name in _HELPER_NAMES:
        from bpfkit.uapi import helpers

        return getattr(helpers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
