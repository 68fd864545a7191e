"""What the kernel says about its BPF objects: program and map info, program ids.

API::

    prog_info(fd) -> ProgramInfo          # BPF_OBJ_GET_INFO_BY_FD on a program
    prog_full_name(fd) -> str             # the name bpftool shows (BTF's, past 15 characters)
    prog_code(fd, jited=False) -> bytes   # the translated (or JIT-compiled) code
    prog_jited(fd) -> ProgImage           # the JIT image with its functions and line info
    prog_xlated(fd) -> ProgImage          # the translated code, with the same records
    map_info(fd) -> MapInfo
    prog_ids() -> Iterator[int]           # BPF_PROG_GET_NEXT_ID
    prog_fd_by_id(id) -> Fd               # BPF_PROG_GET_FD_BY_ID
    list_programs() -> list[ProgramInfo]  # every loaded program (what `bpfkit prog list` shows)
    map_ids() -> Iterator[int]            # BPF_MAP_GET_NEXT_ID
    map_fd_by_id(id) -> Fd                # BPF_MAP_GET_FD_BY_ID
    list_maps() -> list[MapInfo]          # every map (what `bpfkit map list` shows)
    btf_bytes(btf_id) -> bytes            # the raw BTF the kernel holds under that id
    link_ids() -> Iterator[int]; link_fd_by_id(id) -> Fd
    link_info(fd) -> LinkInfo             # id, type, program, and the type's own fields
    link_detach(fd) -> None               # BPF_LINK_DETACH: the link stays, detached
    fdinfo(fd) -> dict[str, str]          # /proc/self/fdinfo (memlock, frozen, ...)
"""

from __future__ import annotations

import ctypes
import errno
import time
from collections.abc import Iterator
from dataclasses import dataclass

from bpfkit.errors import BpfkitError, KernelError
from bpfkit.syscalls import Cmd, Fd, attrs, bpf, bpf_errno
from bpfkit.syscalls.causes import error
from bpfkit.uapi import AttachType, LinkType, MapType, ProgType
from bpfkit.uapi.names import type_name


@dataclass(frozen=True, slots=True)
class ProgramInfo:
    """A loaded program as the kernel reports it."""

    id: int
    type: int
    name: str
    tag: str  # hex, as bpftool prints it
    xlated_len: int  # bytes of translated instructions
    jited_len: int  # bytes of JIT-compiled code (0 without JIT)
    load_time_ns: int  # since boot
    created_by_uid: int
    map_ids: tuple[int, ...]
    btf_id: int
    verified_insns: int
    run_time_ns: int
    run_cnt: int
    gpl_compatible: bool
    recursion_misses: int = 0  # runs skipped: the program was already running on that CPU

    @property
    def type_name(self) -> str:
        """``socket_filter``, ``kprobe``, ..."""
        return type_name(ProgType, self.type)

    @property
    def xlated_insns(self) -> int:
        """Number of 8-byte instruction slots after the verifier's rewriting."""
        return self.xlated_len // 8

    @property
    def loaded_at(self) -> float:
        """Wall-clock time (seconds since the epoch) the program was loaded."""
        since_boot = time.clock_gettime(time.CLOCK_BOOTTIME) - self.load_time_ns / 1e9
        return time.time() - since_boot


@dataclass(frozen=True, slots=True)
class MapInfo:
    """A map as the kernel reports it."""

    id: int
    type: int
    name: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    btf_id: int
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0

    @property
    def type_name(self) -> str:
        """``hash``, ``array``, ..."""
        return type_name(MapType, self.type)


def _get_info(fd: int, info: ctypes.Structure, what: str) -> None:
    attr = attrs.InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(Cmd.OBJ_GET_INFO_BY_FD, attr, f"reading the info of {what} (fd {fd})")


