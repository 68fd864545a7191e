"""A load's ``bpf()`` calls recorded once, replayed by later processes.

Loading an object is a short list of ``bpf()`` commands (BTF_LOAD, MAP_CREATE,
MAP_UPDATE_ELEM, MAP_FREEZE, PROG_LOAD) whose arguments are decided entirely by the
object's bytes, the options, bpfkit's code and the running kernel.  Working them out takes
bpfkit's whole road (pyelftools, the BTF parser, CO-RE, linking: ~100 ms of imports for
``bpfkit load``); issuing them takes well under a millisecond.  So the whole road records
the commands it issued (:class:`Recorder`, a :mod:`bpfkit.syscalls` backend that watches
the real one) as a :class:`Plan`: each command's attr bytes, the memory its pointers point
at (instructions, license, BTF, func/line info, map keys and values), and where a file
descriptor made earlier in the load goes (attr fields, map fds in ``ld_imm64``, program and
inner-map fds in map values).  A later process with the same key (:func:`plan_key`: the
object's path and exact bytes, the options, bpfkit's version and sources, the kernel's
release, build and boot) replays the plan with nothing but ``ctypes``
(:func:`replay`) and prints what the whole road printed (:mod:`bpfkit.kernel.loaded`).

A load is recorded only when every command that succeeded was one of the five and used no
descriptor made outside the load (pinned maps reused, kfuncs of modules, ``fd_array``,
verifier logs): otherwise nothing is stored and every run takes the whole road.  A replay
that fails (the kernel changed its mind: limits, privileges) closes what it made and the
caller takes the whole road, which says why.  Entries live in :mod:`bpfkit.cachedir`
(``load/``): owned by the user, checksummed, atomic; ``BPFKIT_NO_CACHE=1`` turns them off.

API::

    with Recorder.watching() as rec: load_collection(...)   # rec.why: None if replayable
    plan = rec.plan(progs=[(name, fd, type_name)], maps=[...], notes=[...])
    key = plan_key(path, options); store(key, obj_bytes, plan)
    lookup(key, obj_bytes) -> Plan | None
    fds = replay(plan)           # one fd (or -1) per command; ReplayError if refused
    rows(plan, fds) -> (progs, maps)   # kernel.loaded rows, from the kernel's info
"""

from __future__ import annotations

import ctypes
import marshal
import os
import sys

from bpfkit import cachedir
from bpfkit.syscalls import raw

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

    from bpfkit.kernel.loaded import MapRow, ProgRow
    from bpfkit.syscalls.backend import Backend

KIND = "load"
VERSION = 1  # of the plan's layout

# The commands a load issues (uapi enum bpf_cmd).
MAP_CREATE, MAP_UPDATE_ELEM, PROG_LOAD, OBJ_GET_INFO_BY_FD, MAP_FREEZE, BTF_LOAD = (
    0, 2, 5, 15, 22, 18
)  # fmt: skip
_CREATES = (MAP_CREATE, PROG_LOAD, BTF_LOAD)

_ORDER = sys.byteorder


class ReplayError(Exception):
    """A replayed command failed (the caller takes the whole road instead)."""

    def __init__(self, cmd: int, errno: int) -> None:
        super().__init__(f"bpf command {cmd}: {os.strerror(errno)}")
        self.cmd = cmd
        self.errno = errno


# A plan is plain data, for marshal: a dict of
#   steps: [(cmd, attr, [(offset, blob)], [(offset, step)])]   pointers and fds in the attr
#   blobs: [(bytes, [(offset, step)])]                         fds inside pointed-at memory
#   progs: [(name, step, type_name)], maps: [(name, step, type_name)], notes: [str]
#   info:  offsets of InfoAttr, bpf_prog_info and bpf_map_info fields (syscalls.attrs)
if TYPE_CHECKING:
    Plan = dict[str, Any]


