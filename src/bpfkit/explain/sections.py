"""What a program's ELF section name means: libbpf's convention, in words.

libbpf picks a program's type and attach point from its section name (``SEC("...")`` in
C, ``#[link_section = "..."]`` in Rust): ``kprobe/do_sys_open`` is a kprobe program
attached to the kernel function ``do_sys_open``.  :func:`explain_section` says so, with
the program type (``BPF_PROG_TYPE_*``) and what the context argument (r1) points to.
The prefixes follow libbpf's ``section_defs`` table (libbpf 1.x).
"""

from __future__ import annotations

from dataclasses import dataclass

from bpfkit.uapi import ProgType
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


# prefix -> (program type, attach sentence with {t} for the target, context, ctx struct)
_DEFS: list[tuple[str, ProgType, str, str, str]] = [
    (
        "kprobe",
        ProgType.KPROBE,
        "a kprobe: runs each time the kernel enters the function {t}",
        "the CPU registers at the probed instruction (function arguments in PT_REGS_PARM1..5)",
        "struct pt_regs",
    ),
    (
        "kretprobe",
        ProgType.KPROBE,
        "a kretprobe: runs each time the kernel function {t} returns",
        "the CPU registers at the return (the return value in PT_REGS_RC)",
        "struct pt_regs",
    ),
    (
        "ksyscall",
        ProgType.KPROBE,
        "a kprobe on the system call {t}'s kernel entry point (libbpf finds its "
        "architecture-specific name)",
        "the syscall's arguments, read with BPF_KSYSCALL",
        "struct pt_regs",
    ),
    (
        "kretsyscall",
        ProgType.KPROBE,
        "a kretprobe on the system call {t}'s kernel entry point",
        "the registers at the syscall's return",
        "struct pt_regs",
    ),
    (
        "kprobe.multi",
        ProgType.KPROBE,
        "a multi-kprobe on every kernel function matching {t}",
        "the CPU registers at entry of the function hit",
        "struct pt_regs",
    ),
    (
        "kretprobe.multi",
        ProgType.KPROBE,
        "a multi-kretprobe on every kernel function matching {t}",
        "the CPU registers at the return",
        "struct pt_regs",
    ),
    (
        "uprobe",
        ProgType.KPROBE,
        "a uprobe: runs when a user-space program reaches {t}",
        "the user-space registers at the probed instruction",
        "struct pt_regs",
    ),
    (
        "uretprobe",
        ProgType.KPROBE,
        "a uretprobe: runs when the user-space function {t} returns",
        "the user-space registers at the return",
        "struct pt_regs",
    ),
    (
        "usdt",
        ProgType.KPROBE,
        "a USDT probe (user statically defined tracepoint) {t}",
        "the user-space registers; arguments through bpf_usdt_arg()",
        "struct pt_regs",
    ),
    (
        "tracepoint",
        ProgType.TRACEPOINT,
        "a tracepoint: runs each time the kernel hits the static tracepoint {t}",
        "the tracepoint's record (its format is in tracefs events/{t}/format)",
        "",
    ),
    (
        "tp",
        ProgType.TRACEPOINT,
        "a tracepoint: runs each time the kernel hits the static tracepoint {t}",
        "the tracepoint's record (its format is in tracefs events/{t}/format)",
        "",
    ),
    (
        "raw_tracepoint",
        ProgType.RAW_TRACEPOINT,
        "a raw tracepoint on {t}",
        "the tracepoint's raw arguments, an array of u64",
        "struct bpf_raw_tracepoint_args",
    ),
    (
        "raw_tp",
        ProgType.RAW_TRACEPOINT,
        "a raw tracepoint on {t}",
        "the tracepoint's raw arguments, an array of u64",
        "struct bpf_raw_tracepoint_args",
    ),
    (
        "tp_btf",
        ProgType.TRACING,
        "a BTF-typed tracepoint on {t}",
        "the tracepoint's arguments, typed by BTF",
        "",
    ),
    (
        "fentry",
        ProgType.TRACING,
        "an fentry program: runs at the entry of kernel function {t} (BPF trampoline)",
        "the function's arguments as u64s, typed by BTF",
        "",
    ),
    (
        "fexit",
        ProgType.TRACING,
        "an fexit program: runs when kernel function {t} returns (BPF trampoline)",
        "the function's arguments and return value",
        "",
    ),
    (
        "fmod_ret",
        ProgType.TRACING,
        "an fmod_ret program: may override the return value of {t}",
        "the function's arguments",
        "",
    ),
    (
        "lsm",
        ProgType.LSM,
        "an LSM program on the security hook {t}",
        "the hook's arguments",
        "",
    ),
    ("iter", ProgType.TRACING, "a BPF iterator over {t}", "the iterator's element", ""),
    (
        "xdp",
        ProgType.XDP,
        "an XDP program: runs for each packet a network device receives, before the kernel "
        "allocates an skb",
        "the packet: data and data_end pointers",
        "struct xdp_md",
    ),
    (
        "tc",
        ProgType.SCHED_CLS,
        "a tc classifier on a network device's ingress or egress",
        "the packet's socket buffer",
        "struct __sk_buff",
    ),
    (
        "classifier",
        ProgType.SCHED_CLS,
        "a tc classifier on a network device's ingress or egress",
        "the packet's socket buffer",
        "struct __sk_buff",
    ),
    (
        "action",
        ProgType.SCHED_ACT,
        "a tc action",
        "the packet's socket buffer",
        "struct __sk_buff",
    ),
    (
        "socket",
        ProgType.SOCKET_FILTER,
        "a socket filter: decides which packets a socket receives",
        "the packet's socket buffer",
        "struct __sk_buff",
    ),
    (
        "cgroup_skb",
        ProgType.CGROUP_SKB,
        "a cgroup packet filter ({t}) for the sockets of a cgroup",
        "the packet's socket buffer",
        "struct __sk_buff",
    ),
    (
        "cgroup",
        ProgType.CGROUP_SOCK,
        "a cgroup hook ({t}) for the processes of a cgroup",
        "the hook's context (socket, address or sysctl)",
        "",
    ),
    (
        "sockops",
        ProgType.SOCK_OPS,
        "a socket-operations program (TCP events)",
        "the TCP socket operation",
        "struct bpf_sock_ops",
    ),
    (
        "sk_skb",
        ProgType.SK_SKB,
        "a sockmap skb program ({t})",
        "the packet's socket buffer",
        "struct __sk_buff",
    ),
    (
        "sk_msg",
        ProgType.SK_MSG,
        "a sockmap message program",
        "the message",
        "struct sk_msg_md",
    ),
    (
        "sk_lookup",
        ProgType.SK_LOOKUP,
        "a socket lookup program",
        "the lookup",
        "struct bpf_sk_lookup",
    ),
    (
        "perf_event",
        ProgType.PERF_EVENT,
        "a perf event program: runs on each sample of a perf event",
        "the sample's registers and period",
        "struct bpf_perf_event_data",
    ),
    (
        "flow_dissector",
        ProgType.FLOW_DISSECTOR,
        "a flow dissector",
        "the packet",
        "struct __sk_buff",
    ),
    (
        "struct_ops",
        ProgType.STRUCT_OPS,
        "a struct_ops method ({t})",
        "the method's arguments",
        "",
    ),
    ("syscall", ProgType.SYSCALL, "a program run by BPF_PROG_RUN from user space", "ctx", ""),
]
_DEFS.sort(key=lambda d: -len(d[0]))  # longest prefix first: kretprobe before kprobe

