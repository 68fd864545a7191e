"""Typed ``union bpf_attr`` layouts, one ctypes structure per ``bpf()`` command.

Field names, order and sizes are the kernel's uapi (``include/uapi/linux/bpf.h``); each
structure is the anonymous struct of the union that its command reads.  A command is
passed only its own structure and its size: the kernel zero-extends a shorter attr, and
rejects (E2BIG) a longer one only when the bytes it does not know are non-zero, so
fields newer than the running kernel are safe as long as they stay zero.

Fields added after Linux 6.1 (whose header Debian 12 ships) are marked with the kernel
version that added them.  ``__aligned_u64`` fields are ``c_uint64``: natural 8-byte
alignment on every 64-bit architecture bpfkit supports.
"""

from __future__ import annotations

import ctypes

from bpfkit.errors import KernelError
from bpfkit.uapi import Cmd as Cmd  # re-exported: commands are uapi data
from bpfkit.uapi import UpdateFlag

u8 = ctypes.c_uint8
u32 = ctypes.c_uint32
s32 = ctypes.c_int32
u64 = ctypes.c_uint64

OBJ_NAME_LEN = 16  # BPF_OBJ_NAME_LEN
TAG_SIZE = 8  # BPF_TAG_SIZE


# Flags of MAP_UPDATE_ELEM (the uapi's enum, short names).
ANY = UpdateFlag.BPF_ANY
NOEXIST = UpdateFlag.BPF_NOEXIST
EXIST = UpdateFlag.BPF_EXIST
F_LOCK = UpdateFlag.BPF_F_LOCK

# MAP_CREATE map_flags (subset).
F_NO_PREALLOC = 1 << 0
F_RDONLY = 1 << 3
F_WRONLY = 1 << 4
F_RDONLY_PROG = 1 << 7
F_WRONLY_PROG = 1 << 8
F_MMAPABLE = 1 << 10

# PROG_LOAD prog_flags (subset).
F_STRICT_ALIGNMENT = 1 << 0
F_ANY_ALIGNMENT = 1 << 1
F_SLEEPABLE = 1 << 4


_RANGES: dict[type, tuple[str, int, int]] = {
    u8: ("u8", 0, 2**8 - 1),
    ctypes.c_uint16: ("u16", 0, 2**16 - 1),
    u32: ("u32", 0, 2**32 - 1),
    s32: ("s32", -(2**31), 2**31 - 1),
    u64: ("u64", 0, 2**64 - 1),
}


_int_fields: dict[type, dict[str, tuple[str, int, int]]] = {}


def _field_types(cls: type) -> dict[str, tuple[str, int, int]]:
    """The integer fields of a structure and their (kind, min, max), bit fields by their
    width (cached per class)."""
    fields = _int_fields.get(cls)
    if fields is None:
        fields = {}
        for f in cls._fields_:  # type: ignore[attr-defined]
            if len(f) == 3:
                fields[f[0]] = (f"{f[2]}-bit", 0, 2 ** f[2] - 1)
            elif f[1] in _RANGES:
                fields[f[0]] = _RANGES[f[1]]
        _int_fields[cls] = fields
    return fields


class _Attr(ctypes.Structure):
    """Base of the attr structures: zero-initialised, printable, and every integer put
    into a field range-checked (ctypes would silently keep only the low bits)."""

    def __setattr__(self, name: str, value: object) -> None:
        found = _field_types(type(self)).get(name)
        if found is not None and isinstance(value, int):
            kind, lo, hi = found
            if not lo <= value <= hi:
                raise KernelError(
                    f"{type(self).__name__}.{name} = {value}: out of range for its "
                    f"{kind} field ({lo}..{hi})"
                )
        super().__setattr__(name, value)

    def __repr__(self) -> str:
        fields = ", ".join(f"{f[0]}={getattr(self, f[0])!r}" for f in self._fields_)
        return f"{type(self).__name__}({fields})"


Checked = _Attr  # the range-checked base, for other uapi structures (perf_event_attr)


class MapCreateAttr(_Attr):
    """BPF_MAP_CREATE."""

    _fields_ = [
        ("map_type", u32),
        ("key_size", u32),
        ("value_size", u32),
        ("max_entries", u32),
        ("map_flags", u32),
        ("inner_map_fd", u32),
        ("numa_node", u32),
        ("map_name", ctypes.c_char * OBJ_NAME_LEN),
        ("map_ifindex", u32),
        ("btf_fd", u32),
        ("btf_key_type_id", u32),
        ("btf_value_type_id", u32),
        ("btf_vmlinux_value_type_id", u32),
        ("map_extra", u64),
    ]


