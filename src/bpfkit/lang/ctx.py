"""The context each program type receives, as typed fields the compiler reads at fixed offsets.

- tracepoints: the fields of the event's ``format`` file in tracefs (``ctx.filename``,
  ``ctx.next_pid``, ``ctx.prev_comm`` ...); a syscall's ``sys_enter_*`` also has
  ``ctx.args[0..5]``, ``sys_exit_*`` has ``ctx.ret``.
- raw tracepoints: ``ctx.args[i]`` (u64), struct ``bpf_raw_tracepoint_args``.
- kprobes, uprobes, usdt: ``struct pt_regs`` (x86-64): ``ctx.arg0`` .. ``ctx.arg5`` (the
  System V argument registers), ``ctx.ret`` (rax), ``ctx.ip``, ``ctx.sp``, and the
  registers by name (``ctx.di``).
- perf_event: ``struct bpf_perf_event_data``: the registers, ``sample_period``, ``addr``.
- xdp: ``struct xdp_md``; skb programs (socket_filter, tc, cgroup_skb): ``struct __sk_buff``
  (uapi ``linux/bpf.h`` layouts).  Their packet is read with ``ctx.load(u16, 12)``, which
  the compiler guards with the bounds check the verifier wants (0 when out of range).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from bpfkit.lang.types import INT_TYPES, ArrayType, IntType, Type, i32, u8, u16, u32, u64

TRACEFS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))


@dataclass(frozen=True)
class CtxField:
    """A field of a context: offset, type; ``special`` marks packet pointers."""

    offset: int
    type: Type
    special: str = ""  # "pkt" (data), "pkt_end" (data_end), "pkt_meta"


@dataclass
class Context:
    """A program type's context."""

    name: str  # the C struct, for messages
    fields: dict[str, CtxField] = field(default_factory=dict)
    packet: str = ""  # "xdp", "skb_direct" (tc, cgroup_skb), "skb_load" (socket filter)
    size: int = 0  # the context's size, for test runs

    def names(self) -> str:
        """The field names, for messages."""
        return ", ".join(sorted(self.fields)) or "none"


# x86-64 struct pt_regs (arch/x86/include/asm/ptrace.h): 21 u64, in this order.
_PT_REGS = "r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di orig_ax ip cs flags sp ss".split()
_ARG_REGS = ("di", "si", "dx", "cx", "r8", "r9")


def _pt_regs(base: int = 0) -> dict[str, CtxField]:
    out = {n: CtxField(base + 8 * i, u64) for i, n in enumerate(_PT_REGS)}
    for i, reg in enumerate(_ARG_REGS):
        out[f"arg{i}"] = out[reg]
    out["ret"] = out["ax"]
    return out


_XDP = {
    "data": CtxField(0, u32, "pkt"),
    "data_end": CtxField(4, u32, "pkt_end"),
    "data_meta": CtxField(8, u32, "pkt_meta"),
    "ingress_ifindex": CtxField(12, u32),
    "rx_queue_index": CtxField(16, u32),
    "egress_ifindex": CtxField(20, u32),
}
# struct __sk_buff's stable head (uapi linux/bpf.h).
_SKB_NAMES = (
    "len pkt_type mark queue_mapping protocol vlan_present vlan_tci vlan_proto priority "
    "ingress_ifindex ifindex tc_index"
).split()
_SKB = {n: CtxField(4 * i, u32) for i, n in enumerate(_SKB_NAMES)}
_SKB.update(
    {
        "hash": CtxField(68, u32),
        "tc_classid": CtxField(72, u32),
        "data": CtxField(76, u32, "pkt"),
        "data_end": CtxField(80, u32, "pkt_end"),
        "napi_id": CtxField(84, u32),
        "family": CtxField(88, u32),
        "remote_ip4": CtxField(92, u32),
        "local_ip4": CtxField(96, u32),
        "remote_port": CtxField(164, u32),
        "local_port": CtxField(168, u32),
    }
)
SKB_SIZE = 192  # sizeof(struct __sk_buff) in 6.x


_FIELD = re.compile(
    r"field:(?P<decl>[^;]*);\s*offset:(?P<off>\d+);\s*size:(?P<size>\d+);\s*signed:(?P<signed>\d)"
)


def parse_format(text: str) -> dict[str, CtxField]:
    """The fields of a tracefs event ``format`` file (common_* fields included)."""
    out: dict[str, CtxField] = {}
    for m in _FIELD.finditer(text):
        decl, off, size = m["decl"].strip(), int(m["off"]), int(m["size"])
        signed = m["signed"] == "1"
        arr = re.search(r"(\w+)\s*\[(\d*)\]\s*$", decl)
        if arr:
            name = arr.group(1)
            count = int(arr.group(2) or 0) or size
            elem_size = max(size // max(count, 1), 1)
            elem: IntType = _int(elem_size, signed) or u8
            if count * elem.size == size and count > 0:
                out[name] = CtxField(off, ArrayType(elem, count))
            continue
        name = re.split(r"[\s*]+", decl)[-1]
        t = _int(size, signed)
        if t is not None and name:
            out[name] = CtxField(off, t)
    return out


def _int(size: int, signed: bool) -> IntType | None:
    return INT_TYPES.get(f"{'i' if signed else 'u'}{size * 8}")


def tracepoint_fields(target: str) -> dict[str, CtxField]:
    """The fields of tracepoint ``category/name``, from tracefs; for a syscall tracepoint
    without a readable tracefs, the layout every ``sys_enter_*``/``sys_exit_*`` shares."""
    category, _, name = target.partition("/")
    fields: dict[str, CtxField] = {}
    for root in TRACEFS:
        try:
            fields = parse_format((root / "events" / category / name / "format").read_text())
            break
        except OSError:
            continue
    if category == "syscalls" and name.startswith("sys_enter_"):
        fields.setdefault("__syscall_nr", CtxField(8, i32))
        fields["args"] = CtxField(16, ArrayType(u64, 6))
    elif category == "syscalls" and name.startswith("sys_exit_"):
        fields.setdefault("__syscall_nr", CtxField(8, i32))
        fields.setdefault("ret", CtxField(16, INT_TYPES["i64"]))
    elif not fields:
        return {}
    return fields


def context(kind: str, target: str = "") -> Context:
    """The context of a program of ``kind`` (a decorator name)."""
    if kind == "tracepoint":
        fields = tracepoint_fields(target)
        return Context(f"the {target} tracepoint's record", fields, size=0)
    if kind == "raw_tracepoint":
        return Context("struct bpf_raw_tracepoint_args", {"args": CtxField(0, ArrayType(u64, 12))})
    if kind in ("kprobe", "kretprobe", "uprobe", "uretprobe", "usdt"):
        return Context("struct pt_regs", _pt_regs(), size=8 * len(_PT_REGS))
    if kind == "perf_event":
        fields = _pt_regs()
        fields["sample_period"] = CtxField(168, u64)
        fields["addr"] = CtxField(176, u64)
        return Context("struct bpf_perf_event_data", fields, size=184)
    if kind == "xdp":
        return Context("struct xdp_md", dict(_XDP), packet="xdp", size=24)
    if kind == "socket_filter":
        fields = {k: v for k, v in _SKB.items() if not v.special}
        return Context("struct __sk_buff", fields, packet="skb_load", size=SKB_SIZE)
    if kind in ("tc", "cgroup_skb"):
        return Context("struct __sk_buff", dict(_SKB), packet="skb_direct", size=SKB_SIZE)
    return Context("the context", {})


_ = (u16,)
