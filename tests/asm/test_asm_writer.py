"""bpfkit.obj.writer on its own: string tables, layout, symbols and relocations, read back."""

from __future__ import annotations

import io

import pytest
from elftools.elf.elffile import ELFFile

from bpfkit.obj import writer as w


def test_string_table_is_tail_merged_in_llvm_order() -> None:
    data, offsets = w.string_table([".text", ".rel.text", "_license", "license", "x", ""])
    # Longest of a suffix family first; ".text" lives inside ".rel.text", "license"
    # inside "_license".
    assert data == b"\0x\0.rel.text\0_license\0"  # descending by reversed bytes
    assert offsets[".text"] == offsets[".rel.text"] + 4
    assert offsets["license"] == offsets["_license"] + 1
    assert offsets[""] == 0
    for name, off in offsets.items():
        assert data[off:].split(b"\0", 1)[0] == name.encode()


@pytest.mark.parametrize("big_endian", [False, True])
def test_written_object_reads_back(big_endian: bool) -> None:
    text = w.ElfSection(".text", w.SHT_PROGBITS, w.SHF_ALLOC | w.SHF_EXECINSTR, 8, bytes(16))
    data = w.ElfSection(".data", w.SHT_PROGBITS, w.SHF_ALLOC | w.SHF_WRITE, 8, bytes(8))
    bss = w.ElfSection(".bss", w.SHT_NOBITS, w.SHF_ALLOC | w.SHF_WRITE, 4, size=12)
    sec_sym = w.ElfSymbol("", type=w.STT_SECTION, section=data)
    func = w.ElfSymbol("prog", 0, 16, w.STB_GLOBAL, w.STT_FUNC, section=text)
    ext = w.ElfSymbol("ext", bind=w.STB_GLOBAL)
    hidden = w.ElfSymbol("h", 8, 4, w.STB_WEAK, w.STT_OBJECT, other=2, section=bss)
    text.relocations += [w.ElfReloc(0, w.R_BPF_64_64, sec_sym), w.ElfReloc(8, w.R_BPF_64_32, ext)]
    obj = w.write_relocatable(
        [text, data, bss], [sec_sym, func, ext, hidden], addrsig=[func], big_endian=big_endian
    )
    elf = ELFFile(io.BytesIO(obj))
    assert elf.little_endian is not big_endian
    assert elf["e_machine"] == "EM_BPF" and elf["e_type"] == "ET_REL"
    names = [s.name for s in elf.iter_sections()]
    assert names == [
        "",
        ".strtab",
        ".text",
        ".rel.text",
        ".data",
        ".bss",
        ".llvm_addrsig",
        ".symtab",
    ]
    symtab = elf.get_section_by_name(".symtab")
    assert symtab["sh_info"] == 2  # null + one local
    syms = [(s.name, s["st_info"]["bind"], s["st_shndx"]) for s in symtab.iter_symbols()]
    assert syms[1:] == [
        ("", "STB_LOCAL", 4),
        ("prog", "STB_GLOBAL", 2),
        ("ext", "STB_GLOBAL", "SHN_UNDEF"),
        ("h", "STB_WEAK", 5),
    ]
    assert symtab.get_symbol(4)["st_other"]["visibility"] == "STV_HIDDEN"
    rel = elf.get_section_by_name(".rel.text")
    assert [(r["r_offset"], r["r_info_type"], r["r_info_sym"]) for r in rel.iter_relocations()] == [
        (0, w.R_BPF_64_64, 1),
        (8, w.R_BPF_64_32, 3),
    ]
    assert elf.get_section_by_name(".bss")["sh_size"] == 12
    assert elf.get_section_by_name(".llvm_addrsig").data() == bytes([2])


def test_locals_must_precede_globals() -> None:
    g = w.ElfSymbol("g", bind=w.STB_GLOBAL)
    loc = w.ElfSymbol("l")
    with pytest.raises(ValueError, match="local symbols must precede"):
        w.write_relocatable([], [g, loc])