class MapElemAttr(_Attr):
    """BPF_MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM, MAP_GET_NEXT_KEY,
    MAP_LOOKUP_AND_DELETE_ELEM (``value`` doubles as ``next_key``)."""

    _fields_ = [
        ("map_fd", u32),
        ("key", u64),
        ("value", u64),
        ("flags", u64),
    ]


class MapFdAttr(_Attr):
    """BPF_MAP_FREEZE (only ``map_fd`` of the elem struct is read)."""

    _fields_ = [("map_fd", u32)]


class ProgLoadAttr(_Attr):
    """BPF_PROG_LOAD."""

    _fields_ = [
        ("prog_type", u32),
        ("insn_cnt", u32),
        ("insns", u64),
        ("license", u64),
        ("log_level", u32),
        ("log_size", u32),
        ("log_buf", u64),
        ("kern_version", u32),
        ("prog_flags", u32),
        ("prog_name", ctypes.c_char * OBJ_NAME_LEN),
        ("prog_ifindex", u32),
        ("expected_attach_type", u32),
        ("prog_btf_fd", u32),
        ("func_info_rec_size", u32),
        ("func_info", u64),
        ("func_info_cnt", u32),
        ("line_info_rec_size", u32),
        ("line_info", u64),
        ("line_info_cnt", u32),
        ("attach_btf_id", u32),
        ("attach_prog_fd", u32),  # union with attach_btf_obj_fd
        ("core_relo_cnt", u32),
        ("fd_array", u64),
        ("core_relos", u64),
        ("core_relo_rec_size", u32),
        ("log_true_size", u32),  # 6.4: output, the size the whole log needs
    ]


class ObjAttr(_Attr):
    """BPF_OBJ_PIN and BPF_OBJ_GET."""

    _fields_ = [
        ("pathname", u64),
        ("bpf_fd", u32),
        ("file_flags", u32),
    ]


class ProgAttachAttr(_Attr):
    """BPF_PROG_ATTACH and BPF_PROG_DETACH."""

    _fields_ = [
        ("target_fd", u32),
        ("attach_bpf_fd", u32),
        ("attach_type", u32),
        ("attach_flags", u32),
        ("replace_bpf_fd", u32),
    ]


class TestRunAttr(_Attr):
    """BPF_PROG_TEST_RUN."""

    __test__ = False  # not a pytest class

    _fields_ = [
        ("prog_fd", u32),
        ("retval", u32),
        ("data_size_in", u32),
        ("data_size_out", u32),
        ("data_in", u64),
        ("data_out", u64),
        ("repeat", u32),
        ("duration", u32),
        ("ctx_size_in", u32),
        ("ctx_size_out", u32),
        ("ctx_in", u64),
        ("ctx_out", u64),
        ("flags", u32),
        ("cpu", u32),
        ("batch_size", u32),
    ]


class GetIdAttr(_Attr):
    """BPF_{PROG,MAP,BTF,LINK}_GET_NEXT_ID and *_GET_FD_BY_ID (``start_id`` is the union
    of start_id/prog_id/map_id/btf_id/link_id)."""

    _fields_ = [
        ("start_id", u32),
        ("next_id", u32),
        ("open_flags", u32),
    ]


class InfoAttr(_Attr):
    """BPF_OBJ_GET_INFO_BY_FD."""

    _fields_ = [
        ("bpf_fd", u32),
        ("info_len", u32),
        ("info", u64),
    ]


class RawTracepointAttr(_Attr):
    """BPF_RAW_TRACEPOINT_OPEN."""

    _fields_ = [
        ("name", u64),
        ("prog_fd", u32),
    ]


class BtfLoadAttr(_Attr):
    """BPF_BTF_LOAD."""

    _fields_ = [
        ("btf", u64),
        ("btf_log_buf", u64),
        ("btf_size", u32),
        ("btf_log_size", u32),
        ("btf_log_level", u32),
        ("btf_log_true_size", u32),  # 6.4
    ]


class _KprobeMulti(ctypes.Structure):
    _fields_ = [
        ("flags", u32),
        ("cnt", u32),
        ("syms", u64),
        ("addrs", u64),
        ("cookies", u64),
    ]


class _UprobeMulti(ctypes.Structure):  # 6.6
    _fields_ = [
        ("path", u64),
        ("offsets", u64),
        ("ref_ctr_offsets", u64),
        ("cookies", u64),
        ("cnt", u32),
        ("flags", u32),
        ("pid", u32),
    ]


class _Tracing(ctypes.Structure):
    _fields_ = [("target_btf_id", u32), ("cookie", u64)]