def prog_info(fd: int) -> ProgramInfo:
    """The kernel's info on the program behind ``fd`` (with its map ids)."""
    info = attrs.ProgInfo()
    _get_info(fd, info, "a program")
    map_ids: tuple[int, ...] = ()
    if info.nr_map_ids:
        # Second call: the kernel fills the map id array only when given one.
        n = info.nr_map_ids
        ids = (ctypes.c_uint32 * n)()
        info2 = attrs.ProgInfo(nr_map_ids=n, map_ids=ctypes.addressof(ids))
        _get_info(fd, info2, "a program")
        map_ids = tuple(ids[: min(n, info2.nr_map_ids)])
    return ProgramInfo(
        id=info.id,
        type=info.type,
        name=info.name.decode(errors="replace"),
        tag=bytes(info.tag).hex(),
        xlated_len=info.xlated_prog_len,
        jited_len=info.jited_prog_len,
        load_time_ns=info.load_time,
        created_by_uid=info.created_by_uid,
        map_ids=map_ids,
        btf_id=info.btf_id,
        verified_insns=info.verified_insns,
        run_time_ns=info.run_time_ns,
        run_cnt=info.run_cnt,
        gpl_compatible=bool(info.gpl_compatible),
        recursion_misses=info.recursion_misses,
    )


def prog_full_name(fd: int) -> str:
    """The program's name as bpftool shows and matches it (``get_prog_full_name``): the
    kernel keeps 15 characters, so a name that long is replaced by the name of the
    program's function in its BTF, when it has one."""
    info = attrs.ProgInfo()
    _get_info(fd, info, "a program")
    name: str = info.name.decode(errors="replace")
    if len(name) < 15 or not info.btf_id or not info.nr_func_info:
        return name
    rec = ctypes.create_string_buffer(8)
    info2 = attrs.ProgInfo(nr_func_info=1, func_info_rec_size=8, func_info=ctypes.addressof(rec))
    try:
        _get_info(fd, info2, "a program")
        from bpfkit.btf import parse_btf
        from bpfkit.btf import types as T

        func = parse_btf(btf_bytes(info2.btf_id)).type(_u32(rec.raw, 4))
    except BpfkitError:
        return name
    if isinstance(func, T.Func) and func.name:
        return str(func.name)
    return name


def prog_code(fd: int, jited: bool = False) -> bytes:
    """The program as the kernel runs it: translated BPF instructions (after the
    verifier's rewriting; map pointers show as kernel addresses), or machine code."""
    info = attrs.ProgInfo()
    _get_info(fd, info, "a program")
    n = info.jited_prog_len if jited else info.xlated_prog_len
    if not n:
        return b""
    buf = ctypes.create_string_buffer(n)
    if jited:
        info2 = attrs.ProgInfo(jited_prog_len=n, jited_prog_insns=ctypes.addressof(buf))
    else:
        info2 = attrs.ProgInfo(xlated_prog_len=n, xlated_prog_insns=ctypes.addressof(buf))
    _get_info(fd, info2, "a program")
    return buf.raw[:n]


@dataclass(frozen=True, slots=True)
class ProgImage:
    """A program's code as the kernel reports it, with what bpftool prints beside it: the
    code (the JIT image of all functions one after the other, or the translated BPF
    instructions), each function's kernel address and JIT length, the BTF function records
    (xlated insn offset, BTF type id), the line records (insn offset, file name offset,
    line text offset, line << 10 | column) with the kernel address of each, and the BTF
    id those offsets are in."""

    id: int
    name: str
    image: bytes
    ksyms: tuple[int, ...]
    func_lens: tuple[int, ...]
    func_info: tuple[tuple[int, int], ...]
    line_info: tuple[tuple[int, int, int, int], ...]
    jited_lines: tuple[int, ...]
    btf_id: int


JitImage = ProgImage  # the JIT image: ``image`` is machine code


def _array(ctype: type[ctypes._SimpleCData], n: int) -> ctypes.Array:  # type: ignore[type-arg]
    return (ctype * max(n, 1))()


def prog_jited(fd: int) -> ProgImage:
    """The JIT image of the program behind ``fd`` (BPF_OBJ_GET_INFO_BY_FD with every
    array bpftool asks for).  KernelError when it has none, or when the kernel does not
    show it to this process (``bpf_dump_raw_ok``: kernel.kptr_restrict, lockdown)."""
    return _prog_image(fd, jited=True)


