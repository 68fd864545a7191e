"""USDT probes of a user-space binary: its ``.note.stapsdt`` notes, where each probe is,
and the argument specs libbpf's ``usdt.bpf.h`` reads (pure: no kernel).

A binary built with ``sys/sdt.h`` (systemtap-sdt-dev) or a dtrace-enabled runtime
(CPython ``--with-dtrace``) carries one ELF note per probe site: owner ``stapsdt``, type
3, a description of three addresses (the probe's ``nop``, the ``.stapsdt.base`` section's
link-time address, the semaphore or 0) and three strings: provider, name, arguments
(``-4@%edi 8@-16(%rbp) -4@$5``).  As libbpf (``usdt.c``) does:

- if the binary has a ``.stapsdt.base`` section, the probe address is moved by that
  section's address minus the note's base (a prelinked binary was moved after linking);
- the address is turned into the file offset a uprobe is placed at through the loadable
  segment that holds it (which must be executable);
- the semaphore address becomes a file offset through its (non-executable) segment: the
  kernel counts it up while a uprobe with that ``ref_ctr_offset`` is attached;
- each argument is ``SIZE@LOCATION``: a negative size means signed; 1, 2, 4 or 8 bytes;
  the location is a register (``%eax``: read from ``struct pt_regs``), a register plus
  offset to dereference (``-20(%rbp)``, ``(%rsp)``), a base, index and scale
  (``-8(%rbp,%rax,8)``, only with libbpf headers whose spec has ``idx_reg_off``), or a
  constant (``$5``); at most 12 arguments.

:func:`encode_spec` lays an argument list out as ``struct __bpf_usdt_spec``, the value
of the ``__bpf_usdt_specs`` map, at the member offsets the object's own BTF gives (so the
libbpf headers it was compiled with decide), or libbpf 1.1's layout without BTF.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, replace

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from bpfkit.errors import ObjectError
from bpfkit.uapi._generated import CTX_FIELDS

NOTE_SECTION = ".note.stapsdt"
BASE_SECTION = ".stapsdt.base"
NOTE_OWNER = "stapsdt"
NOTE_TYPE = 3  # NT_STAPSDT
MAX_ARGS = 12  # BPF_USDT_MAX_ARG_CNT in usdt.bpf.h
SPECS_MAP = "__bpf_usdt_specs"
IP_MAP = "__bpf_usdt_ip_to_spec_id"

# enum __bpf_usdt_arg_type
ARG_CONST, ARG_REG, ARG_REG_DEREF, ARG_SIB = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class UsdtNote:
    """One ``.note.stapsdt`` note as stored (the addresses are link-time addresses)."""

    provider: str
    name: str
    args: str
    pc: int
    base: int
    semaphore: int


@dataclass(frozen=True, slots=True)
class UsdtSite:
    """A probe site ready for a uprobe: ``address`` (adjusted for prelink), the file
    ``offset`` of the probe, and the semaphore's file offset (0: no semaphore)."""

    note: UsdtNote
    address: int
    offset: int
    semaphore_offset: int
    executable: bool  # ET_EXEC: ``address`` is where it runs in every process


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """One parsed argument: ``kind`` (ARG_CONST, ARG_REG, ARG_REG_DEREF, ARG_SIB), the
    constant or offset ``val_off``, the registers' ``struct pt_regs`` offsets, the size in
    bytes, signedness and the SIB scale (1, 2, 4, 8)."""

    text: str
    kind: int
    val_off: int = 0
    reg: str = ""
    reg_off: int = 0
    size: int = 8
    signed: bool = False
    index_reg: str = ""
    index_reg_off: int = 0
    scale: int = 1

    @property
    def bitshift(self) -> int:
        """How many high bits of the 64-bit value are not the argument's."""
        return 64 - 8 * self.size


def _segments(elf: ELFFile) -> list[tuple[int, int, int, bool]]:
    return [
        (
            int(s["p_vaddr"]),
            int(s["p_vaddr"] + s["p_memsz"]),
            int(s["p_offset"]),
            bool(s["p_flags"] & 1),
        )
        for s in elf.iter_segments()
        if s["p_type"] == "PT_LOAD"
    ]


def _open(path: str) -> tuple[ELFFile, object]:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as e:
        raise ObjectError(f"USDT target {path}: {e.strerror}") from None
    try:
        return ELFFile(f), f
    except ELFError as e:
        f.close()
        raise ObjectError(f"USDT target {path} is not an ELF binary: {e}") from None


