"""Relocation types of the BPF ELF ABI and the classification of a relocation's target.

The R_BPF_* numbers are LLVM's (llvm/BinaryFormat/ELFRelocs/BPF.def); the
classification follows what libbpf does with each relocation of a program section
(bpf_program__record_reloc): map, global data, bpf-to-bpf call, function address, extern.
"""

from __future__ import annotations

from bpfkit.obj.spec import RelocKind

R_BPF_NONE = 0
R_BPF_64_64 = 1  # lddw: 64-bit immediate split across the two slots
R_BPF_64_ABS64 = 2  # 64-bit data (.BTF, .maps initialisers, DWARF)
R_BPF_64_ABS32 = 3  # 32-bit data
R_BPF_64_NODYLD32 = 4  # 32-bit data no dynamic linker touches (.BTF.ext)
R_BPF_64_32 = 10  # call imm (pc-relative, in instructions)

RELOC_NAMES = {
    R_BPF_NONE: "R_BPF_NONE",
    R_BPF_64_64: "R_BPF_64_64",
    R_BPF_64_ABS64: "R_BPF_64_ABS64",
    R_BPF_64_ABS32: "R_BPF_64_ABS32",
    R_BPF_64_NODYLD32: "R_BPF_64_NODYLD32",
    R_BPF_64_32: "R_BPF_64_32",
}

# Bytes a relocation of each type patches in a data section (for bounds checks).
RELOC_WIDTH = {
    R_BPF_NONE: 0,
    R_BPF_64_64: 16,
    R_BPF_64_ABS64: 8,
    R_BPF_64_ABS32: 4,
    R_BPF_64_NODYLD32: 4,
    R_BPF_64_32: 8,
}

CALL_OPCODE = 0x85
LDDW_OPCODE = 0x18
BPF_PSEUDO_CALL = 1


def reloc_name(rtype: int) -> str:
    """``R_BPF_64_64`` etc., or ``R_BPF_<n>`` for an unknown number."""
    return RELOC_NAMES.get(rtype, f"R_BPF_{rtype}")


def is_map_section(name: str | None) -> bool:
    """True for legacy ``maps``/``maps/*`` and BTF-defined ``.maps`` sections."""
    return name is not None and (name in ("maps", ".maps") or name.startswith("maps/"))


def is_data_section(name: str | None) -> bool:
    """True for the global data sections libbpf turns into array maps."""
    if name is None:
        return False
    return name in (".data", ".rodata", ".bss") or name.startswith((".data.", ".rodata.", ".bss."))


def is_readonly_data(name: str) -> bool:
    """True for ``.rodata`` and ``.rodata.*`` (frozen maps once loaded)."""
    return name == ".rodata" or name.startswith(".rodata.")


def classify(
    *,
    in_executable: bool,
    opcode: int,
    src: int,
    rtype: int,
    sym_section: str | None,
    sym_section_executable: bool,
    sym_defined: bool,
    kconfig: bool = False,
) -> RelocKind:
    """What a relocation at an instruction refers to (see :class:`RelocKind`).

    ``kconfig`` is True when BTF places the (undefined) symbol in the ``.kconfig`` datasec.
    """
    if not in_executable:
        return RelocKind.OTHER
    if not sym_defined:
        return RelocKind.KCONFIG if kconfig else RelocKind.EXTERN
    if sym_section == ".kconfig":
        return RelocKind.KCONFIG
    if rtype == R_BPF_64_32 and opcode == CALL_OPCODE and src == BPF_PSEUDO_CALL:
        return RelocKind.CALL
    if is_map_section(sym_section):
        return RelocKind.MAP
    if is_data_section(sym_section):
        return RelocKind.GLOBAL_DATA
    if opcode == LDDW_OPCODE and sym_section_executable:
        return RelocKind.FUNC_ADDR
    return RelocKind.OTHER
