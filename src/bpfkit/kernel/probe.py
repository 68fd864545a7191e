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
    probe(helpers=True) -> dict     # bpftool's JSON shape: syscall_config, program_types,
                                    #   map_types, helpers ("<type>_available_helpers")
    probe_text(result) -> str       # bpftool's text lines for that dict
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


def probe(*, helpers: bool = True) -> dict[str, Any]:
    """Everything probed, in ``bpftool -j feature probe kernel``'s shape and key names."""
    out: dict[str, Any] = {"syscall_config": {"have_bpf_syscall": True}}
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
            f"{t.name.lower()}_available_helpers": available_helpers(t) for t in ptypes
        }
    return out


def probe_text(result: dict[str, Any]) -> str:
    """The lines ``bpftool feature probe kernel`` prints for these sections."""
    lines = ["Scanning eBPF program types..."]
    for key, ok in result["program_types"].items():
        name = key.removeprefix("have_").removesuffix("_prog_type")
        lines.append(f"eBPF program_type {name} is {'available' if ok else 'NOT available'}")
    lines += ["", "Scanning eBPF map types..."]
    for key, ok in result["map_types"].items():
        name = key.removeprefix("have_").removesuffix("_map_type")
        lines.append(f"eBPF map_type {name} is {'available' if ok else 'NOT available'}")
    if "helpers" in result:
        lines += ["", "Scanning eBPF helper functions..."]
        for key, names in result["helpers"].items():
            ptype = key.removesuffix("_available_helpers")
            lines.append(f"eBPF helpers supported for program type {ptype}:")
            if not result["program_types"].get(f"have_{ptype}_prog_type"):
                lines.append("\tProgram type not supported")
            lines += [f"\t- {n}" for n in names]
    return "\n".join(lines)
