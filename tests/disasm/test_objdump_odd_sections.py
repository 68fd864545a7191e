"""Odd but readable section headers: ``bpfkit dump`` prints what llvm-objdump-19 prints."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bpfkit.disasm.objdump import dump
from bpfkit.obj.reader import read_object
from helpers import ROOT, llvm_objdump

HELLO = ROOT / "examples" / "hello" / "hello.o"


def _set_sh_type(src: Path, dst: Path, section: str, sh_type: int) -> Path:
    data = bytearray(src.read_bytes())
    with open(src, "rb") as f:
        elf = ELFFile(f)
        index = next(i for i, s in enumerate(elf.iter_sections()) if s.name == section)
        at = elf["e_shoff"] + index * elf["e_shentsize"] + 4
    struct.pack_into("<I", data, at, sh_type)
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.requires("llvm19")
def test_executable_sht_null_section_is_disassembled_like_llvm(tmp_path: Path) -> None:
    """hello.o with its program section's sh_type set to SHT_NULL (0): llvm-objdump-19
    still disassembles it (it was a struct.error traceback)."""
    obj = _set_sh_type(HELLO, tmp_path / "null.o", "kprobe/SyS_clone", 0)
    mine = dump(read_object(str(obj)), imm_hex=True)
    theirs = llvm_objdump([obj], None, True, False)[obj]
    assert "r1 = 0xa74737572206d6f ll" in theirs
    assert mine == theirs
