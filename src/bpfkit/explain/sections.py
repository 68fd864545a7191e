"""What a program's section means, in words: explain's sentences, keyed by program type.

libbpf picks a program's type and attach point from its section name (``SEC("...")`` in
C, ``#[link_section = "..."]`` in Rust); the object reader resolves the name once
(:mod:`bpfkit.obj.sections`, libbpf's table) and stores the result on the
:class:`~bpfkit.obj.spec.ProgramSpec`.  :func:`explain_program_section` turns those
fields into sentences: where the program runs and what the context (r1) points to.
Sentences are keyed by program type (``_BY_TYPE``); a few rows of one type that run
elsewhere (a kretprobe is a KPROBE program run at the return) refine it (``_BY_KIND``).
A section explained is what it loads as: ``cgroup/skb`` is a CGROUP_SKB program,
``socket1`` (libbpf before 1.0) a socket filter.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpfkit.obj.sections import typed
from bpfkit.obj.spec import ProgramSpec
from bpfkit.uapi import AttachType, ProgType
from bpfkit.uapi._generated import CTX_FIELDS


@dataclass(frozen=True, slots=True)
class SectionInfo:
    """A section name explained."""

    name: str
    prog_type: str  # "BPF_PROG_TYPE_KPROBE", or "" if the name is no program section
    attach: str  # one sentence on where the program runs
    context: str  # what r1 points to on entry
    ctx_struct: str = ""  # the C type of the context, e.g. "struct pt_regs"
    target: str = ""  # the part after the prefix (function, tracepoint, hook)


@dataclass(frozen=True, slots=True)
class _Words:
    attach: str  # where it runs; {t} is the attach target
    context: str  # what r1 points to; {t} is the attach target
    ctx_struct: str = ""


_SKB = "struct __sk_buff"
_PKT = "the packet's socket buffer"
_REGS = "struct pt_regs"
_RAW = "struct bpf_raw_tracepoint_args"
_TP = _Words(
    "a tracepoint: runs each time the kernel hits the static tracepoint {t}",
    "the tracepoint's record (its format is in tracefs events/{t}/format)",
)
_LWT = "a lightweight-tunnel program ({}) on a route's packets"

# What every program of a type is.
_BY_TYPE: dict[ProgType, _Words] = {
    ProgType.SOCKET_FILTER: _Words(
        "a socket filter: decides which packets a socket receives", _PKT, _SKB
    ),
    ProgType.SK_REUSEPORT: _Words(
        "a SO_REUSEPORT program: picks the socket of a reuseport group a packet goes to",
        "the packet and the group",
        "struct sk_reuseport_md",
    ),
    ProgType.KPROBE: _Words(
        "a kprobe: runs each time the kernel enters the function {t}",
        "the CPU registers at the probed instruction (function arguments in PT_REGS_PARM1..5)",
        _REGS,
    ),
    ProgType.SCHED_CLS: _Words(
        "a tc classifier on a network device's ingress or egress", _PKT, _SKB
    ),
    ProgType.SCHED_ACT: _Words("a tc action", _PKT, _SKB),
    ProgType.TRACEPOINT: _TP,
    ProgType.RAW_TRACEPOINT: _Words(
        "a raw tracepoint on {t}", "the tracepoint's raw arguments, an array of u64", _RAW
    ),
    ProgType.RAW_TRACEPOINT_WRITABLE: _Words(
        "a writable raw tracepoint on {t} (may write the tracepoint's buffer)",
        "the tracepoint's raw arguments, an array of u64",
        _RAW,
    ),
    ProgType.TRACING: _Words(
        "an fentry program: runs at the entry of kernel function {t} (BPF trampoline)",
        "the function's arguments as u64s, typed by BTF",
    ),
    ProgType.EXT: _Words(
        "a freplace program: replaces the BPF function {t} of a loaded program",
        "the replaced function's arguments",
    ),
    ProgType.LSM: _Words("an LSM program on the security hook {t}", "the hook's arguments"),
    ProgType.SYSCALL: _Words("a program run by BPF_PROG_RUN from user space", "ctx"),
    ProgType.XDP: _Words(
        "an XDP program: runs for each packet a network device receives, before the kernel "
        "allocates an skb",
        "the packet: data and data_end pointers",
        "struct xdp_md",
    ),
    ProgType.PERF_EVENT: _Words(
        "a perf event program: runs on each sample of a perf event",
        "the sample's registers and period",
        "struct bpf_perf_event_data",
    ),
    ProgType.LWT_IN: _Words(_LWT.format("input"), _PKT, _SKB),
    ProgType.LWT_OUT: _Words(_LWT.format("output"), _PKT, _SKB),
    ProgType.LWT_XMIT: _Words(_LWT.format("transmit"), _PKT, _SKB),
    ProgType.LWT_SEG6LOCAL: _Words(_LWT.format("SRv6 local action"), _PKT, _SKB),
    ProgType.SOCK_OPS: _Words(
        "a socket-operations program (TCP events)",
        "the TCP socket operation",
        "struct bpf_sock_ops",
    ),
    ProgType.SK_SKB: _Words("a sockmap skb program ({t})", _PKT, _SKB),
    ProgType.SK_MSG: _Words("a sockmap message program", "the message", "struct sk_msg_md"),
    ProgType.LIRC_MODE2: _Words(
        "an infrared (LIRC mode2) decoder", "the raw IR sample, an unsigned int"
    ),
    ProgType.FLOW_DISSECTOR: _Words("a flow dissector", "the packet", _SKB),
    ProgType.CGROUP_SKB: _Words("a cgroup packet filter for the sockets of a cgroup", _PKT, _SKB),
    ProgType.CGROUP_SOCK: _Words(
        "a cgroup socket hook: runs when a process of the cgroup creates, binds or "
        "releases a socket",
        "the socket",
        "struct bpf_sock",
    ),
    ProgType.CGROUP_SOCK_ADDR: _Words(
        "a cgroup socket-address hook: runs on bind, connect, sendmsg, recvmsg or "
        "getpeername/getsockname of the cgroup's sockets",
        "the socket address",
        "struct bpf_sock_addr",
    ),
    ProgType.CGROUP_SYSCTL: _Words(
        "a cgroup sysctl hook: runs when a process of the cgroup reads or writes /proc/sys",
        "the sysctl access",
        "struct bpf_sysctl",
    ),
    ProgType.CGROUP_SOCKOPT: _Words(
        "a cgroup socket-option hook (getsockopt/setsockopt)",
        "the socket option",
        "struct bpf_sockopt",
    ),
    ProgType.CGROUP_DEVICE: _Words(
        "a cgroup device hook: decides which devices the cgroup's processes may use",
        "the device access",
        "struct bpf_cgroup_dev_ctx",
    ),
    ProgType.STRUCT_OPS: _Words("a struct_ops method ({t})", "the method's arguments"),
    ProgType.SK_LOOKUP: _Words("a socket lookup program", "the lookup", "struct bpf_sk_lookup"),
    ProgType.NETFILTER: _Words(
        "a netfilter hook program", "the netfilter hook state and skb", "struct bpf_nf_ctx"
    ),
}

# Rows (ProgramSpec.kind, without ".s") that run elsewhere than their type's sentence says.
_BY_KIND: dict[str, _Words] = {
    "kretprobe": _Words(
        "a kretprobe: runs each time the kernel function {t} returns",
        "the CPU registers at the return (the return value in PT_REGS_RC)",
        _REGS,
    ),
    "ksyscall": _Words(
        "a kprobe on the system call {t}'s kernel entry point (libbpf finds its "
        "architecture-specific name)",
        "the syscall's arguments, read with BPF_KSYSCALL",
        _REGS,
    ),
    "kretsyscall": _Words(
        "a kretprobe on the system call {t}'s kernel entry point",
        "the registers at the syscall's return",
        _REGS,
    ),
    "kprobe.multi": _Words(
        "a multi-kprobe on every kernel function matching {t}",
        "the CPU registers at entry of the function hit",
        _REGS,
    ),
    "kretprobe.multi": _Words(
        "a multi-kretprobe on every kernel function matching {t}",
        "the CPU registers at the return",
        _REGS,
    ),
    "kprobe.session": _Words(
        "a kprobe session on every kernel function matching {t}: runs at entry and return",
        "the CPU registers at entry or return",
        _REGS,
    ),
    "uprobe": _Words(
        "a uprobe: runs when a user-space program reaches {t}",
        "the user-space registers at the probed instruction",
        _REGS,
    ),
    "uretprobe": _Words(
        "a uretprobe: runs when the user-space function {t} returns",
        "the user-space registers at the return",
        _REGS,
    ),
    "uprobe.multi": _Words(
        "a multi-uprobe on every user-space function matching {t}",
        "the user-space registers at the probed instruction",
        _REGS,
    ),
    "uretprobe.multi": _Words(
        "a multi-uretprobe on every user-space function matching {t}",
        "the user-space registers at the return",
        _REGS,
    ),
    "usdt": _Words(
        "a USDT probe (user statically defined tracepoint) {t}",
        "the user-space registers; arguments through bpf_usdt_arg()",
        _REGS,
    ),
    "tp_btf": _Words("a BTF-typed tracepoint on {t}", "the tracepoint's arguments, typed by BTF"),
    "fexit": _Words(
        "an fexit program: runs when kernel function {t} returns (BPF trampoline)",
        "the function's arguments and return value",
    ),
    "fmod_ret": _Words(
        "an fmod_ret program: may override the return value of {t}", "the function's arguments"
    ),
    "iter": _Words("a BPF iterator over {t}", "the iterator's element"),
    # BPF_CGROUP_INET_INGRESS is attach type 0: say the direction in words.
    "cgroup_skb/ingress": _Words(
        "a cgroup packet filter on the packets the sockets of a cgroup receive (ingress)",
        _PKT,
        _SKB,
    ),
    "cgroup_skb/egress": _Words(
        "a cgroup packet filter on the packets the sockets of a cgroup send (egress)",
        _PKT,
        _SKB,
    ),
    **{
        f"{hook}/{way}": _Words(
            f"a tc classifier on a network device's {way} (libbpf attaches it with a tcx link)",
            _PKT,
            _SKB,
        )
        for hook in ("tc", "tcx")
        for way in ("ingress", "egress")
    },
    "netkit/primary": _Words("a netkit program on a netkit device's primary side", _PKT, _SKB),
    "netkit/peer": _Words("a netkit program on a netkit device's peer side", _PKT, _SKB),
    "lsm_cgroup": _Words(
        "an LSM program on the security hook {t}, for the processes of a cgroup",
        "the hook's arguments",
    ),
}

# Syscall names before Linux 4.17 (``SyS_clone``, ``sys_clone``) are today's
# ``__<arch>_sys_<name>`` wrappers (x86-64: ``__x64_sys_clone``, arm64: ``__arm64_sys_``).
_OLD_SYSCALL_PREFIXES = ("SyS_", "sys_")


def explain_program_section(prog: ProgramSpec) -> SectionInfo:
    """Explain where ``prog`` runs, from the type, attach type and target the object
    reader resolved from its section name (or that ``--type`` gave)."""
    name, target = prog.section, prog.attach_target
    if prog.is_subprog:
        return SectionInfo(
            name,
            "",
            "sub-programs (BPF functions called by programs); not loaded on their own",
            "whatever the caller passes in r1-r5",
        )
    try:
        ptype = ProgType(prog.prog_type) if prog.prog_type else None
    except ValueError:
        ptype = None
    if ptype is None or ptype not in _BY_TYPE:
        return SectionInfo(
            name, "", "not a section name libbpf knows; a loader must be told the program type", ""
        )
    kind = prog.kind.removesuffix(".s")
    words = _BY_KIND.get(kind) or _BY_TYPE[ptype]
    text = words.attach.format(t=target or "(given when attaching)")
    if kind in ("kprobe", "kretprobe") and target.startswith(_OLD_SYSCALL_PREFIXES):
        sc = target.split("_", 1)[1]
        text += (
            f"; {target} is the pre-4.17 name of the {sc} syscall's kernel function, "
            f"called __x64_sys_{sc} on today's x86-64 kernels (__arm64_sys_{sc} on arm64)"
        )
    if prog.expected_attach_type:
        text += f"; attach type BPF_{_attach_name(prog.expected_attach_type)}"
    ctxt = words.context.format(t=target)
    if words.ctx_struct:
        ctxt = f"{words.ctx_struct} *: {ctxt}"
    return SectionInfo(name, f"BPF_PROG_TYPE_{ptype.name}", text, ctxt, words.ctx_struct, target)


def explain_section(name: str, prog_type: int | None = None) -> SectionInfo:
    """Explain a section name (``kprobe/SyS_clone``, ``xdp``, ``.text``) as the object
    reader resolves it; ``prog_type`` as ``--type`` would override it."""
    spec = ProgramSpec(name, name, 0, 0, (), (), name == ".text" or name.startswith(".text."))
    return explain_program_section(typed(spec, prog_type))


def _attach_name(number: int) -> str:
    try:
        return AttachType(number).name
    except ValueError:
        return str(number)


# x86-64 calling convention: what the pt_regs fields a kprobe reads usually hold.
_PT_REGS_ROLE = {
    "di": "PT_REGS_PARM1, the first argument",
    "si": "PT_REGS_PARM2, the second argument",
    "dx": "PT_REGS_PARM3, the third argument",
    "cx": "PT_REGS_PARM4, the fourth argument",
    "r8": "PT_REGS_PARM5, the fifth argument",
    "r9": "PT_REGS_PARM6, the sixth argument",
    "ax": "PT_REGS_RC, the return value",
    "sp": "the stack pointer",
    "ip": "the instruction pointer",
}


def ctx_field(ctx_struct: str, off: int, size: int) -> str | None:
    """The context field a load or store of ``size`` bytes at ``off`` touches:
    ``skb->len``, ``regs->di (PT_REGS_PARM1, the first argument)``; None if unknown."""
    fields = CTX_FIELDS.get(ctx_struct.removeprefix("struct ").strip())
    if not fields:
        return None
    var = {"struct pt_regs": "regs", "struct __sk_buff": "skb", "struct xdp_md": "xdp"}.get(
        ctx_struct, "ctx"
    )
    best = None
    for name, at, n in fields:
        if name.endswith("[]") and n and off >= at and (off - at) % n == 0 and size <= n:
            return f"{var}->{name[:-2]}[{(off - at) // n}]"
        if at <= off and off + size <= at + n:
            inner = "" if (at, n) == (off, size) else f" (bytes {off - at}..{off - at + size - 1})"
            cand = f"{var}->{name}{inner}"
            if not inner:
                role = _PT_REGS_ROLE.get(name) if var == "regs" else None
                return cand + (f" ({role})" if role else "")
            best = best or cand
    return best
