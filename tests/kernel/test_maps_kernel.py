"""Maps from Python against the real kernel: CRUD, codecs, per-CPU values, flags, freeze,
pins and the errors users hit (full map, missing key)."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator

import pytest

from bpfkit.errors import KernelError
from bpfkit.kernel import pins
from bpfkit.kernel.maps import Int, Map, create_map, possible_cpus
from bpfkit.syscalls import attrs
from helpers import no_leaked_fds

pytestmark = pytest.mark.requires("bpf")


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    with no_leaked_fds():
        yield


class Pair(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_int32)]


def test_hash_crud_with_int_codecs() -> None:
    with create_map("hash", 4, 8, 16, name="bpfkit_h", key=int, value=int) as m:
        assert len(m) == 0 and list(m) == []
        m[1] = 10
        m[2] = 20
        m[2] += 1
        assert m[1] == 10 and m[2] == 21
        assert 1 in m and 3 not in m
        assert dict(m.items()) == {1: 10, 2: 21}
        assert sorted(m.keys()) == [1, 2] and sorted(m.values()) == [10, 21]
        del m[1]
        assert 1 not in m and len(m) == 1
        with pytest.raises(KeyError):
            del m[1]
        with pytest.raises(KeyError):
            _ = m[99]
        assert m.get(99, "none") == "none"
        assert m.pop(2) == 21 and len(m) == 0
        i = m.info()
        assert (i.type_name, i.key_size, i.value_size, i.max_entries) == ("hash", 4, 8, 16)
        assert i.name == "bpfkit_h"


def test_default_codec_reads_bytes_and_writes_ints_or_bytes() -> None:
    with create_map("hash", 4, 4, 4) as m:
        m[7] = b"\x01\x02\x03\x04"
        m[b"\x08\x00\x00\x00"] = 5
        assert m[7] == b"\x01\x02\x03\x04"
        assert m[8] == (5).to_bytes(4, "little")
        with pytest.raises(ValueError, match="expected 4 bytes"):
            m[1] = b"xy"
        with pytest.raises(ValueError, match="does not fit"):
            m[1 << 40] = 0


def test_ctypes_structure_values_and_typed_views() -> None:
    with create_map("array", 4, 8, 4, value=Pair) as m:
        m[0] = Pair(3, -4)
        got = m[0]
        assert isinstance(got, Pair) and (got.a, got.b) == (3, -4)
        assert len(m) == 4  # every array index exists
        assert m[3].a == 0
        view = m.typed(key=int, value=Int(8, signed=True))
        assert view[0] == 3 - (4 << 32)
        view.close()  # a view does not own the descriptor
        assert not m.closed
        with pytest.raises(KernelError, match="cannot be deleted|EINVAL"):
            del m[0]


def test_full_map_and_update_flags() -> None:
    with create_map("hash", 4, 4, 2, key=int, value=int) as m:
        m[1] = 1
        m[2] = 2
        with pytest.raises(KernelError, match="map is full"):
            m[3] = 3
        with pytest.raises(KernelError, match="EEXIST"):
            m.put(1, 5, attrs.NOEXIST)
        m.put(1, 5, attrs.EXIST)
        assert m[1] == 5
        del m[2]
        with pytest.raises(KernelError, match="ENOENT"):
            m.put(2, 5, attrs.EXIST)


def test_percpu_values_are_lists() -> None:
    n = possible_cpus()
    with create_map("percpu_hash", 4, 4, 4, key=int, value=int) as m:
        m[1] = 7
        assert m[1] == [7] * n
        m[2] = list(range(n))
        assert m[2] == list(range(n))
        with pytest.raises(ValueError, match="per-CPU"):
            m[3] = [1] * (n + 1)


def test_freeze_makes_the_map_read_only() -> None:
    with create_map("array", 4, 4, 1, key=int, value=int, flags=attrs.F_RDONLY_PROG) as m:
        m[0] = 42
        m.freeze()
        assert m[0] == 42
        with pytest.raises(KernelError, match="frozen"):
            m[0] = 1


def test_pin_and_reopen() -> None:
    path = os.path.join(pins.ensure_bpffs(), f"bpfkit_test_map_{os.getpid()}")
    try:
        with create_map("hash", 4, 4, 8, name="pinme", key=int, value=int) as m:
            m[5] = 55
            m.pin(path)
            map_id = m.info().id
        with Map.from_pin(path, key=int, value=int) as again:
            assert again[5] == 55 and again.info().id == map_id
            assert again.name == "pinme" and again.type_name == "hash"
        with Map.from_id(map_id, key=int, value=int) as byid:
            assert byid[5] == 55
    finally:
        if os.path.exists(path):
            pins.unpin(path)


def test_invalid_map_says_why() -> None:
    with pytest.raises(KernelError) as ei:
        create_map("array", 8, 4, 1)  # array keys are 4 bytes
    assert "BPF_MAP_CREATE" in str(ei.value) and "EINVAL" in str(ei.value)
    with pytest.raises(KernelError, match="unknown map type 'nope'"):
        create_map("nope", 4, 4, 1)


def test_iteration_survives_keys_deleted_meanwhile() -> None:
    # A running program may delete entries while user space walks the map: items() and
    # values() skip them instead of raising KeyError as Mapping's default views would.
    with create_map("hash", 4, 4, 16, key=int, value=int) as m:
        for k in range(10):
            m[k] = k * 10
        seen: dict[int, int] = {}
        deleted: set[int] = set()
        for k, v in m.items():
            seen[k] = v
            victim = next((o for o in m if o not in seen), None)
            if victim is not None:
                del m[victim]
                deleted.add(victim)
        assert seen and deleted and not seen.keys() & deleted
        assert all(v == k * 10 for k, v in seen.items())
        assert sorted(m.values()) == sorted(k * 10 for k in m)


def test_unencodable_keys_are_not_in_the_map() -> None:
    with create_map("hash", 4, 4, 4, key=int, value=int) as m:
        m[1] = 1
        assert "one" not in m and b"xy" not in m and (1 << 40) not in m
        assert 1 in m
