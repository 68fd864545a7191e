"""libbpf's section-name table: which program type (and expected attach type) a section means.

The rows follow libbpf's ``section_defs`` (its "Program Types and ELF Sections"
documentation): a prefix ``type`` matches that name exactly; ``type+`` matches ``type``
or ``type/extras``.  Like libbpf, the first matching row wins, so specific rows
(``tc/ingress``) come before general ones (``tc``).

Unlike libbpf 1.0, names that older libbpf, the kernel's samples/bpf, tutorials and the
seed still use are accepted too, in two more passes when the strict pass finds nothing:

1. ``type/suffix`` for an exact-match type (``socket/1``, ``xdp/my_prog``, ``perf_event/x``);
2. a plain prefix as libbpf < 1.0 matched it (``socket1``, ``xdp_drop``, ``kprobe__x``).

``?socket`` (libbpf 1.0) is ``socket`` not loaded unless asked for by name.
``kprobe/SyS_clone`` needs nothing special here (``kprobe+``); resolving ``SyS_`` to this
kernel's symbol is the attach layer's job.  An unknown name raises ObjectError saying how to
give the type with ``--type`` instead.

This module is the one owner of section names: the object reader stores what a name means
on each :class:`~bpfkit.obj.spec.ProgramSpec` (:func:`typed`: ``prog_type``,
``expected_attach_type``, ``attach_target``, ``prog_flags`` and ``kind``, the row matched),
and the loader, the VM, explain and the attach code read those fields, never the name.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from bpfkit.errors import ObjectError
from bpfkit.obj.spec import ObjectSpec, ProgramSpec
from bpfkit.uapi import AttachType as A
from bpfkit.uapi import ProgType as P

# Program flags some rows imply (BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS).
F_SLEEPABLE = 1 << 4
F_XDP_HAS_FRAGS = 1 << 5


@dataclass(frozen=True, slots=True)
class SectionDef:
    """One row: ``prefix`` (with a trailing ``+`` for the ``type/extras`` form)."""

    prefix: str
    prog_type: int
    attach_type: int = 0
    prog_flags: int = 0
    needs_btf_id: bool = False  # fentry/fexit/lsm/iter...: the target's id in vmlinux BTF

    @property
    def name(self) -> str:
        """The prefix without its ``+``."""
        return self.prefix.rstrip("+")

    @property
    def extensible(self) -> bool:
        """True for ``type+`` rows."""
        return self.prefix.endswith("+")


@dataclass(frozen=True, slots=True)
class SectionType:
    """What a section name means: its row and the part after ``type/``."""

    section: str
    definition: SectionDef
    extras: str  # "SyS_clone" for "kprobe/SyS_clone"; "" when none
    legacy: bool = False  # matched only by a pre-1.0 libbpf rule
    autoload: bool = True  # False for "?type": loaded only when asked for by name

    @property
    def prog_type(self) -> int:
        """``enum bpf_prog_type``."""
        return self.definition.prog_type

    @property
    def attach_type(self) -> int:
        """The expected attach type passed at load (0 if none)."""
        return self.definition.attach_type

    @property
    def prog_flags(self) -> int:
        """BPF_PROG_LOAD flags implied by the section (sleepable, XDP frags)."""
        return self.definition.prog_flags

    @property
    def kind(self) -> str:
        """The row matched, without its ``+`` (``kretprobe``, ``cgroup/skb``)."""
        return self.definition.name


def _d(prefix: str, ptype: int, atype: int = 0, flags: int = 0, btf: bool = False) -> SectionDef:
    return SectionDef(prefix, int(ptype), int(atype), flags, btf)


S, X = F_SLEEPABLE, F_XDP_HAS_FRAGS

SECTION_DEFS: tuple[SectionDef, ...] = (
    _d("socket", P.SOCKET_FILTER),
    _d("sk_reuseport/migrate", P.SK_REUSEPORT, A.SK_REUSEPORT_SELECT_OR_MIGRATE),
    _d("sk_reuseport", P.SK_REUSEPORT, A.SK_REUSEPORT_SELECT),
    _d("kprobe+", P.KPROBE),
    _d("uprobe+", P.KPROBE),
    _d("uprobe.s+", P.KPROBE, 0, S),
    _d("kretprobe+", P.KPROBE),
    _d("uretprobe+", P.KPROBE),
    _d("uretprobe.s+", P.KPROBE, 0, S),
    _d("kprobe.multi+", P.KPROBE, A.TRACE_KPROBE_MULTI),
    _d("kretprobe.multi+", P.KPROBE, A.TRACE_KPROBE_MULTI),
    _d("kprobe.session+", P.KPROBE, A.TRACE_KPROBE_SESSION),
    _d("uprobe.multi+", P.KPROBE, A.TRACE_UPROBE_MULTI),
    _d("uretprobe.multi+", P.KPROBE, A.TRACE_UPROBE_MULTI),
    _d("uprobe.multi.s+", P.KPROBE, A.TRACE_UPROBE_MULTI, S),
    _d("uretprobe.multi.s+", P.KPROBE, A.TRACE_UPROBE_MULTI, S),
    _d("ksyscall+", P.KPROBE),
    _d("kretsyscall+", P.KPROBE),
    _d("usdt+", P.KPROBE),
    _d("usdt.s+", P.KPROBE, 0, S),
    _d("tc/ingress", P.SCHED_CLS, A.TCX_INGRESS),
    _d("tc/egress", P.SCHED_CLS, A.TCX_EGRESS),
    _d("tcx/ingress", P.SCHED_CLS, A.TCX_INGRESS),
    _d("tcx/egress", P.SCHED_CLS, A.TCX_EGRESS),
    _d("tc", P.SCHED_CLS),
    _d("classifier", P.SCHED_CLS),
    _d("action", P.SCHED_ACT),
    _d("netkit/primary", P.SCHED_CLS, A.NETKIT_PRIMARY),
    _d("netkit/peer", P.SCHED_CLS, A.NETKIT_PEER),
    _d("tracepoint+", P.TRACEPOINT),
    _d("tp+", P.TRACEPOINT),
    _d("raw_tracepoint+", P.RAW_TRACEPOINT),
    _d("raw_tp+", P.RAW_TRACEPOINT),
    _d("raw_tracepoint.w+", P.RAW_TRACEPOINT_WRITABLE),
    _d("raw_tp.w+", P.RAW_TRACEPOINT_WRITABLE),
    _d("tp_btf+", P.TRACING, A.TRACE_RAW_TP, 0, True),
    _d("fentry+", P.TRACING, A.TRACE_FENTRY, 0, True),
    _d("fmod_ret+", P.TRACING, A.MODIFY_RETURN, 0, True),
    _d("fexit+", P.TRACING, A.TRACE_FEXIT, 0, True),
    _d("fentry.s+", P.TRACING, A.TRACE_FENTRY, S, True),
    _d("fmod_ret.s+", P.TRACING, A.MODIFY_RETURN, S, True),
    _d("fexit.s+", P.TRACING, A.TRACE_FEXIT, S, True),
    _d("freplace+", P.EXT, 0, 0, True),
    _d("lsm+", P.LSM, A.LSM_MAC, 0, True),
    _d("lsm.s+", P.LSM, A.LSM_MAC, S, True),
    _d("lsm_cgroup+", P.LSM, A.LSM_CGROUP, 0, True),
    _d("iter+", P.TRACING, A.TRACE_ITER, 0, True),
    _d("iter.s+", P.TRACING, A.TRACE_ITER, S, True),
    _d("syscall", P.SYSCALL, 0, S),
    _d("xdp.frags/devmap", P.XDP, A.XDP_DEVMAP, X),
    _d("xdp/devmap", P.XDP, A.XDP_DEVMAP),
    _d("xdp.frags/cpumap", P.XDP, A.XDP_CPUMAP, X),
    _d("xdp/cpumap", P.XDP, A.XDP_CPUMAP),
    _d("xdp.frags", P.XDP, A.XDP, X),
    _d("xdp", P.XDP, A.XDP),
    _d("perf_event", P.PERF_EVENT),
    _d("lwt_in", P.LWT_IN),
    _d("lwt_out", P.LWT_OUT),
    _d("lwt_xmit", P.LWT_XMIT),
    _d("lwt_seg6local", P.LWT_SEG6LOCAL),
    _d("sockops", P.SOCK_OPS, A.CGROUP_SOCK_OPS),
    _d("sk_skb/stream_parser", P.SK_SKB, A.SK_SKB_STREAM_PARSER),
    _d("sk_skb/stream_verdict", P.SK_SKB, A.SK_SKB_STREAM_VERDICT),
    _d("sk_skb/verdict", P.SK_SKB, A.SK_SKB_VERDICT),
    _d("sk_skb", P.SK_SKB),
    _d("sk_msg", P.SK_MSG, A.SK_MSG_VERDICT),
    _d("lirc_mode2", P.LIRC_MODE2, A.LIRC_MODE2),
    _d("flow_dissector", P.FLOW_DISSECTOR, A.FLOW_DISSECTOR),
    _d("cgroup_skb/ingress", P.CGROUP_SKB, A.CGROUP_INET_INGRESS),
    _d("cgroup_skb/egress", P.CGROUP_SKB, A.CGROUP_INET_EGRESS),
    _d("cgroup/skb", P.CGROUP_SKB),
    _d("cgroup/sock_create", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE),
    _d("cgroup/sock_release", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_RELEASE),
    _d("cgroup/sock", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE),
    _d("cgroup/post_bind4", P.CGROUP_SOCK, A.CGROUP_INET4_POST_BIND),
    _d("cgroup/post_bind6", P.CGROUP_SOCK, A.CGROUP_INET6_POST_BIND),
    _d("cgroup/bind4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_BIND),
    _d("cgroup/bind6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_BIND),
    _d("cgroup/connect4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_CONNECT),
    _d("cgroup/connect6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_CONNECT),
    _d("cgroup/connect_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_CONNECT),
    _d("cgroup/sendmsg4", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP4_SENDMSG),
    _d("cgroup/sendmsg6", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP6_SENDMSG),
    _d("cgroup/sendmsg_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_SENDMSG),
    _d("cgroup/recvmsg4", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP4_RECVMSG),
    _d("cgroup/recvmsg6", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP6_RECVMSG),
    _d("cgroup/recvmsg_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_RECVMSG),
    _d("cgroup/getpeername4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_GETPEERNAME),
    _d("cgroup/getpeername6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_GETPEERNAME),
    _d("cgroup/getpeername_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_GETPEERNAME),
    _d("cgroup/getsockname4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_GETSOCKNAME),
    _d("cgroup/getsockname6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_GETSOCKNAME),
    _d("cgroup/getsockname_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_GETSOCKNAME),
    _d("cgroup/sysctl", P.CGROUP_SYSCTL, A.CGROUP_SYSCTL),
    _d("cgroup/getsockopt", P.CGROUP_SOCKOPT, A.CGROUP_GETSOCKOPT),
    _d("cgroup/setsockopt", P.CGROUP_SOCKOPT, A.CGROUP_SETSOCKOPT),
    _d("cgroup/dev", P.CGROUP_DEVICE, A.CGROUP_DEVICE),
    _d("struct_ops+", P.STRUCT_OPS, 0, 0, True),
    _d("struct_ops.s+", P.STRUCT_OPS, 0, S, True),
    _d("sk_lookup", P.SK_LOOKUP, A.SK_LOOKUP),
    _d("netfilter", P.NETFILTER, A.NETFILTER),
)

# Pre-1.0 libbpf matched these prefixes with strncmp; the longest first, so that
# "kretprobe" is not taken for "kprobe" and "xdp_devmap" not for "xdp".
_LEGACY_PREFIXES: tuple[SectionDef, ...] = tuple(
    sorted(
        (d for d in SECTION_DEFS if "/" not in d.name and "." not in d.name),
        key=lambda d: -len(d.name),
    )
)


def _strict(name: str) -> SectionType | None:
    for d in SECTION_DEFS:
        base = d.name
        if name == base:
            return SectionType(name, d, "")
        if d.extensible and name.startswith(base + "/"):
            return SectionType(name, d, name[len(base) + 1 :])
    return None


@functools.lru_cache(maxsize=4096)
def resolve(name: str) -> SectionType | None:
    """What section ``name`` means (see the module docstring), or None if no row matches.

    A leading ``?`` (libbpf 1.0) marks a program that is not loaded by default."""
    if name.startswith("?"):
        t = resolve(name[1:])
        return None if t is None else replace(t, section=name, autoload=False)
    found = _strict(name)
    if found is not None:
        return found
    # libbpf < 1.0: "type/suffix" for exact types (socket/0, xdp/prog, perf_event/x).
    for d in SECTION_DEFS:
        if not d.extensible and name.startswith(d.name + "/"):
            return SectionType(name, d, name[len(d.name) + 1 :], legacy=True)
    # libbpf < 1.0: plain prefixes (socket1, xdp_pass, kprobe__sys_clone).
    for d in _LEGACY_PREFIXES:
        if name.startswith(d.name):
            return SectionType(name, d, name[len(d.name) :].lstrip("/_"), legacy=True)
    return None


def section_type(name: str) -> SectionType:
    """What section ``name`` means; ObjectError (listing the known names) if unknown."""
    found = resolve(name)
    if found is None:
        raise unknown_section(name)
    return found


def unknown_section(name: str) -> ObjectError:
    """The error for a section name no row matches: how to give the type instead."""
    return ObjectError(
        f"section {name!r}: unknown program section name, so its program type is unknown; "
        "give the type with --type TYPE (xdp, kprobe, tracepoint, socket_filter, sched_cls, "
        "cgroup_skb, ...; bpfkit explain OBJ shows what a section means), or rename the "
        'section as libbpf names them (SEC("xdp"), SEC("kprobe/FUNC"), '
        'SEC("tracepoint/CAT/NAME"), ...)'
    )


def retype(obj: ObjectSpec, prog_type: int) -> ObjectSpec:
    """``obj`` with every program typed as ``prog_type`` (``--type``; see :func:`typed`)."""
    return replace(obj, programs=tuple(typed(p, prog_type) for p in obj.programs))


def definition(kind: str) -> SectionDef | None:
    """The row called ``kind`` (a ProgramSpec's ``kind``), or None."""
    return _BY_KIND.get(kind)


def typed(spec: ProgramSpec, prog_type: int | None = None) -> ProgramSpec:
    """``spec`` with the program type, expected attach type, attach target, flags and row
    its section name means.  ``prog_type`` (``--type``) overrides the type: a type other
    than the name's keeps the target but drops the name's attach type, flags and row,
    which belong to the other type; sub-programs (``.text``) stay untyped."""
    t = None if spec.is_subprog else resolve(spec.section)
    if t is None or (prog_type is not None and prog_type != t.prog_type):
        target = t.extras if t is not None else ""
        return replace(
            spec,
            prog_type=prog_type or 0,
            expected_attach_type=0,
            attach_target=target,
            prog_flags=0,
            kind="",
        )
    return replace(
        spec,
        prog_type=t.prog_type,
        expected_attach_type=t.attach_type,
        attach_target=t.extras,
        prog_flags=t.prog_flags,
        kind=t.kind,
    )


def supported_names() -> str:
    """The section names bpfkit knows, as libbpf writes them (``kprobe/...``)."""
    return ", ".join(d.name + ("/..." if d.extensible else "") for d in SECTION_DEFS)


_BY_KIND: dict[str, SectionDef] = {d.name: d for d in SECTION_DEFS}
