"""Malformed objects: each gets one ObjectError naming the file and the problem, never a traceback."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfkit.errors import ObjectError
from bpfkit.obj import read_object
from helpers import ROOT, TESTS, clang_bpf

HELLO = ROOT / "examples" / "hello" / "hello.o"
SEED = HELLO.read_bytes()

# hello.o layout (readelf -S): e_shoff 504, 9 section headers of 64 bytes; section 3 is
# kprobe/SyS_clone (112 bytes at 0x40), section 7 .rel.eh_frame, section 8 .symtab.
E_SHOFF: int = struct.unpack_from("<Q", SEED, 40)[0]


def _shdr(i: int) -> int:
    return E_SHOFF + 64 * i


def _patch(data: bytes, pos: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, pos, value)
    return bytes(b)


def _error(data: bytes) -> str:
    with pytest.raises(ObjectError) as exc:
        read_object(data, name="bad.o")
    msg = str(exc.value)
    assert msg.startswith("bad.o: "), msg
    return msg


def test_not_elf() -> None:
    assert "not an ELF file" in _error(b"#!/bin/sh\necho hi\n")
    assert "not an ELF file" in _error(b"")


def test_elf32() -> None:
    assert "32-bit" in _error(_patch(SEED, 4, "B", 1))


def test_bad_data_encoding() -> None:
    assert "data encoding" in _error(_patch(SEED, 5, "B", 7))


def test_wrong_machine_names_it() -> None:
    msg = _error(_patch(SEED, 18, "<H", 62))
    assert "EM_X86_64" in msg and "EM_BPF" in msg
    assert "AArch64" in _error(_patch(SEED, 18, "<H", 183)) or "arm64" in _error(
        _patch(SEED, 18, "<H", 183)
    )


def test_not_relocatable() -> None:
    assert "ET_EXEC" in _error(_patch(SEED, 16, "<H", 2))


@pytest.mark.requires("clang19")
def test_host_object(tmp_path: Path) -> None:
    # A real x86-64 object: the mistake of compiling without -target bpf.
    import subprocess

    src = tmp_path / "x.c"
    src.write_text("int f(void) { return 1; }\n")
    subprocess.run(["clang-19", "-c", str(src), "-o", str(tmp_path / "x.o")], check=True)
    with pytest.raises(ObjectError, match=r"x\.o: not a BPF object: machine is EM_X86_64"):
        read_object(tmp_path / "x.o")


@pytest.mark.parametrize("cut", [3, 10, 63, 64, 100, 200, 400, 504, 520, 600, len(SEED) - 1])
def test_truncated(cut: int) -> None:
    msg = _error(SEED[:cut])
    assert "truncated" in msg or "not an ELF" in msg


def test_corrupt_shoff() -> None:
    assert "e_shoff" in _error(_patch(SEED, 40, "<Q", 10**9))
    assert "past the end" in _error(_patch(SEED, 40, "<Q", len(SEED) - 100))


def test_no_section_headers() -> None:
    assert "no section header table" in _error(_patch(SEED, 40, "<Q", 0))


def test_corrupt_shentsize_and_shstrndx() -> None:
    assert "e_shentsize" in _error(_patch(SEED, 58, "<H", 40))
    assert "e_shstrndx" in _error(_patch(SEED, 62, "<H", 99))


def test_corrupt_section_offset_and_size() -> None:
    msg = _error(_patch(SEED, _shdr(3) + 24, "<Q", 10**6))
    assert "section [3]" in msg and "past the end" in msg
    msg = _error(_patch(SEED, _shdr(3) + 32, "<Q", 10**6))
    assert "section [3]" in msg


def test_function_outside_section() -> None:
    # Shrink kprobe/SyS_clone to 64 bytes: the 112-byte function no longer fits.
    msg = _error(_patch(SEED, _shdr(3) + 32, "<Q", 64))
    assert "kprobe__sys_clone" in msg and "outside the section" in msg


def test_program_size_not_multiple_of_8() -> None:
    # Symbol 3 (kprobe__sys_clone): st_size at symtab + 3*24 + 16.
    symtab = struct.unpack_from("<Q", SEED, _shdr(8) + 24)[0]
    msg = _error(_patch(SEED, symtab + 3 * 24 + 16, "<Q", 100))
    assert "multiples of 8" in msg


def test_lddw_cut_in_half() -> None:
    # Make the function end after the first slot of the first lddw.
    symtab = struct.unpack_from("<Q", SEED, _shdr(8) + 24)[0]
    msg = _error(_patch(SEED, symtab + 3 * 24 + 16, "<Q", 8))
    assert "lddw" in msg and "kprobe__sys_clone" in msg


def _rel_entry() -> int:
    offset: int = struct.unpack_from("<Q", SEED, _shdr(7) + 24)[0]
    return offset


def test_relocation_outside_section() -> None:
    msg = _error(_patch(SEED, _rel_entry(), "<Q", 0x1000))
    assert ".rel.eh_frame" in msg and "outside section '.eh_frame'" in msg


def test_relocation_bad_symbol() -> None:
    msg = _error(_patch(SEED, _rel_entry() + 8, "<Q", (77 << 32) | 2))
    assert "symbol 77" in msg


def test_relocation_bad_target_section() -> None:
    msg = _error(_patch(SEED, _shdr(7) + 44, "<I", 50))
    assert "section 50" in msg


def test_relocation_into_program_checked(tmp_path: Path) -> None:
    # Retarget .rel.eh_frame at the program section: offset 0x1c is not an instruction start.
    msg = _error(_patch(SEED, _shdr(7) + 44, "<I", 3))
    assert "instruction boundary" in msg


def test_symbol_bad_section() -> None:
    symtab = struct.unpack_from("<Q", SEED, _shdr(8) + 24)[0]
    msg = _error(_patch(SEED, symtab + 3 * 24 + 6, "<H", 40))
    assert "kprobe__sys_clone" in msg and "section 40" in msg


def test_symtab_bad_link() -> None:
    # .symtab's sh_link must name a string table.
    msg = _error(_patch(SEED, _shdr(8) + 40, "<I", 3))
    assert msg


def test_bad_version_section() -> None:
    msg = _error(_patch(SEED, _shdr(5) + 32, "<Q", 3))
    assert "version" in msg


def test_garbage_after_magic() -> None:
    _error(b"\x7fELF" + bytes(range(256)) * 3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)), min_size=1, max_size=8)
)
def test_mutations_never_crash(edits: list[tuple[int, int]]) -> None:
    data = bytearray(SEED)
    for pos, val in edits:
        data[pos] = val
    try:
        read_object(bytes(data), name="mutant.o")
    except ObjectError as e:
        assert str(e).startswith("mutant.o: ")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=700))
def test_random_bytes_with_header_never_crash(tail: bytes) -> None:
    data = SEED[:64] + tail
    try:
        read_object(data, name="rand.o")
    except ObjectError as e:
        assert str(e).startswith("rand.o: ")


# --- objects with BTF, maps and relocations -----------------------------------------------


@pytest.fixture(scope="module")
def corpus_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:

    out = tmp_path_factory.mktemp("mal") / "corpus.o"
    src = TESTS / "data" / "obj_reader" / "corpus.c"
    return clang_bpf(src, out).read_bytes()


@pytest.mark.requires("clang19")
def test_corrupt_btf_with_btf_maps(corpus_bytes: bytes) -> None:
    obj = read_object(corpus_bytes)
    btf = obj.section(".BTF")
    data = bytearray(corpus_bytes)
    data[btf.offset : btf.offset + 2] = b"\0\0"
    msg = _error(bytes(data))
    assert ".BTF: bad magic" in msg


@pytest.mark.requires("clang19")
def test_corrupt_legacy_maps_section(corpus_bytes: bytes) -> None:
    obj = read_object(corpus_bytes)
    maps = obj.section("maps")
    (shoff,) = struct.unpack_from("<Q", corpus_bytes, 40)
    # 40 bytes for two maps -> 39: no record size fits.
    msg = _error(_patch(corpus_bytes, shoff + 64 * maps.index + 32, "<Q", 39))
    assert "map definition size in section 'maps'" in msg


@pytest.mark.requires("clang19")
def test_corpus_mutations_never_crash(corpus_bytes: bytes) -> None:
    """Mutate the bytes the reader interprets (headers, symbols, relocations, maps, BTF)."""
    obj = read_object(corpus_bytes)
    (shoff,) = struct.unpack_from("<Q", corpus_bytes, 40)
    spots = list(range(64)) + list(range(shoff, shoff + 64 * len(obj.sections)))
    for sec in obj.sections:
        interesting = sec.executable or sec.name in (".BTF", ".BTF.ext", ".maps", "maps")
        if interesting or sec.type in ("SHT_SYMTAB", "SHT_REL") and "debug" not in sec.name:
            spots += range(sec.offset, sec.offset + sec.size)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.sampled_from(spots), st.integers(0, 255)), min_size=1, max_size=4))
    def run(edits: list[tuple[int, int]]) -> None:
        data = bytearray(corpus_bytes)
        for pos, val in edits:
            data[pos] = val
        try:
            read_object(bytes(data), name="mutant.o")
        except ObjectError as e:
            assert str(e).startswith("mutant.o: ")

    run()
