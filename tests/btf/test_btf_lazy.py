"""bpfkit.btf.lazy: the kernel's BTF decoded on demand gives the same types, lookups and
errors as decoding it all (bpfkit.btf.parse_btf), and decodes only what is asked for."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from bpfkit.btf import Btf, load_vmlinux, parse_btf, read_vmlinux
from bpfkit.btf.lazy import LazyBtf, LazyTypes
from bpfkit.errors import BtfError


@pytest.fixture(scope="module")
def full() -> Btf:
    return parse_btf(read_vmlinux())


@pytest.mark.requires("kernel-btf")
def test_the_kernel_btf_is_read_on_demand() -> None:
    assert isinstance(load_vmlinux(), LazyBtf)  # shared by the process: other tests use it
    btf = LazyBtf(read_vmlinux())
    task = btf.find("task_struct", "struct")
    assert isinstance(btf.types, LazyTypes) and btf.types._all is None
    assert task.name == "task_struct" and len(btf.types._cache) < 100


@pytest.mark.requires("kernel-btf")
def test_types_by_id_equal_the_full_decode(full: Btf) -> None:
    lazy = LazyBtf(read_vmlinux())
    assert len(lazy) == len(full)
    ids = random.Random(7).sample(range(len(full)), 2000) + [0, 1, len(full) - 1]
    for i in ids:
        assert lazy.types[i] == full.types[i]
        assert lazy.type(i) == full.type(i)
    assert lazy.types[-1] == full.types[-1]
    assert lazy.types[5:9] == full.types[5:9]  # a slice decodes everything, once
    assert lazy.types[1:] == full.types[1:]
    with pytest.raises(IndexError):
        lazy.types[len(full)]
    with pytest.raises(BtfError, match="does not exist"):
        lazy.type(len(full))


@pytest.mark.requires("kernel-btf")
def test_lookups_by_name_equal_the_full_decode(full: Btf) -> None:
    lazy = LazyBtf(read_vmlinux())
    for name in ("task_struct", "sk_buff", "pt_regs", "int", "bpf_map_type", "file", "u32"):
        assert [t.id for t in lazy.find_all(name)] == [t.id for t in full.find_all(name)], name
        for kind in ("struct", "typedef", "enum"):
            assert lazy.find_all(name, kind) == full.find_all(name, kind)
    assert lazy.find_all("no_such_type_in_any_kernel") == []
    with pytest.raises(BtfError, match="no struct type named"):
        lazy.find("no_such_type_in_any_kernel", "struct")
    # Prefix search: every name that starts with the prefix, by id.
    want = [(t.name, t.id) for t in full.types if t.name.startswith("task_struct")]
    assert lazy.named_like("task_struct") == want


@pytest.mark.requires("kernel-btf")
def test_iterating_decodes_everything_once(full: Btf) -> None:
    lazy = LazyBtf(read_vmlinux())
    assert list(lazy) == list(full)
    assert isinstance(lazy.types, LazyTypes) and lazy.types._all is not None
    assert lazy.format(full.find("task_struct").id) == "struct task_struct"


def _tiny(records: bytes, strings: bytes = b"\0a\0") -> bytes:
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(records), len(records), len(strings))
    return hdr + records + strings


def test_a_tiny_blob_reads_as_parse_btf_does() -> None:
    # int a (4 bytes, signed), then a pointer to it
    records = struct.pack("<IIII", 1, 1 << 24, 4, (1 << 24) | 32) + struct.pack(
        "<III", 0, 2 << 24, 1
    )
    data = _tiny(records)
    assert list(LazyBtf(data)) == list(parse_btf(data))
    assert LazyBtf(data).find("a").id == 1


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (struct.pack("<III", 1, 1 << 24, 4), "needs 4 more bytes"),  # INT, no encoding
        (struct.pack("<IIIII", 1, 2 << 24, 0, 1, 2 << 24), "cut short"),  # 8 bytes left
        (struct.pack("<III", 1, 25 << 24, 4), "unknown kind 25"),
        (struct.pack("<III", 1, 0, 0), "kind 0"),
    ],
)
def test_malformed_records_are_refused_as_the_decoder_refuses_them(
    records: bytes, message: str
) -> None:
    data = _tiny(records)
    with pytest.raises(BtfError, match=message):
        parse_btf(data)
    with pytest.raises(BtfError, match=message):
        LazyBtf(data)


def _walks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import bpfkit.btf.lazy as lazy

    walked: list[int] = []
    real = lazy.iter_records

    def spy(*args: object, **kwargs: object) -> object:
        walked.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(lazy, "iter_records", spy)
    return walked


def test_the_index_is_cached_and_a_damaged_one_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BPFKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("BPFKIT_NO_CACHE", raising=False)
    records = struct.pack("<IIII", 1, 1 << 24, 4, (1 << 24) | 32) + struct.pack(
        "<III", 0, 2 << 24, 1
    )
    data = _tiny(records)
    walked = _walks(monkeypatch)
    first = list(LazyBtf(data))
    assert walked == [1]
    assert list(LazyBtf(data)) == first and walked == [1]  # read back, not walked
    (entry,) = (tmp_path / "btf").iterdir()
    entry.write_bytes(entry.read_bytes()[:-3] + b"bad")
    assert list(LazyBtf(data)) == first and walked == [1, 1]  # damaged: walked again
    other = _tiny(records, b"\0b\0")  # other bytes: their own index
    assert LazyBtf(other).find("b").id == 1 and walked == [1, 1, 1]
    assert len(list((tmp_path / "btf").iterdir())) == 1  # one kernel's index is kept
