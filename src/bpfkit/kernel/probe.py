"""What this kernel supports, found by asking it, as ``bpftool feature probe kernel`` lists
it: program types (a trivial program of the type loads), map types (a small map of the type
is created), and the helpers each program type may call (a program calling the helper is
not refused with "unknown func", "invalid func" or "program of this type cannot use
helper" — the verifier's words for it, depending on the kernel's age).

API::

    prog_type_available(t) -> bool
    map_type_available(t) -> bool
    helper_available(prog_type, helper_id) -> bool
    available_helpers(prog_type) -> list[str]     # names, by helper id
    system_config() -> dict         # the BPF sysctls and kernel config options bpftool reports
    misc_features() -> dict         # large programs, bounded loops, v2/v3 jumps
    probe(helpers=True, full=False) -> dict   # bpftool's JSON shape: system_config,
                                    #   syscall_config, program_types, map_types, helpers
                                    #   ("<type>_available_helpers"), misc
    probe_text(result) -> str       # bpftool's text for that dict
"""

from __future__ import annotations

import ctypes
import errno
import functools
import mmap
from typing import Any

from bpfkit.syscalls import Cmd, Fd, attrs, bpf_errno
from bpfkit.uapi import AttachType, MapType, ProgType
from bpfkit.uapi.helpers import HELPERS
from bpfkit.uapi.names import type_name

ENOTSUPP = 524  # the kernel's internal "not supported", seen by user space as 524
_EXIT0 = bytes.fromhex("b7000000000000009500000000000000")  # r0 = 0; exit

# Program types that load only with an expected attach type (or flags) set.
_ATTACH: dict[int, int] = {
    ProgType.CGROUP_SOCK_ADDR: AttachType.CGROUP_INET4_CONNECT,
    ProgType.CGROUP_SOCKOPT: AttachType.CGROUP_GETSOCKOPT,
    ProgType.SK_LOOKUP: AttachType.SK_LOOKUP,
    ProgType.LIRC_MODE2: AttachType.LIRC_MODE2,
    ProgType.NETFILTER: AttachType.NETFILTER,
}
_SLEEPABLE = 1 << 4  # BPF_F_SLEEPABLE: syscall programs are sleepable
# Types that need a BTF attach target to load at all: a bare load cannot tell whether the
# kernel has them, so they are reported unavailable, as bpftool does.
_NEEDS_TARGET = {ProgType.TRACING, ProgType.EXT, ProgType.LSM}
_HELPER_REFUSED = ("unknown func ", "invalid func ", "program of this type cannot use helper ")


def _load(prog_type: int, code: bytes, log: bool) -> tuple[int, str]:
    """Load ``code`` as ``prog_type``: (errno or 0, the verifier's log when ``log``)."""
    ibuf = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(b"GPL")
    lbuf = ctypes.create_string_buffer(4096 if log else 1)
    attr = attrs.ProgLoadAttr(
        prog_type=prog_type,
        insn_cnt=len(code) // 8,
        insns=ctypes.addressof(ibuf),
        license=ctypes.addressof(lic),
        expected_attach_type=_ATTACH.get(prog_type, 0),
        prog_flags=_SLEEPABLE if prog_type == ProgType.SYSCALL else 0,
    )
    if log:
        attr.log_level, attr.log_size, attr.log_buf = 1, len(lbuf), ctypes.addressof(lbuf)
    fd, err = bpf_errno(Cmd.PROG_LOAD, attr)
    if fd >= 0:
        Fd(fd, "probe program").close()
        return 0, ""
    return err, lbuf.value.decode(errors="replace") if log else ""


@functools.cache
def prog_type_available(prog_type: int) -> bool:
    """True if this kernel loads programs of ``prog_type``."""
    if prog_type in _NEEDS_TARGET:
        return False
    err, _ = _load(prog_type, _EXIT0, log=False)
    # struct_ops: the type exists when the kernel asks for its (missing) attach target.
    return err == 0 or (prog_type == ProgType.STRUCT_OPS and err in (ENOTSUPP, errno.EINVAL))


def helper_available(prog_type: int, helper_id: int) -> bool:
    """True if a ``prog_type`` program may call helper ``helper_id`` here."""
    call = bytes([0x85, 0, 0, 0]) + helper_id.to_bytes(4, "little")
    err, log = _load(prog_type, call + _EXIT0[8:], log=True)
    return err == 0 or not any(s in log for s in _HELPER_REFUSED)