def _parse_notes(data: bytes, path: str, wide: bool, little: bool) -> list[UsdtNote]:
    order = "<" if little else ">"
    addr = "Q" if wide else "I"
    size = 8 if wide else 4
    notes = []
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from(order + "III", data, pos)
        name_at = pos + 12
        desc_at = name_at + (namesz + 3) // 4 * 4
        end = desc_at + (descsz + 3) // 4 * 4
        if desc_at + descsz > len(data):
            raise ObjectError(f"{path}: {NOTE_SECTION}: note at offset {pos} runs past the section")
        owner = data[name_at : name_at + namesz].rstrip(b"\0").decode("ascii", "replace")
        pos = end
        if ntype != NOTE_TYPE or owner != NOTE_OWNER:
            continue
        desc = data[desc_at : desc_at + descsz]
        if len(desc) < 3 * size:
            raise ObjectError(
                f"{path}: {NOTE_SECTION}: a stapsdt note of {descsz} bytes is too short"
            )
        pc, base, sema = struct.unpack_from(order + addr * 3, desc)
        strings = desc[3 * size :].split(b"\0")
        if len(strings) < 4:  # provider, name, args and what follows the last NUL
            raise ObjectError(
                f"{path}: {NOTE_SECTION}: a stapsdt note at {pc:#x} lacks its provider, "
                "name or argument string"
            )
        provider, name, args = (s.decode("utf-8", "replace") for s in strings[:3])
        notes.append(UsdtNote(provider, name, args, pc, base, sema))
    return notes


def read_notes(path: str) -> list[UsdtNote]:
    """Every USDT note of the binary at ``path`` (``readelf -n`` shows the same)."""
    elf, f = _open(path)
    try:
        return _notes(elf, path)
    finally:
        f.close()  # type: ignore[attr-defined]


def _notes(elf: ELFFile, path: str) -> list[UsdtNote]:
    sec = elf.get_section_by_name(NOTE_SECTION)
    if sec is None:
        return []
    if sec["sh_type"] != "SHT_NOTE":
        raise ObjectError(f"{path}: {NOTE_SECTION} is not a note section")
    return _parse_notes(sec.data(), path, elf.elfclass == 64, elf.little_endian)


def find_sites(path: str, provider: str, name: str) -> list[UsdtSite]:
    """The sites of probe ``provider:name`` in the binary at ``path``, located for
    uprobes; ObjectError saying which probes exist when there is none."""
    elf, f = _open(path)
    try:
        notes = _notes(elf, path)
        etype = elf["e_type"]
        if etype not in ("ET_EXEC", "ET_DYN"):
            raise ObjectError(f"USDT target {path}: a {etype} file is not an executable or library")
        segments = _segments(elf)
        base_sec = elf.get_section_by_name(BASE_SECTION)
        base_addr = int(base_sec["sh_addr"]) if base_sec is not None else 0
    finally:
        f.close()  # type: ignore[attr-defined]
    wanted = [n for n in notes if n.provider == provider and n.name == name]
    if not wanted:
        have = sorted({f"{n.provider}:{n.name}" for n in notes})
        listed = (
            ", ".join(have)
            if have
            else f"none (no {NOTE_SECTION} section: built without sys/sdt.h probes?)"
        )
        raise ObjectError(f"{path}: no USDT probe {provider}:{name}; its probes: {listed}")
    return [_site(n, segments, base_addr, etype == "ET_EXEC", path) for n in wanted]


def _site(
    note: UsdtNote, segments: list[tuple[int, int, int, bool]], base_addr: int, exe: bool, path: str
) -> UsdtSite:
    where = f"{path}: USDT probe {note.provider}:{note.name}"
    address = note.pc + (base_addr - note.base if base_addr else 0)
    seg = next((s for s in segments if s[0] <= address < s[1]), None)
    if seg is None or not seg[3]:
        why = "in no loadable segment" if seg is None else "in a segment that is not executable"
        raise ObjectError(f"{where} at {address:#x} is {why}: is the binary damaged?")
    offset = address - seg[0] + seg[2]
    sema_offset = 0
    if note.semaphore:
        sseg = next((s for s in segments if s[0] <= note.semaphore < s[1]), None)
        if sseg is None or sseg[3]:
            why = "in no loadable segment" if sseg is None else "in an executable segment"
            raise ObjectError(f"{where}: its semaphore at {note.semaphore:#x} is {why}")
        sema_offset = note.semaphore - sseg[0] + sseg[2]
    return UsdtSite(note, address, offset, sema_offset, exe)


