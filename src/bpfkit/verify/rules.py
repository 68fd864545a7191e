"""What each program type may do, as the kernel's rules say (Linux 6.18): the context it
gets (size, which fields are packet pointers, which may be written) and the helpers it may
not call.  Types not listed get permissive rules (loads from the context are numbers, every
helper is allowed), so bpfkit's verifier errs towards accepting what it does not model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bpfkit.uapi._generated import CTX_FIELDS

KERNEL_RULES = "6.18"  # the kernel version whose rules this module and the verifier apply


def _size(struct: str) -> int:
    return max(off + size for _, off, size in CTX_FIELDS[struct])


@dataclass(frozen=True)
class CtxRules:
    """The context (r1 on entry) of one program type."""

    size: int | None  # bytes readable from offset 0; None: anything (not modelled)
    pointers: dict[int, str] = field(default_factory=dict)  # offset -> pkt, pkt_end, pkt_meta
    forbidden: frozenset[int] = frozenset()  # offsets that may not be read
    writable: frozenset[int] = frozenset()  # 4-byte fields that may be written
    exact_size: int | None = None  # loads must have this size (xdp_md: 4)
    packet_writable: bool = True


_SKB = _size("__sk_buff")
_CB = frozenset(range(48, 68, 4))
_SKB_PTRS = {76: "pkt", 80: "pkt_end", 140: "pkt_meta"}
_SKB_FIELDS = {name: off for name, off, _ in CTX_FIELDS["__sk_buff"]}

CTX: dict[str, CtxRules] = {
    "xdp": CtxRules(
        _size("xdp_md"),
        {0: "pkt", 4: "pkt_end", 8: "pkt_meta"},
        exact_size=4,
        forbidden=frozenset({20}),  # egress_ifindex: devmap programs only
    ),
    "socket_filter": CtxRules(
        _SKB,
        forbidden=frozenset(
            {76, 80, 140, _SKB_FIELDS.get("tc_classid", 72), _SKB_FIELDS.get("flow_keys", 144)}
        ),
        writable=_CB,
        packet_writable=False,
    ),
    "sched_cls": CtxRules(_SKB, _SKB_PTRS, writable=_CB | {8, 12, 20, 36, 72}),
    "sched_act": CtxRules(_SKB, _SKB_PTRS, writable=_CB | {8, 12, 20, 36, 72}),
    "kprobe": CtxRules(168),
}

# Helper families only some program types may call (kernel's *_func_proto per type;
# checked against Linux 6.18 for xdp, socket_filter, sched_cls and kprobe: privileged
# programs of every type get probe_read_kernel/user, get_current_task, send_signal, ...).
_TRACING = {
    "kprobe",
    "tracepoint",
    "raw_tracepoint",
    "perf_event",
    "tracing",
    "raw_tracepoint_writable",
    "syscall",
    "lsm",
}
_SKB_TYPES = {
    "sched_cls",
    "sched_act",
    "socket_filter",
    "cgroup_skb",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "lwt_seg6local",
    "sk_skb",
    "flow_dissector",
}
_ONLY: dict[str, set[str]] = {
    "bpf_probe_read": _TRACING,
    "bpf_probe_read_str": _TRACING,
    "bpf_probe_write_user": set(),  # refused on the reference kernel (lockdown)
    "bpf_get_stackid": _TRACING,
    "bpf_get_stack": _TRACING,
    "bpf_override_return": set(),  # needs CONFIG_BPF_KPROBE_OVERRIDE (absent here)
    "bpf_get_func_ip": _TRACING,
    "bpf_xdp_adjust_head": {"xdp"},
    "bpf_xdp_adjust_tail": {"xdp"},
    "bpf_xdp_adjust_meta": {"xdp"},
    "bpf_skb_load_bytes": _SKB_TYPES,
    "bpf_skb_store_bytes": _SKB_TYPES - {"socket_filter"},
    "bpf_skb_change_head": _SKB_TYPES - {"socket_filter"},
    "bpf_skb_change_tail": _SKB_TYPES - {"socket_filter"},
    "bpf_skb_pull_data": _SKB_TYPES - {"socket_filter"},
    "bpf_l3_csum_replace": _SKB_TYPES - {"socket_filter"},
    "bpf_l4_csum_replace": _SKB_TYPES - {"socket_filter"},
    "bpf_clone_redirect": _SKB_TYPES - {"socket_filter"},
    "bpf_skb_vlan_push": _SKB_TYPES - {"socket_filter"},
    "bpf_skb_vlan_pop": _SKB_TYPES - {"socket_filter"},
}


def helper_allowed(name: str, prog_type: str) -> bool:
    """False if ``prog_type`` may not call the helper ``name`` (bpf_... spelling)."""
    only = _ONLY.get(name)
    return only is None or prog_type in only


def ctx_rules(prog_type: str) -> CtxRules:
    """The context rules of ``prog_type`` (permissive if not modelled)."""
    return CTX.get(prog_type, CtxRules(None))


# Program types whose return value the kernel checks at program exit (check_return_code,
# Linux 6.18), as [min, max]; other types are not checked (or not modelled).
_RETURN: dict[str, tuple[int, int]] = dict.fromkeys(
    (
        "cgroup_skb",
        "cgroup_sock",
        "cgroup_sock_addr",
        "sock_ops",
        "cgroup_device",
        "cgroup_sysctl",
        "cgroup_sockopt",
        "sk_lookup",
        "netfilter",
    ),
    (0, 1),
)


def return_range(prog_type: str, attach_type: str = "") -> tuple[int, int] | None:
    """The values a ``prog_type`` program loaded with expected attach type ``attach_type``
    (``"cgroup_inet_egress"``, lower case; ``""`` for none) may return, or None if the
    kernel does not check."""
    if prog_type == "cgroup_skb" and attach_type == "cgroup_inet_egress":
        return (0, 3)  # egress programs may also ask for congestion notification
    if prog_type == "cgroup_sock_addr" and attach_type.endswith(("getpeername", "getsockname")):
        return (1, 1)
    return _RETURN.get(prog_type)
