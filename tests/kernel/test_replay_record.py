"""What the load recorder (bpfkit/kernel/replay.py) accepts as replayable, over a fake
kernel: no root needed.  The kernel-checked replays are in test_load_replay.py."""

from __future__ import annotations

import ctypes
import errno
import marshal
import struct

import pytest

from bpfkit.kernel import replay
from bpfkit.syscalls import attrs
from bpfkit.uapi import Cmd, MapType


class FakeKernel:
    """Hands out descriptors from 10 up; refuses the commands listed in ``refuse``."""

    def __init__(self, refuse: tuple[int, ...] = ()) -> None:
        self.next_fd = 10
        self.refuse = refuse

    def __call__(self, cmd: int, attr: ctypes.Structure) -> int:
        if cmd in self.refuse:
            raise OSError(errno.EINVAL, "refused")
        if cmd in (Cmd.MAP_CREATE, Cmd.PROG_LOAD, Cmd.BTF_LOAD):
            self.next_fd += 1
            return self.next_fd
        return 0


def _map(rec: replay.Recorder, map_type: int, **kw: int) -> int:
    attr = attrs.MapCreateAttr(map_type=map_type, key_size=4, value_size=8, max_entries=1, **kw)
    return rec(Cmd.MAP_CREATE, attr)


def _update(rec: replay.Recorder, fd: int, value: bytes) -> None:
    key, val = ctypes.create_string_buffer(4), ctypes.create_string_buffer(value, len(value))
    attr = attrs.MapElemAttr(map_fd=fd, key=ctypes.addressof(key), value=ctypes.addressof(val))
    rec(Cmd.MAP_UPDATE_ELEM, attr)


def _prog(rec: replay.Recorder, code: bytes, **kw: int) -> int:
    insns = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(b"GPL")
    attr = attrs.ProgLoadAttr(
        prog_type=1,
        insn_cnt=len(code) // 8,
        insns=ctypes.addressof(insns),
        license=ctypes.addressof(lic),
        **kw,
    )
    return rec(Cmd.PROG_LOAD, attr)


def _ld_map(fd: int) -> bytes:
    """r1 = map fd (ld_imm64, BPF_PSEUDO_MAP_FD), then exit."""
    return (
        struct.pack("<BBhi", 0x18, 0x11, 0, fd)
        + struct.pack("<BBhi", 0, 0, 0, 0)
        + struct.pack("<BBhi", 0x95, 0, 0, 0)
    )


def test_a_load_is_recorded_with_its_descriptors_placed() -> None:
    rec = replay.Recorder(FakeKernel())
    mfd = _map(rec, MapType.ARRAY)
    _update(rec, mfd, b"\x01" * 8)
    rec(Cmd.MAP_FREEZE, attrs.MapFdAttr(map_fd=mfd))
    pfd = _prog(rec, _ld_map(mfd))
    assert rec.why is None
    plan = rec.plan(progs=[("p", pfd, "socket_filter")], maps=[("m", mfd, "array")], notes=[])
    plan = marshal.loads(marshal.dumps(plan))  # plain data
    steps, blobs = plan["steps"], plan["blobs"]
    assert [s[0] for s in steps] == [Cmd.MAP_CREATE, Cmd.MAP_UPDATE_ELEM, Cmd.MAP_FREEZE, 5]
    # The map's fd goes into the update's and freeze's map_fd and into the ld_imm64.
    assert steps[1][3] == [(attrs.MapElemAttr.map_fd.offset, 0)]
    assert steps[2][3] == [(0, 0)]
    insns = next(blobs[i] for off, i in steps[3][2] if off == attrs.ProgLoadAttr.insns.offset)
    assert insns[1] == [(4, 0)]
    assert blobs[steps[1][2][1][1]][0] == b"\x01" * 8  # the value, as written
    assert plan["progs"] == [("p", 3, "socket_filter")] and plan["maps"] == [("m", 0, "array")]


@pytest.mark.parametrize(
    "case, why",
    [
        ("percpu", "not plain bytes"),
        ("foreign inner map", "inner_map_fd 99 was not made by this load"),
        ("foreign map in code", "map fd of an ld_imm64 77 was not made"),
        ("verifier log", "ProgLoadAttr.log_level is set"),
        ("other command", "not part of a replayable load"),
    ],
)
def test_what_cannot_be_replayed_says_why(case: str, why: str) -> None:
    rec = replay.Recorder(FakeKernel())
    if case == "percpu":
        _update(rec, _map(rec, MapType.PERCPU_ARRAY), bytes(8))
    elif case == "foreign inner map":
        _map(rec, MapType.ARRAY_OF_MAPS, inner_map_fd=99)
    elif case == "foreign map in code":
        _prog(rec, _ld_map(77))
    elif case == "verifier log":
        _prog(rec, _ld_map(_map(rec, MapType.HASH)), log_level=1)
    else:
        rec(Cmd.OBJ_GET, attrs.ObjAttr())
    assert rec.why is not None and why in rec.why


def test_a_refused_command_is_left_out() -> None:
    """A command the kernel refuses (a loader's probe before its fallback) made nothing."""
    rec = replay.Recorder(FakeKernel(refuse=(Cmd.BTF_LOAD,)))
    blob = ctypes.create_string_buffer(24)
    with pytest.raises(OSError):
        rec(Cmd.BTF_LOAD, attrs.BtfLoadAttr(btf=ctypes.addressof(blob), btf_size=24))
    _prog(rec, _ld_map(_map(rec, MapType.HASH)))
    assert rec.why is None and [s[0] for s in rec.steps] == [Cmd.MAP_CREATE, Cmd.PROG_LOAD]
