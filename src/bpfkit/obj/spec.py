"""The object model: plain, frozen data read from a BPF ELF object.

Nothing here touches the kernel or the VM; :mod:`bpfkit.obj.reader` fills these in from a
file, and every other layer (dump, explain, VM, kernel loader) consumes them.
Offsets are byte offsets unless named ``*_index`` (8-byte instruction slots).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from enum import Enum

from bpfkit.isa.insn import Insn

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

    from bpfkit.btf.btf import Btf
    from bpfkit.btf.ext import BtfExt


class RelocKind(Enum):
    """What a relocation in a program refers to."""

    MAP = "map"  # lddw of a map (legacy `maps` or BTF `.maps`): becomes src=1 with the map fd
    GLOBAL_DATA = "global_data"  # lddw of .data/.rodata/.bss: becomes src=2 (map value) + offset
    CALL = "call"  # bpf-to-bpf call (R_BPF_64_32 on a call insn)
    FUNC_ADDR = "func_addr"  # lddw of a function's address (callbacks): src=4
    KCONFIG = "kconfig"  # extern from .kconfig
    EXTERN = "extern"  # undefined symbol (kfunc/ksym)
    OTHER = "other"  # data relocations (R_BPF_64_ABS64/ABS32 in .BTF etc.) and the rest


def _html(what: object) -> str:
    """``what`` as HTML for Jupyter, by :func:`bpfkit.explain.html.spec_html`.

    Looked up when a notebook asks (``_repr_html_``), not imported: the object model
    depends on nothing above it, the drawing layer knows the object model (docs/design.md).
    """
    display: Any = importlib.import_module("bpfkit.explain.html")
    return str(display.spec_html(what))


@dataclass(frozen=True, slots=True)
class Symbol:
    """An ELF symbol."""

    name: str
    value: int
    size: int
    bind: str  # "STB_GLOBAL", "STB_LOCAL", "STB_WEAK"
    type: str  # "STT_FUNC", "STT_OBJECT", "STT_NOTYPE", "STT_SECTION", ...
    section_index: int  # st_shndx as int; 0 for undefined, 0xfff1 for ABS
    section: str | None  # name of the section, None if undefined/special
    visibility: str = "STV_DEFAULT"


@dataclass(frozen=True, slots=True)
class Relocation:
    """One relocation entry applying to an instruction (or data) section."""

    offset: int  # byte offset inside the section it applies to
    type: int  # R_BPF_* number
    type_name: str  # "R_BPF_64_64", "R_BPF_64_32", "R_BPF_64_ABS64", ...
    symbol: str  # symbol name ("" for none); section symbols get the section's name
    symbol_section: str | None  # section of the symbol (None if undefined)
    symbol_value: int  # st_value of the symbol
    symbol_type: str  # STT_*
    kind: RelocKind
    addend: int = 0  # from RELA, or 0 (BPF uses REL: the addend is in the instruction)


@dataclass(frozen=True, slots=True)
class Section:
    """An ELF section header, with the contents of allocated sections."""

    index: int
    name: str
    type: str  # "SHT_PROGBITS", "SHT_NOBITS", "SHT_REL", ...
    flags: int
    size: int
    offset: int  # in the file
    addralign: int
    data: bytes = b""  # empty for SHT_NOBITS and for sections not needed

    @property
    def executable(self) -> bool:
        """True for SHF_EXECINSTR sections (programs)."""
        return bool(self.flags & 0x4)


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    """One function of an executable section."""

    name: str
    section: str
    section_index: int
    offset: int  # byte offset of the function inside its section
    insns: tuple[Insn, ...]
    relocations: tuple[Relocation, ...]  # offsets relative to the program start
    is_subprog: bool  # True for functions in .text (called, not loaded alone)
    bind: str = "STB_GLOBAL"
    # What the section name means, from libbpf's table (:mod:`bpfkit.obj.sections`), set
    # by the reader (:func:`bpfkit.obj.sections.typed`); zeros and "" when the name is
    # none of the table's (``.text``, ``my_prog``) and no type was given.
    prog_type: int = 0  # enum bpf_prog_type; 0 (UNSPEC): unknown
    expected_attach_type: int = 0  # enum bpf_attach_type given at load
    attach_target: str = ""  # "do_sys_open" (kprobe/do_sys_open), "syscalls/sys_enter_x"
    prog_flags: int = 0  # BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS
    kind: str = ""  # the table row the name matched: "kretprobe", "cgroup/skb", "tp"

    @property
    def size(self) -> int:
        """Size in bytes."""
        return sum(8 * i.width for i in self.insns)

    def _repr_html_(self) -> str:
        return _html(self)


@dataclass(frozen=True, slots=True)
class MapSpec:
    """A map definition: legacy ``maps`` (struct bpf_map_def) or BTF-defined ``.maps``."""

    name: str
    section: str  # "maps", "maps/<x>" or ".maps"
    offset: int
    type: int | None = None  # enum bpf_map_type
    key_size: int | None = None
    value_size: int | None = None
    max_entries: int | None = None
    flags: int = 0
    inner_map_idx: int | None = None  # legacy
    numa_node: int | None = None  # legacy
    pinning: int = 0  # 0 none, 1 LIBBPF_PIN_BY_NAME
    key_type_id: int | None = None  # BTF ids, for BTF maps
    value_type_id: int | None = None
    inner: MapSpec | None = None  # inner map template for map-in-map
    legacy: bool = False
    raw: bytes = b""  # legacy record bytes (extra fields beyond bpf_map_def kept)
    extra: dict[str, int] = field(default_factory=dict)  # other BTF map attributes
    # BTF maps with `values` (map-in-map, prog array): (slot, symbol) from `.rel.maps`
    init_values: tuple[tuple[int, str], ...] = ()

    def _repr_html_(self) -> str:
        return _html(self)


@dataclass(frozen=True, slots=True)
class DataSpec:
    """A global data section: ``.data``, ``.rodata*``, ``.bss`` or ``.data.*``."""

    name: str
    section_index: int
    size: int
    data: bytes  # zeros for .bss
    readonly: bool
    symbols: tuple[Symbol, ...] = ()
    value_type_id: int = 0  # its DATASEC in the object's BTF (set when prepared; 0: none)


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    """Everything read from one BPF ELF relocatable object."""

    path: str
    big_endian: bool
    programs: tuple[ProgramSpec, ...]
    maps: tuple[MapSpec, ...]
    data: tuple[DataSpec, ...]
    license: str | None
    version: int | None  # kernel version from the `version` section
    sections: tuple[Section, ...]
    symbols: tuple[Symbol, ...]
    relocations: dict[str, tuple[Relocation, ...]]  # by name of the section they apply to
    btf: bytes | None = None
    btf_ext: bytes | None = None
    # Parsed .BTF/.BTF.ext, filled on first use (by the reader when it parses them): copies
    # made with dataclasses.replace share it, so an object's BTF is parsed once.
    parsed: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def parsed_btf(self) -> Btf | None:
        """The object's ``.BTF`` parsed (once), or None without one; BtfError if malformed."""
        if "btf" not in self.parsed:
            if self.btf is None:
                return None
            from bpfkit.btf.btf import parse_btf

            self.parsed["btf"] = parse_btf(self.btf, big_endian=self.big_endian)
        got: Btf = self.parsed["btf"]
        return got

    def parsed_btf_ext(self) -> BtfExt | None:
        """The object's ``.BTF.ext`` parsed (once), or None without one or without .BTF."""
        if "btf_ext" not in self.parsed:
            btf = self.parsed_btf()
            if self.btf_ext is None or btf is None:
                return None
            from bpfkit.btf.ext import parse_btf_ext

            self.parsed["btf_ext"] = parse_btf_ext(
                self.btf_ext, big_endian=self.big_endian, btf=btf
            )
        got: BtfExt = self.parsed["btf_ext"]
        return got

    def record_types(self) -> dict[str, int]:
        """The BTF type of each ring buffer's / perf event array's records, by map name,
        where the code shows it (:mod:`bpfkit.obj.records`; computed once)."""
        if "records" not in self.parsed:
            from bpfkit.errors import BtfError
            from bpfkit.obj.records import record_types

            try:
                btf = self.parsed_btf()
            except BtfError:
                btf = None
            self.parsed["records"] = record_types(self, btf) if btf is not None else {}
        got: dict[str, int] = self.parsed["records"]
        return got

    def _repr_html_(self) -> str:
        return _html(self)

    def program(self, name: str) -> ProgramSpec:
        """The program (or sub-program) called ``name``."""
        for p in self.programs:
            if p.name == name:
                return p
        from bpfkit.errors import ObjectError

        names = ", ".join(p.name for p in self.programs) or "none"
        raise ObjectError(f"{self.path}: no program named {name!r} (programs: {names})")

    def section(self, name: str) -> Section:
        """The section called ``name``."""
        for s in self.sections:
            if s.name == name:
                return s
        from bpfkit.errors import ObjectError

        raise ObjectError(f"{self.path}: no section named {name!r}")