def available_helpers(prog_type: int) -> list[str]:
    """The helpers a ``prog_type`` program may call here (none if the type is missing)."""
    if not prog_type_available(prog_type) or prog_type == ProgType.STRUCT_OPS:
        return []  # struct_ops programs load only against a target: nothing to ask
    return [h.name for h in HELPERS if h.id and helper_available(prog_type, h.id)]


def _btf_for_storage() -> Fd | None:
    """A BTF of ``int`` (id 1) and ``struct { int a; int b; }`` (id 2) that local-storage
    maps need for their value."""
    from bpfkit.btf import types as T
    from bpfkit.btf.encode import BtfBuilder
    from bpfkit.errors import KernelError
    from bpfkit.kernel.btf_load import load_btf

    b = BtfBuilder()
    i = b.add(T.Int(0, "int", 4, T.INT_SIGNED, 0, 32))
    b.add(T.Struct(0, "val", 8, (T.Member("a", i, 0), T.Member("b", i, 32))))
    try:
        return load_btf(b.encode(), what="probe BTF")
    except KernelError:
        return None


def _create(attr: attrs.MapCreateAttr) -> int:
    fd, err = bpf_errno(Cmd.MAP_CREATE, attr)
    if fd >= 0:
        Fd(fd, "probe map").close()
        return 0
    return err


@functools.cache
def map_type_available(map_type: int) -> bool:
    """True if this kernel creates maps of ``map_type``."""
    t = map_type
    key, value, entries, flags, extra = 4, 4, 1, 0, 0
    if t in (MapType.LPM_TRIE,):
        key, value, flags = 8, 8, attrs.F_NO_PREALLOC
    elif t == MapType.STACK_TRACE:
        value = 8
    elif t in (MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER):
        key = 0
    elif t in (MapType.RINGBUF, MapType.USER_RINGBUF):
        key, value, entries = 0, 0, mmap.PAGESIZE
    elif t in (MapType.CGROUP_STORAGE, MapType.PERCPU_CGROUP_STORAGE):
        key, value, entries = 16, 8, 0  # struct bpf_cgroup_storage_key
    elif t == MapType.ARENA:
        key, value, entries, flags = 0, 0, 1, attrs.F_MMAPABLE
    if t == MapType.STRUCT_OPS:
        # Without a vmlinux value type the kernel says ENOTSUPP only if it knows the type.
        struct_ops = attrs.MapCreateAttr(
            map_type=map_type,
            key_size=4,
            value_size=4,
            max_entries=1,
            btf_vmlinux_value_type_id=1,
        )
        return _create(struct_ops) == ENOTSUPP
    attr = attrs.MapCreateAttr(
        map_type=map_type,
        key_size=key,
        value_size=value,
        max_entries=entries,
        map_flags=flags,
        map_extra=extra,
    )
    if t in (
        MapType.SK_STORAGE,
        MapType.INODE_STORAGE,
        MapType.TASK_STORAGE,
        MapType.CGRP_STORAGE,
    ):
        btf = _btf_for_storage()
        if btf is None:
            return False
        with btf:
            attr.value_size, attr.max_entries, attr.map_flags = 8, 0, attrs.F_NO_PREALLOC
            attr.btf_fd, attr.btf_key_type_id, attr.btf_value_type_id = btf.fd, 1, 2
            return _create(attr) == 0
    if t in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
        inner_attr = attrs.MapCreateAttr(
            map_type=MapType.ARRAY, key_size=4, value_size=4, max_entries=1
        )
        inner, _ = bpf_errno(Cmd.MAP_CREATE, inner_attr)
        if inner < 0:
            return False
        with Fd(inner, "probe inner map"):
            attr.inner_map_fd = inner
            return _create(attr) == 0
    return _create(attr) == 0