# x86-64 register names (64/32/16/8-bit) -> the struct pt_regs member holding them.
_REG_NAMES = {
    "ip": ("rip", "eip"),
    "ax": ("rax", "eax", "ax", "al"),
    "bx": ("rbx", "ebx", "bx", "bl"),
    "cx": ("rcx", "ecx", "cx", "cl"),
    "dx": ("rdx", "edx", "dx", "dl"),
    "si": ("rsi", "esi", "si", "sil"),
    "di": ("rdi", "edi", "di", "dil"),
    "bp": ("rbp", "ebp", "bp", "bpl"),
    "sp": ("rsp", "esp", "sp", "spl"),
    **{f"r{n}": (f"r{n}", f"r{n}d", f"r{n}w", f"r{n}b") for n in range(8, 16)},
}
_PT_REGS = {name: off for name, off, _ in CTX_FIELDS["pt_regs"]}
REG_OFFSETS: dict[str, int] = {
    alias: _PT_REGS[member] for member, aliases in _REG_NAMES.items() for alias in aliases
}

_NUM = r"[-+]?(?:0[xX][0-9a-fA-F]+|\d+)"
_ARG = re.compile(
    rf"\s*(?P<size>[-+]?\d+)\s*@\s*(?:"
    rf"\$(?P<const>{_NUM})"
    rf"|%(?P<reg>[a-z0-9]+)"
    rf"|(?P<off>{_NUM})?\s*\(\s*%(?P<base>[a-z0-9]+)\s*"
    rf"(?:,\s*%(?P<index>[a-z0-9]+)\s*(?:,\s*(?P<scale>\d+)\s*)?)?\))"
    rf"(?=\s|$)"
)


def parse_args(text: str, where: str = "") -> tuple[ArgSpec, ...]:
    """The arguments of a note's argument string (x86-64 syntax, see the module doc)."""
    out: list[ArgSpec] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _ARG.match(text, pos)
        label = f"{where}: " if where else ""
        if m is None:
            rest = text[pos:].split()[0]
            raise ObjectError(
                f"{label}USDT argument #{len(out)} {rest!r} of {text!r} is not SIZE@%REG, "
                "SIZE@OFF(%REG), SIZE@OFF(%BASE,%INDEX,SCALE) or SIZE@$CONST"
            )
        if len(out) == MAX_ARGS:
            raise ObjectError(f"{label}USDT probe has more than {MAX_ARGS} arguments: {text!r}")
        out.append(_arg(m, label, len(out)))
        pos = m.end()
    return tuple(out)


def _reg(name: str, label: str, num: int) -> int:
    off = REG_OFFSETS.get(name)
    if off is None:
        raise ObjectError(f"{label}USDT argument #{num}: unknown x86-64 register %{name}")
    return off


def _arg(m: re.Match[str], label: str, num: int) -> ArgSpec:
    text = m.group(0).strip()
    size = int(m.group("size"))
    if abs(size) not in (1, 2, 4, 8):
        raise ObjectError(
            f"{label}USDT argument #{num} {text!r}: size {abs(size)} is not 1, 2, 4 or 8"
        )
    arg = ArgSpec(text, ARG_CONST, size=abs(size), signed=size < 0)
    if m.group("const") is not None:
        return replace(arg, val_off=int(m.group("const"), 0))
    if m.group("reg") is not None:
        reg = m.group("reg")
        return replace(arg, kind=ARG_REG, reg=reg, reg_off=_reg(reg, label, num))
    base = m.group("base")
    arg = replace(
        arg,
        kind=ARG_REG_DEREF,
        val_off=int(m.group("off"), 0) if m.group("off") else 0,
        reg=base,
        reg_off=_reg(base, label, num),
    )
    if m.group("index") is None:
        return arg
    scale = int(m.group("scale") or 1)
    if scale not in (1, 2, 4, 8):
        raise ObjectError(
            f"{label}USDT argument #{num} {text!r}: scale {scale} is not 1, 2, 4 or 8"
        )
    index = m.group("index")
    return replace(
        arg, kind=ARG_SIB, index_reg=index, index_reg_off=_reg(index, label, num), scale=scale
    )