class Recorder:
    """A backend that passes every command to ``inner`` and records the replayable ones."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.steps: list[tuple[int, bytes, list[tuple[int, int]], list[tuple[int, int]]]] = []
        self.blobs: list[tuple[bytes, list[tuple[int, int]]]] = []
        self.created: dict[int, int] = {}  # fd -> the step that made it
        self.maps: dict[int, tuple[int, int, int]] = {}  # step -> (type, key, value size)
        self.why: str | None = None  # why this load cannot be replayed; None: it can

    @classmethod
    def watching(cls) -> _Watching:
        """``with Recorder.watching() as rec:`` records the block's ``bpf()`` commands."""
        return _Watching(cls)

    def __call__(self, cmd: int, attr: ctypes.Structure) -> int:
        step, why = None, None
        if self.why is None:
            try:
                step = self._capture(int(cmd), attr)
            except _NotReplayable as e:
                why = str(e)
        # A command the kernel refuses makes nothing: the loader's next step (a fallback)
        # is what gets recorded, and the same kernel will refuse the same command again.
        ret = self.inner(cmd, attr)
        if self.why is None:
            self.why = why
        if step is not None and self.why is None:
            self.steps.append(step)
            index = len(self.steps) - 1
            if cmd in _CREATES:
                self.created[ret] = index
                if cmd == MAP_CREATE:
                    a: Any = attr
                    self.maps[index] = (a.map_type, a.key_size, a.value_size)
        return ret

    # -- what a command's attr holds -------------------------------------------------
    def _fd(self, value: int, what: str) -> int:
        step = self.created.get(value)
        if step is None:
            raise _NotReplayable(f"{what} {value} was not made by this load")
        return step

    def _blob(self, address: int, size: int, fds: list[tuple[int, int]] | None = None) -> int:
        self.blobs.append((ctypes.string_at(address, size), fds or []))
        return len(self.blobs) - 1

    def _capture(
        self, cmd: int, attr: ctypes.Structure
    ) -> tuple[int, bytes, list[tuple[int, int]], list[tuple[int, int]]]:
        from bpfkit.syscalls import attrs
        from bpfkit.uapi import MapType

        a: Any = attr
        cls = type(attr)
        ptrs: list[tuple[int, int]] = []
        fds: list[tuple[int, int]] = []

        def off(name: str) -> int:
            return int(getattr(cls, name).offset)

        def fd_field(name: str, optional: bool = True) -> None:
            value = getattr(a, name)
            if optional and value == 0 and 0 not in self.created:
                return
            fds.append((off(name), self._fd(value, name)))

        def zero(*names: str) -> None:
            for name in names:
                if getattr(a, name):
                    raise _NotReplayable(f"{cls.__name__}.{name} is set")

        if cmd == BTF_LOAD and cls is attrs.BtfLoadAttr:
            zero("btf_log_buf", "btf_log_level")
            ptrs.append((off("btf"), self._blob(a.btf, a.btf_size)))
        elif cmd == MAP_CREATE and cls is attrs.MapCreateAttr:
            if a.map_type == MapType.STRUCT_OPS:
                raise _NotReplayable("struct_ops maps hold program descriptors")
            fd_field("btf_fd")
            fd_field("inner_map_fd")
        elif cmd == MAP_UPDATE_ELEM and cls is attrs.MapElemAttr:
            step = self._fd(a.map_fd, "map_fd")
            fds.append((off("map_fd"), step))
            if step not in self.maps:
                raise _NotReplayable("MAP_UPDATE_ELEM on a descriptor that is not a map")
            map_type, key_size, value_size = self.maps[step]
            kind = MapType(map_type).name if map_type in MapType._value2member_map_ else ""
            if kind in _FD_VALUES:
                vfd = ctypes.c_uint32.from_address(a.value).value
                value_fds = [(0, self._fd(vfd, "map value"))]
            elif kind in _BYTE_VALUES:
                value_fds = []
            else:  # per-CPU values, sockets, devices, ...: not bytes of this load
                raise _NotReplayable(f"values of map type {kind or map_type} are not plain bytes")
            if a.key:
                ptrs.append((off("key"), self._blob(a.key, key_size)))
            ptrs.append((off("value"), self._blob(a.value, value_size, value_fds)))
        elif cmd == MAP_FREEZE and cls is attrs.MapFdAttr:
            fds.append((off("map_fd"), self._fd(a.map_fd, "map_fd")))
        elif cmd == PROG_LOAD and cls is attrs.ProgLoadAttr:
            zero("log_buf", "log_level", "fd_array", "core_relos", "attach_prog_fd")
            code = ctypes.string_at(a.insns, a.insn_cnt * 8)
            ptrs.append((off("insns"), self._blob(a.insns, len(code), self._insn_fds(code))))
            if a.license:
                ptrs.append(
                    (off("license"), self._blob(a.license, len(ctypes.string_at(a.license)) + 1))
                )
            fd_field("prog_btf_fd")
            for name, count in (("func_info", "func_info_cnt"), ("line_info", "line_info_cnt")):
                if getattr(a, name):
                    size = getattr(a, count) * getattr(a, f"{name}_rec_size")
                    ptrs.append((off(name), self._blob(getattr(a, name), size)))
        else:
            raise _NotReplayable(f"bpf command {cmd} is not part of a replayable load")
        return cmd, ctypes.string_at(ctypes.addressof(attr), ctypes.sizeof(attr)), ptrs, fds

    def _insn_fds(self, code: bytes) -> list[tuple[int, int]]:
        """Where map descriptors sit in instructions (``ld_imm64`` of a map or its value)."""
        out: list[tuple[int, int]] = []
        i, n = 0, len(code) // 8
        while i < n:
            opcode, regs = code[i * 8], code[i * 8 + 1]
            src = regs >> 4 if _ORDER == "little" else regs & 0xF
            if opcode == 0x18:  # BPF_LD | BPF_DW | BPF_IMM: two slots
                if src in (1, 2):  # BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE
                    fd = int.from_bytes(code[i * 8 + 4 : i * 8 + 8], _ORDER, signed=True)
                    out.append((i * 8 + 4, self._fd(fd, "map fd of an ld_imm64")))
                elif src == 3 and i + 1 < n and code[i * 8 + 12 : i * 8 + 16] != bytes(4):
                    raise _NotReplayable("a ksym of a module's BTF")
                elif src in (5, 6):  # BPF_PSEUDO_MAP_IDX*: an fd_array index
                    raise _NotReplayable("maps by fd_array index")
                i += 2
                continue
            i += 1
        return out

    def plan(
        self,
        progs: list[tuple[str, int, str]],
        maps: list[tuple[str, int, str]],
        notes: list[str],
    ) -> Plan:
        """The plan of what was recorded; ``progs``/``maps``: (name, fd, type name) of
        what the load made, in the order it prints them."""
        from bpfkit.syscalls import attrs

        def step(fd: int) -> int:
            found = self.created.get(fd)
            if found is None:
                raise ValueError(f"fd {fd} was not made by the recorded load")
            return found

        offsets = {
            f"info.{f}": int(getattr(attrs.InfoAttr, f).offset)
            for f in ("bpf_fd", "info_len", "info")
        }
        for f in ("id", "jited_prog_len", "xlated_prog_len"):
            offsets[f"prog.{f}"] = int(getattr(attrs.ProgInfo, f).offset)
        for f in ("id", "key_size", "value_size", "max_entries"):
            offsets[f"map.{f}"] = int(getattr(attrs.MapInfo, f).offset)
        return {
            "version": VERSION,
            "steps": self.steps,
            "blobs": self.blobs,
            "progs": [(n, step(fd), t) for n, fd, t in progs],
            "maps": [(n, step(fd), t) for n, fd, t in maps],
            "notes": notes,
            "info": (
                offsets,
                ctypes.sizeof(attrs.InfoAttr),
                ctypes.sizeof(attrs.ProgInfo),
                ctypes.sizeof(attrs.MapInfo),
            ),
        }