# The sysctls bpftool reports, with its sentences for their values (-1: unreadable).
_SYSCTLS: tuple[tuple[str, str, dict[int, str], str], ...] = (
    (
        "unprivileged_bpf_disabled",
        "/proc/sys/kernel/unprivileged_bpf_disabled",
        {
            0: "bpf() syscall for unprivileged users is enabled",
            1: "bpf() syscall restricted to privileged users (without recovery)",
            2: "bpf() syscall restricted to privileged users (admin can change)",
            -1: "Unable to retrieve required privileges for bpf() syscall",
        },
        "bpf() syscall restriction has unknown value {}",
    ),
    (
        "bpf_jit_enable",
        "/proc/sys/net/core/bpf_jit_enable",
        {
            0: "JIT compiler is disabled",
            1: "JIT compiler is enabled",
            2: "JIT compiler is enabled with debugging traces in kernel logs",
            -1: "Unable to retrieve JIT-compiler status",
        },
        "JIT-compiler status has unknown value {}",
    ),
    (
        "bpf_jit_harden",
        "/proc/sys/net/core/bpf_jit_harden",
        {
            0: "JIT compiler hardening is disabled",
            1: "JIT compiler hardening is enabled for unprivileged users",
            2: "JIT compiler hardening is enabled for all users",
            -1: "Unable to retrieve JIT hardening status",
        },
        "JIT hardening status has unknown value {}",
    ),
    (
        "bpf_jit_kallsyms",
        "/proc/sys/net/core/bpf_jit_kallsyms",
        {
            0: "JIT compiler kallsyms exports are disabled",
            1: "JIT compiler kallsyms exports are enabled for root",
            -1: "Unable to retrieve JIT kallsyms export status",
        },
        "JIT kallsyms exports status has unknown value {}",
    ),
    (
        "bpf_jit_limit",
        "/proc/sys/net/core/bpf_jit_limit",
        {-1: "Unable to retrieve global memory limit for JIT compiler for unprivileged users"},
        "Global memory limit for JIT compiler for unprivileged users is {} bytes",
    ),
)

# The kernel config options bpftool reports, in its order.
_CONFIG_OPTIONS = (
    "CONFIG_BPF CONFIG_BPF_SYSCALL CONFIG_HAVE_EBPF_JIT CONFIG_BPF_JIT CONFIG_BPF_JIT_ALWAYS_ON "
    "CONFIG_DEBUG_INFO_BTF CONFIG_DEBUG_INFO_BTF_MODULES CONFIG_CGROUPS CONFIG_CGROUP_BPF "
    "CONFIG_CGROUP_NET_CLASSID CONFIG_SOCK_CGROUP_DATA CONFIG_BPF_EVENTS CONFIG_KPROBE_EVENTS "
    "CONFIG_UPROBE_EVENTS CONFIG_TRACING CONFIG_FTRACE_SYSCALLS CONFIG_FUNCTION_ERROR_INJECTION "
    "CONFIG_BPF_KPROBE_OVERRIDE CONFIG_NET CONFIG_XDP_SOCKETS CONFIG_LWTUNNEL_BPF "
    "CONFIG_NET_ACT_BPF CONFIG_NET_CLS_BPF CONFIG_NET_CLS_ACT CONFIG_NET_SCH_INGRESS CONFIG_XFRM "
    "CONFIG_IP_ROUTE_CLASSID CONFIG_IPV6_SEG6_BPF CONFIG_BPF_LIRC_MODE2 CONFIG_BPF_STREAM_PARSER "
    "CONFIG_NETFILTER_XT_MATCH_BPF CONFIG_BPFILTER CONFIG_BPFILTER_UMH CONFIG_TEST_BPF CONFIG_HZ"
).split()


def _read_sysctl(path: str) -> int:
    """The number in a /proc/sys file, -1 when it cannot be read (bpftool's read_procfs)."""
    try:
        with open(path) as f:
            line = f.readline()
        if not line.endswith("\n"):
            return -1
        return int(line[:-1], 10)
    except (OSError, ValueError):
        return -1


def system_config() -> dict[str, Any]:
    """bpftool's ``system_config``: the BPF sysctls (-1 when unreadable) and the kernel
    config options it looks at (None when not set or no config is readable)."""
    from bpfkit.kernel.target import kernel_config

    out: dict[str, Any] = {name: _read_sysctl(path) for name, path, _, _ in _SYSCTLS}
    config = kernel_config()
    for option in _CONFIG_OPTIONS:
        value = config.get(option)
        out[option] = None if value in (None, "", "n") else value
    return out


def _loads(code: bytes) -> bool:
    err, _ = _load(ProgType.SOCKET_FILTER, code, log=False)
    return err == 0


_MOV_R0 = bytes.fromhex("b7000000")  # r0 = imm (the imm follows)
_EXIT = bytes.fromhex("9500000000000000")
_BPF_MAXINSNS = 4096


