"""Names and numbers of the uapi's enums as bpftool writes them: ``kprobe`` for program
type 2, ``hash`` for map type 1, and back from a name in any case, with or without its
``BPF_PROG_TYPE_`` prefix.  Used by the kernel layer to create and describe programs and
maps; imports nothing but the enums and the errors.
"""

from __future__ import annotations

from bpfkit.errors import KernelError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from enum import IntEnum

    from bpfkit.uapi import MapType, ProgType


def type_name(enum: type[ProgType] | type[MapType], value: int) -> str:
    """``kprobe`` for ProgType 2, ``hash`` for MapType 1, the number if unknown (bpftool's
    names: the uapi's later ``_DEPRECATED`` suffix is left out)."""
    try:
        return enum(value).name.lower().removesuffix("_deprecated")
    except ValueError:
        return str(value)


def type_number(
    enum: type[IntEnum], value: int | str, prefix: str, what: str, *, list_known: bool = True
) -> int:
    """The number of ``value`` in ``enum`` (a uapi enum): a number as is, or a name in any
    case, with or without ``prefix`` (``"xdp"``, ``"BPF_PROG_TYPE_XDP"``).  An unknown
    name is a KernelError naming ``what`` (and, with ``list_known``, the names known)."""
    if isinstance(value, int):
        return value
    key = value.strip().upper().removeprefix(prefix)
    try:
        return int(enum[key])
    except KeyError:
        msg = f"unknown {what} {value!r}"
        if list_known:
            msg += "; known: " + ", ".join(t.name.lower() for t in enum if t)
        raise KernelError(msg) from None