def prog_xlated(fd: int) -> ProgImage:
    """The translated instructions of the program behind ``fd`` (``image``), with the
    same function and line records as :func:`prog_jited`.  KernelError when the kernel
    does not show them to this process."""
    return _prog_image(fd, jited=False)


def _prog_image(fd: int, *, jited: bool) -> ProgImage:
    info = attrs.ProgInfo()
    _get_info(fd, info, "a program")
    name = info.name.decode(errors="replace")
    what = f"program {info.id} ({name})"
    size = info.jited_prog_len if jited else info.xlated_prog_len
    if not size:
        if not jited:
            raise KernelError(f"the kernel shows no translated instructions for {what}")
        raise KernelError(
            f"{what} has no JIT image: the kernel runs it in its interpreter "
            "(net.core.bpf_jit_enable is 0, or the JIT is not built); see its "
            "translation with: prog dump xlated id " + str(info.id)
        )
    image = _array(ctypes.c_uint8, size)
    ksyms = _array(ctypes.c_uint64, info.nr_jited_ksyms)
    lens = _array(ctypes.c_uint32, info.nr_jited_func_lens)
    finfo = ctypes.create_string_buffer(max(info.nr_func_info * info.func_info_rec_size, 1))
    linfo = ctypes.create_string_buffer(max(info.nr_line_info * info.line_info_rec_size, 1))
    jlines = _array(ctypes.c_uint64, info.nr_jited_line_info)
    info2 = attrs.ProgInfo(
        nr_jited_ksyms=info.nr_jited_ksyms,
        jited_ksyms=ctypes.addressof(ksyms),
        nr_jited_func_lens=info.nr_jited_func_lens,
        jited_func_lens=ctypes.addressof(lens),
        nr_func_info=info.nr_func_info,
        func_info_rec_size=info.func_info_rec_size,
        func_info=ctypes.addressof(finfo),
        nr_line_info=info.nr_line_info,
        line_info_rec_size=info.line_info_rec_size,
        line_info=ctypes.addressof(linfo),
        nr_jited_line_info=info.nr_jited_line_info,
        jited_line_info_rec_size=info.jited_line_info_rec_size,
        jited_line_info=ctypes.addressof(jlines),
    )
    if jited:
        info2.jited_prog_len = size
        info2.jited_prog_insns = ctypes.addressof(image)
    else:
        info2.xlated_prog_len = size
        info2.xlated_prog_insns = ctypes.addressof(image)
    _get_info(fd, info2, "a program")
    if not (info2.jited_prog_insns if jited else info2.xlated_prog_insns):
        code = "JIT image" if jited else "translated instructions"
        raise KernelError(
            f"the kernel does not show {what}'s {code} to this process (it hides raw "
            "kernel addresses and code: kernel.kptr_restrict, lockdown); run as root with "
            "kernel.kptr_restrict=0 and no lockdown"
        )
    n_len = min(size, info2.jited_prog_len if jited else info2.xlated_prog_len)
    frec, lrec = info.func_info_rec_size, info.line_info_rec_size
    n_funcs = min(info.nr_func_info, info2.nr_func_info) if info2.func_info else 0
    n_lines = min(info.nr_line_info, info2.nr_line_info) if info2.line_info else 0
    n_jl = min(info.nr_jited_line_info, info2.nr_jited_line_info) if info2.jited_line_info else 0
    n_ksyms = min(info.nr_jited_ksyms, info2.nr_jited_ksyms) if info2.jited_ksyms else 0
    n_lens = min(info.nr_jited_func_lens, info2.nr_jited_func_lens) if info2.jited_func_lens else 0
    return ProgImage(
        id=info.id,
        name=name,
        image=bytes(image[:n_len]),
        ksyms=tuple(ksyms[:n_ksyms]),
        func_lens=tuple(lens[:n_lens]),
        func_info=tuple(
            (_u32(finfo.raw, i * frec), _u32(finfo.raw, i * frec + 4)) for i in range(n_funcs)
        ),
        line_info=tuple(
            tuple(_u32(linfo.raw, i * lrec + 4 * k) for k in range(4))  # type: ignore[misc]
            for i in range(n_lines)
        ),
        jited_lines=tuple(jlines[:n_jl]),
        btf_id=info.btf_id,
    )