class _LinkCreateExtra(ctypes.Union):
    _fields_ = [
        ("target_btf_id", u32),
        ("bpf_cookie", u64),  # perf_event.bpf_cookie
        ("kprobe_multi", _KprobeMulti),
        ("uprobe_multi", _UprobeMulti),
        ("tracing", _Tracing),
    ]


class LinkCreateAttr(_Attr):
    """BPF_LINK_CREATE.  The per-attach-type union is ``extra``: ``extra.bpf_cookie`` for
    perf events (kprobe, uprobe, tracepoint), ``extra.kprobe_multi``, ``extra.uprobe_multi``,
    ``extra.tracing``, ``extra.target_btf_id``."""

    _fields_ = [
        ("prog_fd", u32),
        ("target_fd", u32),  # union with target_ifindex
        ("attach_type", u32),
        ("flags", u32),
        ("extra", _LinkCreateExtra),
    ]


class LinkDetachAttr(_Attr):
    """BPF_LINK_DETACH."""

    _fields_ = [("link_fd", u32)]


class ProgInfo(_Attr):
    """``struct bpf_prog_info`` (BPF_OBJ_GET_INFO_BY_FD on a program)."""

    _fields_ = [
        ("type", u32),
        ("id", u32),
        ("tag", u8 * TAG_SIZE),
        ("jited_prog_len", u32),
        ("xlated_prog_len", u32),
        ("jited_prog_insns", u64),
        ("xlated_prog_insns", u64),
        ("load_time", u64),  # ns since boot
        ("created_by_uid", u32),
        ("nr_map_ids", u32),
        ("map_ids", u64),
        ("name", ctypes.c_char * OBJ_NAME_LEN),
        ("ifindex", u32),
        ("gpl_compatible", u32, 1),
        ("_pad0", u32, 31),
        ("netns_dev", u64),
        ("netns_ino", u64),
        ("nr_jited_ksyms", u32),
        ("nr_jited_func_lens", u32),
        ("jited_ksyms", u64),
        ("jited_func_lens", u64),
        ("btf_id", u32),
        ("func_info_rec_size", u32),
        ("func_info", u64),
        ("nr_func_info", u32),
        ("nr_line_info", u32),
        ("line_info", u64),
        ("jited_line_info", u64),
        ("nr_jited_line_info", u32),
        ("line_info_rec_size", u32),
        ("jited_line_info_rec_size", u32),
        ("nr_prog_tags", u32),
        ("prog_tags", u64),
        ("run_time_ns", u64),
        ("run_cnt", u64),
        ("recursion_misses", u64),
        ("verified_insns", u32),
        ("attach_btf_obj_id", u32),
        ("attach_btf_id", u32),
        ("_pad1", u32),
    ]


class MapInfo(_Attr):
    """``struct bpf_map_info`` (BPF_OBJ_GET_INFO_BY_FD on a map)."""

    _fields_ = [
        ("type", u32),
        ("id", u32),
        ("key_size", u32),
        ("value_size", u32),
        ("max_entries", u32),
        ("map_flags", u32),
        ("name", ctypes.c_char * OBJ_NAME_LEN),
        ("ifindex", u32),
        ("btf_vmlinux_value_type_id", u32),
        ("netns_dev", u64),
        ("netns_ino", u64),
        ("btf_id", u32),
        ("btf_key_type_id", u32),
        ("btf_value_type_id", u32),
        ("_pad0", u32),
        ("map_extra", u64),
    ]


class BtfInfo(_Attr):
    """``struct bpf_btf_info``."""

    _fields_ = [
        ("btf", u64),
        ("btf_size", u32),
        ("id", u32),
        ("name", u64),
        ("name_len", u32),
        ("kernel_btf", u32),
    ]


class LinkInfoHead(_Attr):
    """The common head of ``struct bpf_link_info`` (type, id, prog_id); the per-type union
    that follows is left as raw bytes."""

    _fields_ = [
        ("type", u32),
        ("id", u32),
        ("prog_id", u32),
        ("_pad0", u32),
        ("raw", u8 * 48),
    ]


# Sizes of the structures above, from the uapi header (Linux 6.1 plus the newer fields
# marked): tests compare them with ctypes.sizeof so a wrong field type shows up there
# rather than as EINVAL from the kernel.
ATTR_SIZES = {
    "MapCreateAttr": 72,
    "MapElemAttr": 32,
    "ProgLoadAttr": 144,
    "ObjAttr": 16,
    "TestRunAttr": 80,
    "InfoAttr": 16,
    "BtfLoadAttr": 32,
    "LinkCreateAttr": 64,
    "ProgInfo": 232,
    "MapInfo": 88,
    "BtfInfo": 32,
}