# Syscall names before Linux 4.17 (``SyS_clone``, ``sys_clone``) are today's
# ``__<arch>_sys_<name>`` wrappers (x86-64: ``__x64_sys_clone``, arm64: ``__arm64_sys_``).
_OLD_SYSCALL_PREFIXES = ("SyS_", "sys_")


def explain_section(name: str) -> SectionInfo:
    """Explain a program section name (``kprobe/SyS_clone``, ``xdp``, ``.text``)."""
    if name == ".text" or name.startswith(".text."):
        return SectionInfo(
            name,
            "",
            "sub-programs (BPF functions called by programs); not loaded on their own",
            "whatever the caller passes in r1-r5",
        )
    for prefix, ptype, attach, ctx, ctx_struct in _DEFS:
        if name == prefix or name.startswith(prefix + "/") or name.startswith(prefix + "."):
            # "prefix.s" (sleepable), "xdp.frags", "uprobe.multi": variants of the same
            # type; "kprobe.multi" has its own row, matched first (longest prefix).
            target = name.split("/", 1)[1] if "/" in name else ""
            text = attach.format(t=target or "(given when attaching)")
            if prefix in ("kprobe", "kretprobe") and target.startswith(_OLD_SYSCALL_PREFIXES):
                sc = target.split("_", 1)[1]
                text += (
                    f"; {target} is the pre-4.17 name of the {sc} syscall's kernel function, "
                    f"called __x64_sys_{sc} on today's x86-64 kernels (__arm64_sys_{sc} on "
                    "arm64)"
                )
            ctxt = ctx.format(t=target)
            if ctx_struct:
                ctxt = f"{ctx_struct} *: {ctxt}"
            return SectionInfo(name, f"BPF_PROG_TYPE_{ptype.name}", text, ctxt, ctx_struct, target)
    return SectionInfo(
        name, "", "not a section name libbpf knows; a loader must be told the program type", ""
    )


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
