"""What a program's return value means, by program type: the verdict enums of the uapi.

``verdict(prog_type, retval)`` is the named member (``XdpAction.XDP_PASS``) for programs
whose return value is one of an enum's (XDP, tc, socket-map/lookup, lwt and flow
dissector programs), else None: a socket filter returns a length, a kprobe anything.
The enums themselves are generated (:mod:`bpfkit.uapi._generated`).
"""

from __future__ import annotations

from enum import IntEnum

from bpfkit.uapi._generated import ProgType, RetCode, SkAction, TcAction, XdpAction

# Which enum the kernel reads a program's return value as (include/uapi/linux/bpf.h,
# include/uapi/linux/pkt_cls.h; flow dissector: BPF_OK/BPF_DROP/BPF_FLOW_DISSECTOR_CONTINUE).
VERDICTS: dict[int, type[IntEnum]] = {
    ProgType.XDP: XdpAction,
    ProgType.SCHED_CLS: TcAction,
    ProgType.SCHED_ACT: TcAction,
    ProgType.SK_SKB: SkAction,
    ProgType.SK_MSG: SkAction,
    ProgType.SK_REUSEPORT: SkAction,
    ProgType.SK_LOOKUP: SkAction,
    ProgType.LWT_IN: RetCode,
    ProgType.LWT_OUT: RetCode,
    ProgType.LWT_XMIT: RetCode,
    ProgType.LWT_SEG6LOCAL: RetCode,
    ProgType.FLOW_DISSECTOR: RetCode,
}


def _type_number(prog_type: int | str | None) -> int | None:
    if prog_type is None or isinstance(prog_type, int):
        return prog_type
    name = prog_type.upper().removeprefix("BPF_PROG_TYPE_")
    member = ProgType.__members__.get(name)
    return None if member is None else int(member)


def verdict(prog_type: int | str | None, retval: int) -> IntEnum | None:
    """The member of ``prog_type``'s verdict enum that ``retval`` is (a u32 as
    BPF_PROG_TEST_RUN reports it, or the VM's r0), or None.  ``prog_type``: a number
    or a name (``"xdp"``, ``"BPF_PROG_TYPE_SCHED_CLS"``)."""
    enum = VERDICTS.get(_type_number(prog_type) or 0)
    if enum is None:
        return None
    value = retval & 0xFFFFFFFF  # the kernel reads r0 as a 32-bit int
    if value >= 1 << 31:
        value -= 1 << 32  # TC_ACT_UNSPEC is -1
    try:
        return enum(value)
    except ValueError:
        return None


def retval_text(prog_type: int | str | None, retval: int) -> str:
    """``2 (XDP_PASS)`` where the value is a verdict of the program's type, else
    ``2 (0x2)`` (what ``bpfkit vm`` and ``bpfkit test-run`` print after ``retval:``)."""
    named = verdict(prog_type, retval)
    return f"{retval} ({named.name if named is not None else f'{retval:#x}'})"