def misc_features() -> dict[str, bool]:
    """bpftool's ``misc`` probes: socket filters that only load where the kernel has the
    feature (a program longer than 4096 instructions, a bounded loop, the v2 and v3
    jump instructions)."""

    def mov(imm: int) -> bytes:
        return _MOV_R0 + imm.to_bytes(4, "little")

    jlt = bytes.fromhex("a5000100") + bytes(4)  # if r0 < 0 goto +1
    jlt32 = bytes.fromhex("a6000100") + bytes(4)  # if w0 < 0 goto +1
    loop = mov(10) + bytes.fromhex("1700000001000000") + bytes.fromhex("5500feff00000000")
    return {
        "have_large_insn_limit": _loads(mov(1) * _BPF_MAXINSNS + _EXIT),
        "have_bounded_loops": _loads(loop + _EXIT),
        "have_v2_isa_extension": _loads(mov(0) + jlt + mov(1) + _EXIT),
        "have_v3_isa_extension": _loads(mov(0) + jlt32 + mov(1) + _EXIT),
    }


# Helpers whose use writes to the kernel log: bpftool probes them only in ``full`` mode.
_NOISY_HELPERS = {"bpf_trace_printk", "bpf_trace_vprintk", "bpf_probe_write_user"}


def probe(*, helpers: bool = True, full: bool = False) -> dict[str, Any]:
    """Everything probed, in ``bpftool -j feature probe kernel [full]``'s shape and key
    names: system_config, syscall_config, program_types, map_types, helpers
    ("<type>_available_helpers"; without ``full`` the helpers that write to the kernel
    log are not tried), misc."""
    out: dict[str, Any] = {
        "system_config": system_config(),
        "syscall_config": {"have_bpf_syscall": True},
    }
    ptypes = [t for t in ProgType if t != ProgType.UNSPEC]
    out["program_types"] = {
        f"have_{t.name.lower()}_prog_type": prog_type_available(t) for t in ptypes
    }
    out["map_types"] = {
        f"have_{type_name(MapType, t)}_map_type": map_type_available(t)
        for t in MapType
        if t != MapType.UNSPEC
    }
    if helpers:
        out["helpers"] = {
            f"{t.name.lower()}_available_helpers": [
                h for h in available_helpers(t) if full or h not in _NOISY_HELPERS
            ]
            for t in ptypes
        }
    out["misc"] = misc_features()
    return out


_MISC_TEXT = {
    "have_large_insn_limit": "Large program size limit",
    "have_bounded_loops": "Bounded loop support",
    "have_v2_isa_extension": "ISA extension v2",
    "have_v3_isa_extension": "ISA extension v3",
}


def probe_text(result: dict[str, Any]) -> str:
    """The text ``bpftool feature probe kernel`` prints for these sections (each ends
    with an empty line)."""
    out: list[str] = []
    if "system_config" in result:
        out.append("Scanning system configuration...")
        config = result["system_config"]
        for name, _, sentences, other in _SYSCTLS:
            if name in config:
                value = config[name]
                out.append(sentences.get(value, other.format(value)))
        for option in _CONFIG_OPTIONS:
            if option in config:
                value = config[option]
                out.append(
                    f"{option} is not set" if value is None else f"{option} is set to {value}"
                )
        out.append("")
    out += ["Scanning system call availability...", "bpf() syscall is available", ""]
    out.append("Scanning eBPF program types...")
    for key, ok in result["program_types"].items():
        name = key.removeprefix("have_").removesuffix("_prog_type")
        out.append(f"eBPF program_type {name} is {'available' if ok else 'NOT available'}")
    out += ["", "Scanning eBPF map types..."]
    for key, ok in result["map_types"].items():
        name = key.removeprefix("have_").removesuffix("_map_type")
        out.append(f"eBPF map_type {name} is {'available' if ok else 'NOT available'}")
    out.append("")
    if "helpers" in result:
        out.append("Scanning eBPF helper functions...")
        for key, names in result["helpers"].items():
            ptype = key.removesuffix("_available_helpers")
            out.append(f"eBPF helpers supported for program type {ptype}:")
            out += [f"\t- {n}" for n in names]
            if not names:
                if not result["program_types"].get(f"have_{ptype}_prog_type"):
                    out.append("\tProgram type not supported")
                else:
                    out.append("\tCould not determine which helpers are available")
        out.append("")
    if "misc" in result:
        out.append("Scanning miscellaneous eBPF features...")
        for key, ok in result["misc"].items():
            out.append(f"{_MISC_TEXT[key]} is {'available' if ok else 'NOT available'}")
        out.append("")
    return "\n".join(out)