# Map types whose initial values a load writes as they are, and those whose values are
# descriptors of programs or maps made by the same load (uapi MapType names).
_BYTE_VALUES = ("HASH", "ARRAY", "LRU_HASH", "LPM_TRIE", "QUEUE", "STACK", "BLOOM_FILTER")
_FD_VALUES = ("PROG_ARRAY", "ARRAY_OF_MAPS", "HASH_OF_MAPS")


class _NotReplayable(Exception):
    pass


class _Watching:
    def __init__(self, cls: type[Recorder]) -> None:
        self.cls = cls

    def __enter__(self) -> Recorder:
        from bpfkit.syscalls import backend

        self.rec = self.cls(backend.get_backend())
        self.previous = backend.set_backend(self.rec)
        return self.rec

    def __exit__(self, *exc: object) -> None:
        from bpfkit.syscalls import backend

        backend.set_backend(self.previous)


# -- replaying -----------------------------------------------------------------------------
def _buffer(data: bytes | bytearray, keep: list[object]) -> int:
    """The address of a C copy of ``data``, kept alive by ``keep``."""
    buf = ctypes.create_string_buffer(bytes(data), len(data) or 1)
    keep.append(buf)
    return ctypes.addressof(buf)


def replay(plan: Plan) -> list[int]:
    """Issue the plan's commands; one result per step (the fd a create made, else -1).
    On a refusal close what was made and raise :class:`ReplayError`."""
    fds: list[int] = []
    keep: list[object] = []
    blobs = plan["blobs"]
    try:
        for cmd, attr, ptrs, fd_fields in plan["steps"]:
            a = bytearray(attr)
            for offset, index in ptrs:
                data, inner = blobs[index]
                if inner:
                    data = bytearray(data)
                    for at, step in inner:
                        data[at : at + 4] = fds[step].to_bytes(4, _ORDER)
                a[offset : offset + 8] = _buffer(data, keep).to_bytes(8, _ORDER)
            for offset, step in fd_fields:
                a[offset : offset + 4] = fds[step].to_bytes(4, _ORDER)
            ret = raw.call(cmd, _buffer(a, keep), len(a))
            if ret < 0:
                raise ReplayError(cmd, -ret)
            fds.append(ret if cmd in _CREATES else -1)
    except BaseException:
        close(fds)
        raise
    return fds


