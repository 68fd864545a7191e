"""Kernel constants as data: the helper table and the uapi enums, generated from pinned sources.

:mod:`bpfkit.uapi.helpers` holds the helper table (:data:`~bpfkit.uapi.helpers.HELPERS`,
:func:`~bpfkit.uapi.helpers.by_id`, :func:`~bpfkit.uapi.helpers.by_name`); the enums below
mirror the kernel's ``enum bpf_prog_type``, ``bpf_map_type``, ``bpf_attach_type``,
``bpf_link_type`` and ``bpf_cmd`` (members without their ``BPF_..._`` prefix); the
verdicts and flags keep their uapi names, as enums (``XdpAction``, ``TcAction``,
``SkAction``, ``RetCode``, ``UpdateFlag``) and as names of this module (``XDP_PASS``,
``TC_ACT_OK``, ``SK_PASS``, ``BPF_OK``, ``BPF_NOEXIST``); :mod:`bpfkit.uapi.verdicts` says
which enum a program type's return value is.
``scripts/gen_uapi.py`` regenerates :mod:`bpfkit.uapi._generated` from the kernel's BTF
and libbpf's ``bpf_helper_defs.h``.
"""

from __future__ import annotations

from bpfkit.uapi._generated import (
    BPF_ANY,
    BPF_DROP,
    BPF_EXIST,
    BPF_F_LOCK,
    BPF_FLOW_DISSECTOR_CONTINUE,
    BPF_LWT_REROUTE,
    BPF_NOEXIST,
    BPF_OK,
    BPF_REDIRECT,
    SK_DROP,
    SK_PASS,
    TC_ACT_OK,
    TC_ACT_PIPE,
    TC_ACT_QUEUED,
    TC_ACT_RECLASSIFY,
    TC_ACT_REDIRECT,
    TC_ACT_REPEAT,
    TC_ACT_SHOT,
    TC_ACT_STOLEN,
    TC_ACT_TRAP,
    TC_ACT_UNSPEC,
    XDP_ABORTED,
    XDP_DROP,
    XDP_PASS,
    XDP_REDIRECT,
    XDP_TX,
    AttachType,
    Cmd,
    LinkType,
    MapType,
    ProgType,
    RetCode,
    SkAction,
    TcAction,
    UpdateFlag,
    XdpAction,
)

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

    from bpfkit.uapi.helpers import HELPERS, Helper, HelperArg, by_id, by_name

_HELPER_NAMES = frozenset({"HELPERS", "Helper", "HelperArg", "by_id", "by_name"})


def __getattr__(name: str) -> Any:
    # The helper table is imported on first use: the kernel commands need only the enums.
    if name in _HELPER_NAMES:
        from bpfkit.uapi import helpers

        return getattr(helpers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BPF_ANY",
    "BPF_DROP",
    "BPF_EXIST",
    "BPF_FLOW_DISSECTOR_CONTINUE",
    "BPF_F_LOCK",
    "BPF_LWT_REROUTE",
    "BPF_NOEXIST",
    "BPF_OK",
    "BPF_REDIRECT",
    "HELPERS",
    "SK_DROP",
    "SK_PASS",
    "TC_ACT_OK",
    "TC_ACT_PIPE",
    "TC_ACT_QUEUED",
    "TC_ACT_RECLASSIFY",
    "TC_ACT_REDIRECT",
    "TC_ACT_REPEAT",
    "TC_ACT_SHOT",
    "TC_ACT_STOLEN",
    "TC_ACT_TRAP",
    "TC_ACT_UNSPEC",
    "XDP_ABORTED",
    "XDP_DROP",
    "XDP_PASS",
    "XDP_REDIRECT",
    "XDP_TX",
    "AttachType",
    "Cmd",
    "Helper",
    "HelperArg",
    "LinkType",
    "MapType",
    "ProgType",
    "RetCode",
    "SkAction",
    "TcAction",
    "UpdateFlag",
    "XdpAction",
    "by_id",
    "by_name",
]
