"""Sanity checks on the raw bytes of an ELF file, before pyelftools parses it.

pyelftools parses lazily and trusts the headers; a truncated or corrupt file then fails
deep inside it with a bare ``struct.error`` or reads past the end.  These checks look at
the ELF header and the section header table first, so that the usual problems (not ELF,
32-bit, wrong machine, not relocatable, cut short, offsets past the end) get a message
that says what is wrong and where.
"""

from __future__ import annotations

import struct

from bpfkit.errors import ObjectError

EM_BPF = 247
ET_REL = 1
SHT_NOBITS = 8
EHDR_SIZE = 64
SHDR_SIZE = 64

_E_TYPES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
# The machines a BPF object is most often confused with (host objects built by mistake).
_MACHINES = {
    0: "EM_NONE (no machine)",
    3: "EM_386 (x86)",
    8: "EM_MIPS",
    20: "EM_PPC",
    21: "EM_PPC64",
    22: "EM_S390",
    40: "EM_ARM",
    62: "EM_X86_64 (x86-64)",
    183: "EM_AARCH64 (arm64)",
    243: "EM_RISCV (RISC-V)",
    258: "EM_LOONGARCH",
}


def machine_name(machine: int) -> str:
    """A readable name for an ``e_machine`` value."""
    return _MACHINES.get(machine, f"e_machine {machine}")


def check_header(data: bytes, path: str) -> tuple[bool, int, int, int]:
    """Check the ELF header; return ``(big_endian, e_shoff, e_shnum, e_shstrndx)``.

    Raises :class:`ObjectError` naming ``path`` and the problem.
    """
    if len(data) < 4 or data[:4] != b"\x7fELF":
        head = data[:4]
        raise ObjectError(
            f"{path}: not an ELF file (starts with {head!r}, expected b'\\x7fELF'); "
            "give a BPF object built with clang -target bpf -c or llc -march=bpf -filetype=obj"
        )
    if len(data) < EHDR_SIZE:
        raise ObjectError(
            f"{path}: truncated ELF file: {len(data)} bytes, the ELF64 header alone needs 64"
        )
    ei_class, ei_data = data[4], data[5]
    if ei_class == 1:
        raise ObjectError(f"{path}: 32-bit ELF (ELFCLASS32); BPF objects are ELF64")
    if ei_class != 2:
        raise ObjectError(f"{path}: invalid ELF class byte {ei_class} (expected 2, ELFCLASS64)")
    if ei_data not in (1, 2):
        raise ObjectError(
            f"{path}: invalid ELF data encoding byte {ei_data} (1 little-endian, 2 big-endian)"
        )
    big = ei_data == 2
    e = ">" if big else "<"
    (e_type, e_machine) = struct.unpack_from(e + "HH", data, 16)
    (e_shoff,) = struct.unpack_from(e + "Q", data, 40)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from(e + "HHH", data, 58)
    if e_machine != EM_BPF:
        raise ObjectError(
            f"{path}: not a BPF object: machine is {machine_name(e_machine)}, expected "
            f"EM_BPF ({EM_BPF}); compile with clang -target bpf (or llc -march=bpf)"
        )
    if e_type != ET_REL:
        kind = _E_TYPES.get(e_type, f"e_type {e_type}")
        raise ObjectError(
            f"{path}: not a relocatable object ({kind}); BPF loaders take ET_REL objects "
            "as produced by clang -c / llc -filetype=obj, not linked files"
        )
    if e_shoff == 0:
        raise ObjectError(
            f"{path}: no section header table (e_shoff is 0): an object without sections "
            "has no programs, maps or symbols"
        )
    if e_shentsize != SHDR_SIZE:
        raise ObjectError(
            f"{path}: corrupt ELF header: e_shentsize is {e_shentsize}, ELF64 section "
            f"headers are {SHDR_SIZE} bytes"
        )
    if e_shoff + SHDR_SIZE > len(data):
        raise ObjectError(
            f"{path}: truncated or corrupt: the section header table at e_shoff {e_shoff:#x} "
            f"lies past the end of the file ({len(data)} bytes)"
        )
    if e_shnum == 0:
        # Extended numbering: the count is in section 0's sh_size (ELF gABI).
        (e_shnum,) = struct.unpack_from(e + "Q", data, e_shoff + 32)
    if e_shstrndx == 0xFFFF:
        (e_shstrndx,) = struct.unpack_from(e + "I", data, e_shoff + 40)
    end = e_shoff + e_shnum * SHDR_SIZE
    if end > len(data):
        raise ObjectError(
            f"{path}: truncated or corrupt: {e_shnum} section headers at e_shoff {e_shoff:#x} "
            f"end at byte {end}, past the end of the file ({len(data)} bytes)"
        )
    if e_shstrndx >= e_shnum:
        raise ObjectError(
            f"{path}: corrupt ELF header: section name table index e_shstrndx {e_shstrndx} "
            f"is not below the number of sections ({e_shnum})"
        )
    return big, e_shoff, e_shnum, e_shstrndx


def check_sections(data: bytes, path: str, big: bool, shoff: int, shnum: int) -> None:
    """Check that every section's contents lie inside the file."""
    fmt = struct.Struct((">" if big else "<") + "IIQQQQIIQQ")
    for i in range(1, shnum):
        (_, sh_type, _, _, sh_offset, sh_size, _, _, _, _) = fmt.unpack_from(
            data, shoff + i * SHDR_SIZE
        )
        if sh_type == SHT_NOBITS or sh_type == 0:
            continue
        if sh_offset + sh_size > len(data):
            raise ObjectError(
                f"{path}: truncated or corrupt: section [{i}] (sh_offset {sh_offset:#x}, "
                f"sh_size {sh_size:#x}) runs past the end of the file ({len(data)} bytes)"
            )