def map_info(fd: int) -> MapInfo:
    """The kernel's info on the map behind ``fd``."""
    info = attrs.MapInfo()
    _get_info(fd, info, "a map")
    return MapInfo(
        id=info.id,
        type=info.type,
        name=info.name.decode(errors="replace"),
        key_size=info.key_size,
        value_size=info.value_size,
        max_entries=info.max_entries,
        flags=info.map_flags,
        btf_id=info.btf_id,
        btf_key_type_id=info.btf_key_type_id,
        btf_value_type_id=info.btf_value_type_id,
    )


def prog_ids() -> Iterator[int]:
    """The id of every program loaded in the kernel, ascending."""
    current = 0
    while True:
        attr = attrs.GetIdAttr(start_id=current)
        ret, err = bpf_errno(Cmd.PROG_GET_NEXT_ID, attr)
        if ret < 0:
            if err == errno.ENOENT:
                return
            raise error(Cmd.PROG_GET_NEXT_ID, err, "listing programs")
        current = attr.next_id
        yield current


def prog_fd_by_id(prog_id: int) -> Fd:
    """An owned descriptor for the program with id ``prog_id``."""
    _check_id(prog_id, "program")
    attr = attrs.GetIdAttr(start_id=prog_id)
    return Fd(bpf(Cmd.PROG_GET_FD_BY_ID, attr, f"opening program id {prog_id}"), "program")


def list_programs() -> list[ProgramInfo]:
    """Info on every loaded program (those unloaded while listing are skipped)."""
    out = []
    for pid in prog_ids():
        attr = attrs.GetIdAttr(start_id=pid)
        fd, err = bpf_errno(Cmd.PROG_GET_FD_BY_ID, attr)
        if fd < 0:
            if err == errno.ENOENT:
                continue  # unloaded since GET_NEXT_ID
            raise error(Cmd.PROG_GET_FD_BY_ID, err, f"opening program id {pid}")
        with Fd(fd, "program") as owned:
            out.append(prog_info(owned.fd))
    return out


def _ids(cmd: Cmd, what: str) -> Iterator[int]:
    current = 0
    while True:
        attr = attrs.GetIdAttr(start_id=current)
        ret, err = bpf_errno(cmd, attr)
        if ret < 0:
            if err == errno.ENOENT:
                return
            raise error(cmd, err, f"listing {what}")
        current = attr.next_id
        yield current


def map_ids() -> Iterator[int]:
    """The id of every map in the kernel, ascending."""
    return _ids(Cmd.MAP_GET_NEXT_ID, "maps")


def _check_id(obj_id: int, what: str) -> None:
    if not 0 < obj_id < 2**31:
        raise KernelError(f"{what} id {obj_id} is out of range; ids are 1 to {2**31 - 1}")


def map_fd_by_id(map_id: int) -> Fd:
    """An owned descriptor for the map with id ``map_id``."""
    _check_id(map_id, "map")
    attr = attrs.GetIdAttr(start_id=map_id)
    return Fd(bpf(Cmd.MAP_GET_FD_BY_ID, attr, f"opening map id {map_id}"), "map")


def list_maps() -> list[MapInfo]:
    """Info on every map (those freed while listing are skipped)."""
    out = []
    for mid in map_ids():
        attr = attrs.GetIdAttr(start_id=mid)
        fd, err = bpf_errno(Cmd.MAP_GET_FD_BY_ID, attr)
        if fd < 0:
            if err == errno.ENOENT:
                continue
            raise error(Cmd.MAP_GET_FD_BY_ID, err, f"opening map id {mid}")
        with Fd(fd, "map") as owned:
            out.append(map_info(owned.fd))
    return out