def close(fds: list[int]) -> None:
    """Close the descriptors :func:`replay` made."""
    for fd in fds:
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


def rows(plan: Plan, fds: list[int]) -> tuple[list[ProgRow], list[MapRow]]:
    """What :func:`bpfkit.kernel.loaded.format_loaded` prints of the replayed load, from the
    kernel's info on each program and map (OBJ_GET_INFO_BY_FD)."""
    offsets, info_attr, prog_size, map_size = plan["info"]

    def info(fd: int, size: int) -> bytes:
        buf = ctypes.create_string_buffer(size)
        a = bytearray(info_attr)
        a[offsets["info.bpf_fd"] : offsets["info.bpf_fd"] + 4] = fd.to_bytes(4, _ORDER)
        a[offsets["info.info_len"] : offsets["info.info_len"] + 4] = size.to_bytes(4, _ORDER)
        at = offsets["info.info"]
        a[at : at + 8] = ctypes.addressof(buf).to_bytes(8, _ORDER)
        keep: list[object] = []
        ret = raw.call(OBJ_GET_INFO_BY_FD, _buffer(a, keep), len(a))
        if ret < 0:
            raise ReplayError(OBJ_GET_INFO_BY_FD, -ret)
        return buf.raw

    def u32(data: bytes, name: str) -> int:
        at = offsets[name]
        return int.from_bytes(data[at : at + 4], _ORDER)

    progs: list[ProgRow] = []
    for name, step, type_name in plan["progs"]:
        data = info(fds[step], prog_size)
        progs.append(
            (
                u32(data, "prog.id"),
                name,
                type_name,
                u32(data, "prog.xlated_prog_len") // 8,
                u32(data, "prog.jited_prog_len"),
            )
        )
    maps: list[MapRow] = []
    for name, step, type_name in plan["maps"]:
        data = info(fds[step], map_size)
        maps.append(
            (
                u32(data, "map.id"),
                name,
                type_name,
                u32(data, "map.key_size"),
                u32(data, "map.value_size"),
                u32(data, "map.max_entries"),
            )
        )
    return progs, maps


# -- the cache -----------------------------------------------------------------------------
def plan_key(path: str, options: tuple[object, ...]) -> tuple[object, ...]:
    """What a plan depends on besides the object's bytes: its path and the options, bpfkit
    (version and sources), the kernel (release, build, machine, boot, BTF) and the user."""
    from bpfkit import __version__

    u = os.uname()
    return (
        VERSION,
        os.path.realpath(path),
        options,
        __version__,
        cachedir.code_stamp(),
        (u.release, u.version, u.machine, cachedir.vmlinux_stamp(), cachedir.boot_id()),
        os.geteuid(),
    )


def _name(key: tuple[object, ...]) -> str:
    import zlib

    where: Any = key[1:3]  # the object's path and the options
    return f"{zlib.crc32(marshal.dumps(where)):08x}-{os.path.basename(str(key[1]))[:40]}"


def lookup(key: tuple[object, ...], obj: bytes) -> Plan | None:
    """The plan stored for ``key`` and exactly these object bytes, or None."""
    body = cachedir.read(KIND, _name(key))
    if body is None:
        return None
    try:
        stored_key, stored_obj, plan = marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        return None
    if stored_key != key or stored_obj != obj or not isinstance(plan, dict):
        return None
    return plan


def store(key: tuple[object, ...], obj: bytes, plan: Plan) -> None:
    """Keep ``plan`` for the next process loading the same object the same way."""
    try:
        body = marshal.dumps((key, obj, plan))  # type: ignore[arg-type]
    except ValueError:
        return
    cachedir.write(KIND, _name(key), body)