def btf_bytes(btf_id: int) -> bytes:
    """The raw BTF (header, types, strings) the kernel holds under ``btf_id``."""
    _check_id(btf_id, "BTF")
    attr = attrs.GetIdAttr(start_id=btf_id)
    with Fd(bpf(Cmd.BTF_GET_FD_BY_ID, attr, f"opening BTF id {btf_id}"), "BTF") as fd:
        info = attrs.BtfInfo()
        _get_info(fd.fd, info, "a BTF object")
        n = info.btf_size
        buf = ctypes.create_string_buffer(max(n, 1))
        info2 = attrs.BtfInfo(btf=ctypes.addressof(buf), btf_size=n)
        _get_info(fd.fd, info2, "a BTF object")
        return buf.raw[:n]


def fdinfo(fd: int) -> dict[str, str]:
    """The ``key: value`` lines the kernel shows for ``fd`` in /proc/self/fdinfo."""
    out = {}
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key.strip()] = value.strip()
    return out


def link_ids() -> Iterator[int]:
    """The id of every BPF link in the kernel, ascending."""
    return _ids(Cmd.LINK_GET_NEXT_ID, "links")


def link_fd_by_id(link_id: int) -> Fd:
    """An owned descriptor for the link with id ``link_id``."""
    _check_id(link_id, "link")
    attr = attrs.GetIdAttr(start_id=link_id)
    return Fd(bpf(Cmd.LINK_GET_FD_BY_ID, attr, f"opening link id {link_id}"), "link")


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """A BPF link as the kernel reports it; ``fields``: what its type adds, by bpftool's
    JSON names (``tp_name``, ``cgroup_id``, ``attach_type``, ``ifindex``...)."""

    id: int
    type: int
    prog_id: int
    fields: dict[str, int | str]

    @property
    def type_name(self) -> str:
        """``raw_tracepoint``, ``perf_event``, ..."""
        try:
            return LinkType(self.type).name.lower()
        except ValueError:
            return str(self.type)


def _u32(raw: bytes, off: int) -> int:
    return int.from_bytes(raw[off : off + 4], "little")


def _attach_name(value: int) -> str:
    try:
        return AttachType(value).name.lower()
    except ValueError:
        return str(value)


def link_info(fd: int) -> LinkInfo:
    """The kernel's info on the link behind ``fd``."""
    info = attrs.LinkInfoHead()
    _get_info(fd, info, "a link")
    raw = bytes(info.raw)
    fields: dict[str, int | str] = {}
    if info.type == LinkType.RAW_TRACEPOINT:
        n = _u32(raw, 8)
        if n:
            buf = ctypes.create_string_buffer(n)
            again = attrs.LinkInfoHead()
            again.raw[:12] = ctypes.addressof(buf).to_bytes(8, "little") + n.to_bytes(4, "little")
            _get_info(fd, again, "a link")
            fields["tp_name"] = buf.value.decode(errors="replace")
    elif info.type == LinkType.TRACING:
        fields["attach_type"] = _attach_name(_u32(raw, 0))
        fields["target_obj_id"] = _u32(raw, 4)
        fields["target_btf_id"] = _u32(raw, 8)
    elif info.type == LinkType.CGROUP:
        fields["cgroup_id"] = int.from_bytes(raw[0:8], "little")
        fields["attach_type"] = _attach_name(_u32(raw, 8))
    elif info.type == LinkType.NETNS:
        fields["netns_ino"] = _u32(raw, 0)
        fields["attach_type"] = _attach_name(_u32(raw, 4))
    elif info.type == LinkType.XDP:
        fields["ifindex"] = _u32(raw, 0)
    return LinkInfo(id=info.id, type=info.type, prog_id=info.prog_id, fields=fields)


def link_detach(fd: int) -> None:
    """Detach the link behind ``fd`` from its hook (BPF_LINK_DETACH; 5.9+).  The program
    stops running there; the link object lives on until its last holder closes it."""
    bpf(Cmd.LINK_DETACH, attrs.LinkDetachAttr(link_fd=fd), "detaching the link")
