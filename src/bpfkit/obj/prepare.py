"""Preparing an object for a kernel: pure data in, pure data out (no bpf(), no files).

API::

    prepare(obj, kernel, *, programs=None, prog_types=None, printk=None) -> PreparedObject
    PreparedObject: .spec (CO-RE applied), .btf (what BPF_BTF_LOAD gets, or None),
        .btf_fallback (every newer kind replaced, for a kernel that refuses .btf, or None),
        .data (global data sections and the .kconfig section: one array map each,
            .value_type_id its DATASEC in .btf as libbpf gives the map, or 0),
        .programs (PreparedProgram), .notes, .core_failures
    PreparedProgram: .name, .prog_type, .expected_attach_type, .prog_flags,
        .attach_btf_id, .insns, .map_refs, .func_info, .line_info, .license,
        .kern_version; .bind(fds) -> instructions with the maps' descriptors
    KernelView        what is known of the target kernel (a Protocol): its BTF, BTF ids
                      by name, config, symbol addresses, version, machine
    RecordedKernel(btf, ...)   a KernelView from data (the tests' recorded kernel)
    btf_for_kernel(obj, btf, *, layouts=None, unsupported=(), extra=()) -> bytes

This is libbpf's ``bpf_object__load`` without the syscalls: the object's ``.BTF`` is fixed
up (DATASEC sizes and offsets from the ELF, extern linkage; :mod:`bpfkit.btf.fixup`) and
the BTF kinds the kernel predates are replaced; CO-RE relocations are applied for the
kernel's types (:mod:`bpfkit.obj.core_relocate`); extern symbols resolve (``.kconfig``
values into a ``.kconfig`` data section, kfuncs and typed ksyms to kernel BTF ids,
typeless ksyms to addresses: :mod:`bpfkit.obj.externs`); each program's type, expected
attach type, flags and attach target come from its ``ProgramSpec`` (the reader sets them
from the section name) or ``prog_types``; BTF attach targets and struct_ops methods are
looked up in the kernel's BTF;
programs are linked with their sub-programs (:mod:`bpfkit.obj.relocate`) with map
descriptors left as placeholders (``map_refs``), and their ``.BTF.ext`` func_info and
line_info records are moved to the linked instruction indices; with ``printk`` (a
:class:`bpfkit.obj.printk_tags.PrintkTagging`, what ``bpfkit run`` passes) the printk calls
whose format is known print a tagged copy of it (:mod:`bpfkit.obj.printk_tags`: one more
read-only data section, stubs appended to each program, their FUNC added to the BTF).
The kernel layer
(:mod:`bpfkit.kernel.collection`) only creates the maps, binds their descriptors and
loads.  Everything is decided here, so it is tested without root against a recorded
kernel (tests/obj/test_prepare.py).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace

from bpfkit.errors import BpfkitError, KernelError, ObjectError
from bpfkit.obj.spec import DataSpec, ObjectSpec, ProgramSpec

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:  # bpfkit.btf is imported only for objects that have BTF; the linker and
    # the section table only to prepare (a prepared object read back from a cache, as
    # bpfkit.lang keeps them, is loaded without them)
    from typing import Protocol

    from bpfkit.btf import types as T
    from bpfkit.btf.btf import Btf
    from bpfkit.btf.ext import BtfExt
    from bpfkit.btf.types import Kind
    from bpfkit.isa.insn import Insn
    from bpfkit.obj.printk_tags import PrintkTagging
    from bpfkit.obj.relocate import Extern, Linked

    # What preparing needs of a kernel (for type checking only: nothing checks it at run
    # time; RecordedKernel and bpfkit.kernel.target.RunningKernel are two).
    class KernelView(Protocol):
        """What preparing needs to know about the target kernel (read lazily by the kernel
        layer's RunningKernel; given as data by :class:`RecordedKernel`)."""

        @property
        def version(self) -> tuple[int, int, int]: ...

        @property
        def version_code(self) -> int: ...

        @property
        def machine(self) -> str: ...

        @property
        def config_source(self) -> str: ...

        def btf(self) -> Btf:
            """The kernel's types (CO-RE, struct_ops); BpfkitError if unknown."""
            ...

        def btf_id(self, kind: Kind, name: str) -> int | None:
            """The id of the kernel's type ``name`` of ``kind`` (kfuncs, ksyms, targets)."""
            ...

        def config(self) -> Mapping[str, str]:
            """``CONFIG_*`` values."""
            ...

        def symbol_address(self, name: str) -> int | None:
            """The address of kernel symbol ``name`` (kallsyms), or None."""
            ...


KCONFIG = ".kconfig"
# libbpf's LINUX_VERSION_CODE placeholder in the `version` section: "the running kernel".
ANY_VERSION = 0xFFFFFFFE


@dataclass(frozen=True)
class RecordedKernel:
    """A kernel described by data: its BTF (often a trimmed recording), config, symbols."""

    types: Btf
    kallsyms: Mapping[str, int] = field(default_factory=dict)
    kconfig: Mapping[str, str] = field(default_factory=dict)
    version: tuple[int, int, int] = (6, 1, 0)
    machine: str = "x86_64"
    config_source: str = "the recorded config"

    @property
    def version_code(self) -> int:
        a, b, c = self.version
        return (a << 16) | (b << 8) | min(c, 255)

    def btf(self) -> Btf:
        return self.types

    def btf_id(self, kind: Kind, name: str) -> int | None:
        found = self.types.find_all(name, kind)
        return found[0].id if found else None

    def config(self) -> Mapping[str, str]:
        return self.kconfig

    def symbol_address(self, name: str) -> int | None:
        return self.kallsyms.get(name)


@dataclass(frozen=True, slots=True)
class PreparedProgram:
    """One program as BPF_PROG_LOAD takes it, but for the maps' descriptors."""

    name: str
    section: str
    prog_type: int
    expected_attach_type: int
    prog_flags: int
    attach_btf_id: int
    insns: tuple[Insn, ...]  # map descriptors are placeholders: see map_refs
    map_refs: tuple[tuple[int, str], ...]  # (instruction index, map name or data section)
    func_info: bytes  # bpf_func_info records at the linked instruction indices
    line_info: bytes  # bpf_line_info records
    license: str
    kern_version: int

    def bind(self, fds: Mapping[str, int]) -> tuple[Insn, ...]:
        """The instructions with each map's descriptor (``fds`` by map or data section)
        put in the instructions ``map_refs`` name."""
        out = list(self.insns)
        for index, name in self.map_refs:
            if name not in fds:
                raise ObjectError(f"map {name!r} was not created")
            out[index] = replace(out[index], imm=fds[name])
        return tuple(out)


@dataclass(frozen=True, slots=True)
class PreparedObject:
    """An object ready to be created in a kernel: see the module docstring."""

    spec: ObjectSpec  # programs with CO-RE applied; .data includes .kconfig when used
    btf: bytes | None
    btf_fallback: bytes | None
    programs: tuple[PreparedProgram, ...]
    notes: tuple[str, ...] = ()
    core_failures: tuple[str, ...] = ()

    @property
    def data(self) -> tuple[DataSpec, ...]:
        """Global data sections (and ``.kconfig``): one single-element array map each."""
        return self.spec.data


def btf_for_kernel(
    obj: ObjectSpec,
    btf: Btf,
    *,
    layouts: Mapping[str, tuple[int, Mapping[str, int]]] | None = None,
    unsupported: Collection[Kind] = (),
    extra: Iterable[T.Type] = (),
) -> bytes:
    """``btf`` (the object's parsed ``.BTF``) fixed up with the object's ELF sections and
    symbols, the kinds in ``unsupported`` replaced, ``extra`` types appended (their ids
    follow the object's), and encoded."""
    from bpfkit.btf.encode import encode_btf
    from bpfkit.btf.fixup import fixup_types, sanitize_types

    symbols: dict[tuple[str, str], int] = {}
    for sym in obj.symbols:
        if sym.section is not None and sym.type in ("STT_OBJECT", "STT_NOTYPE"):
            symbols.setdefault((sym.section, sym.name), sym.value)
    # Global sub-programs with hidden visibility are verified in their caller's context
    # when their FUNC is static (libbpf marks them so: usdt.bpf.h relies on it).
    hidden = {
        sym.name
        for sym in obj.symbols
        if sym.type == "STT_FUNC"
        and sym.section == ".text"
        and sym.bind != "STB_LOCAL"
        and sym.visibility in ("STV_HIDDEN", "STV_INTERNAL")
    }
    types = fixup_types(
        btf,
        section_sizes={s.name: s.size for s in obj.sections},
        symbol_offsets=symbols,
        hidden_funcs=hidden,
        layouts=layouts,
    )
    if unsupported:
        types = sanitize_types(types, unsupported)
    types += extra
    return encode_btf(types, big_endian=btf.big_endian, strings=btf.strings.data)


def unsupported_kinds(version: tuple[int, int, int]) -> frozenset[Kind]:
    """BTF kinds a kernel of ``version`` predates."""
    from bpfkit.btf.fixup import NEWER_KINDS

    def number(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split("."))

    return frozenset(k for k, v in NEWER_KINDS.items() if version[:2] < number(v))


def select_programs(
    obj: ObjectSpec, programs: Iterable[str] | None, overrides: Mapping[str, int]
) -> list[ProgramSpec]:
    """The programs to load (``?type`` sections only when named), every name and section
    checked before anything is created."""
    from bpfkit.obj.sections import unknown_section

    mains = [p for p in obj.programs if not p.is_subprog]
    wanted = (
        list(programs)
        if programs is not None
        else [p.name for p in mains if not p.section.startswith("?")]
    )
    by_name = {p.name: p for p in mains}
    for name in wanted:
        if name not in by_name:
            names = ", ".join(by_name) or "none"
            raise ObjectError(f"{obj.path}: no program named {name!r} (programs: {names})")
    for name in wanted:
        if name not in overrides and not by_name[name].prog_type:
            e = unknown_section(by_name[name].section)
            raise ObjectError(f"{obj.path}: program {name!r}: {e}")
    if obj.big_endian != (sys.byteorder == "big"):
        order = "big" if obj.big_endian else "little"
        target = "bpfel" if sys.byteorder == "little" else "bpfeb"
        raise ObjectError(
            f"{obj.path}: the object is {order}-endian but this machine is {sys.byteorder}-"
            f"endian: compile it for this machine (clang -target {target})"
        )
    return [by_name[n] for n in wanted]


class _Preparer:
    def __init__(
        self, obj: ObjectSpec, kernel: KernelView, printk: PrintkTagging | None = None
    ) -> None:
        self.obj = obj
        self.kernel = kernel
        self.printk = printk
        self.stub_types: list[T.Type] = []  # appended to the BTF for the printk stubs
        self.stub_func_id: int | None = None
        self.btf: Btf | None = None
        self.ext: BtfExt | None = None
        self.notes: list[str] = []
        self.core_failures: list[str] = []
        self.externs: dict[str, Extern] = {}
        self.data: list[DataSpec] = list(obj.data)
        self.kconfig: dict[str, tuple[int, int]] = {}
        self.kconfig_size = 0

    # -- BTF ---------------------------------------------------------------------------------
    def typed_data(self) -> tuple[DataSpec, ...]:
        """The data sections, each with the id of the DATASEC of its name (libbpf: the
        map's BTF value type, key type 0; none for sections without one, as
        ``.rodata.str1.1``).  Fixing up, sanitizing and the printk stubs keep type ids."""
        if self.btf is None:
            return tuple(self.data)
        from bpfkit.btf import types as T

        out = []
        for d in self.data:
            secs = self.btf.find_all(d.name, T.Kind.DATASEC)
            out.append(replace(d, value_type_id=secs[0].id) if secs else d)
        return tuple(out)

    def parse_btf(self) -> None:
        obj = self.obj
        try:
            self.btf = obj.parsed_btf()
            self.ext = obj.parsed_btf_ext()
        except BpfkitError as e:
            self.notes.append(f"{obj.path}: BTF not usable ({e}); loading without it")
            self.btf = self.ext = None
            return
        if self.btf is None:
            return
        from bpfkit.obj.externs import kconfig_layout

        try:
            self.kconfig, self.kconfig_size = kconfig_layout(self.btf)
        except BpfkitError as e:
            self.notes.append(f"{obj.path}: .kconfig layout: {e}")

    def kernel_btf(self) -> tuple[bytes | None, bytes | None]:
        """The BTF for this kernel and, if it differs, the fully sanitized fallback."""
        if self.btf is None:
            return None, None
        from bpfkit.btf.fixup import NEWER_KINDS

        layouts: dict[str, tuple[int, Mapping[str, int]]] = {}
        if self.kconfig:
            offsets = {n: off for n, (off, _) in self.kconfig.items()}
            layouts[KCONFIG] = (self.kconfig_size, offsets)
        lacking = unsupported_kinds(self.kernel.version)
        if self.printk is not None and self.printk.taggable:
            from bpfkit.obj.printk_tags import stub_types

            self.stub_types, self.stub_func_id = stub_types(len(self.btf.types))
        extra = self.stub_types
        raw = btf_for_kernel(self.obj, self.btf, layouts=layouts, unsupported=lacking, extra=extra)
        if lacking:
            self.notes.append(
                f"{self.obj.path}: BTF kinds newer than Linux "
                f"{'.'.join(map(str, self.kernel.version))} replaced: "
                + ", ".join(sorted(k.name for k in lacking))
            )
        present = {t.kind for t in self.btf.types}
        if not (present & set(NEWER_KINDS)) - lacking:
            return raw, None
        return raw, btf_for_kernel(
            self.obj, self.btf, layouts=layouts, unsupported=NEWER_KINDS, extra=extra
        )

    def apply_core(self, wanted: Iterable[str]) -> None:
        """CO-RE: rewrite field offsets etc. for the kernel's types."""
        if self.btf is None or self.ext is None or not any(self.ext.core_relos.values()):
            return
        from bpfkit.obj.core_relocate import apply_core

        try:
            target = self.kernel.btf()
        except BpfkitError as e:
            self.notes.append(f"CO-RE relocations not applied: {e}")
            return
        self.obj, results = apply_core(self.obj, self.btf, self.ext, target, wanted)
        for r in results:
            if r.value is None:
                self.core_failures.append(r.why)
                self.notes.append(
                    f"CO-RE: {r.why}; the instruction at byte {r.relo.insn_off} fails "
                    "verification if it can run"
                )

    # -- externs -----------------------------------------------------------------------------
    def resolve_externs(self) -> None:
        from bpfkit.obj.relocate import Extern, extern_symbols

        used = extern_symbols(self.obj)
        if not used:
            return
        from bpfkit.btf import types as T
        from bpfkit.obj import externs as X

        kernel = self.kernel
        weak = X.weak_symbols(self.obj.symbols)
        wanted = [n for n in used if n in self.kconfig]
        if wanted:
            assert self.btf is not None
            special = X.special_kconfig(kernel.version_code, kernel.machine)
            value = X.kconfig_bytes(
                self.btf, wanted, weak, kernel.config(), special, kernel.config_source
            )
            self.data.append(DataSpec(KCONFIG, -1, len(value), value, readonly=True))
            for n in wanted:
                self.externs[n] = Extern("map_value", 0, self.kconfig[n][0], map=KCONFIG)
        for name, called in used.items():
            if name in self.kconfig:
                continue
            if called:
                kid = kernel.btf_id(T.Kind.FUNC, name)
                if kid is None:
                    raise ObjectError(
                        f"{self.obj.path}: kfunc {name!r} does not exist in this kernel's BTF"
                    )
                self.externs[name] = Extern("kfunc", kid)
                continue
            typed = False
            if self.btf is not None:
                for var in self.btf.find_all(name, T.Kind.VAR):
                    assert isinstance(var, T.Var)
                    # ``const void`` is typeless too (libbpf skips modifiers first).
                    typed = self.btf.resolve_id(var.type) != 0
            ext = self._ksym(name, typed)
            if ext is None:
                if not weak.get(name):
                    raise ObjectError(
                        f"{self.obj.path}: ksym {name!r} does not exist in this kernel; "
                        "declare it __weak to accept a missing symbol"
                    )
                ext = Extern("addr", 0)
            self.externs[name] = ext

    def _ksym(self, name: str, typed: bool) -> Extern | None:
        """A ``__ksym`` variable: its BTF id (typed) or its address (typeless), or None."""
        from bpfkit.btf.types import Kind
        from bpfkit.obj.relocate import Extern

        if typed:
            var_id = self.kernel.btf_id(Kind.VAR, name)
            return Extern("btf_id", var_id) if var_id is not None else None
        addr = self.kernel.symbol_address(name)
        if addr is None:
            return None
        if addr == 0:
            raise KernelError(
                f"/proc/kallsyms hides the address of {name} (kernel.kptr_restrict): run as root"
            )
        return Extern("addr", addr)

    # -- programs ----------------------------------------------------------------------------
    def _ext_records(self, linked: Linked) -> tuple[bytes, bytes]:
        from bpfkit.obj.relocate import remap_ext_records

        ext = self.ext
        if ext is None:
            return b"", b""
        fi = {
            sec: [(r.insn_off, struct.pack("<I", r.type_id)) for r in recs]
            for sec, recs in ext.func_info.items()
        }
        li = {
            sec: [
                (
                    r.insn_off,
                    struct.pack("<III", r.file_name_off, r.line_off, (r.line << 10) | r.column),
                )
                for r in recs
            ]
            for sec, recs in ext.line_info.items()
        }
        func = b"".join(
            struct.pack("<I", off) + rest for off, rest in remap_ext_records(linked, fi)
        )
        line = b"".join(
            struct.pack("<I", off) + rest for off, rest in remap_ext_records(linked, li)
        )
        return func, line

    def kern_version(self) -> int:
        # Kernels before 5.0 check a kprobe program's version against their own; the
        # `version` section often holds 0xFFFFFFFE ("the running kernel") or nothing.
        v = self.obj.version
        if v is None or v in (0, ANY_VERSION):
            return self.kernel.version_code
        return v

    def _types(self, spec: ProgramSpec, prog_type: int | None) -> tuple[ProgramSpec, int]:
        """``spec`` typed (its section name, or ``prog_type`` overriding it) and its
        ``attach_btf_id``; its expected attach type may come from a struct_ops member."""
        from bpfkit.obj.sections import definition, typed, unknown_section

        if prog_type is not None:
            spec = typed(spec, prog_type)  # --type / the no-kprobes fallback
        if not spec.prog_type:
            raise unknown_section(spec.section)
        row = definition(spec.kind)
        if row is None or not row.needs_btf_id:
            return spec, 0
        if row.name.startswith("freplace"):
            raise ObjectError(
                f"{self.obj.path}: program {spec.name!r} in section {spec.section!r}: "
                f"{row.name} programs are not supported yet"
            )
        if row.name.startswith("struct_ops"):
            from bpfkit.obj.struct_ops import struct_ops_target

            btf_id, attach = struct_ops_target(self.obj, spec.name, self.kernel.btf())
            return replace(spec, expected_attach_type=attach), btf_id
        return spec, self._attach_btf_id(row.name, spec.attach_target)

    def _attach_btf_id(self, kind: str, target: str) -> int:
        from bpfkit.obj.externs import btf_target

        btf_kind, name = btf_target(kind, target)
        found = self.kernel.btf_id(btf_kind, name) if name else None
        if found is None:
            raise KernelError(
                f"{kind}/{target}: no {btf_kind.name.lower()} {name!r} in the kernel's BTF "
                "(/sys/kernel/btf/vmlinux): check the name for this kernel"
            )
        return found

    def program(self, spec: ProgramSpec, prog_type: int | None) -> PreparedProgram:
        from bpfkit.obj.relocate import link

        obj = self.obj
        # The object may have been rewritten (CO-RE): use its copy of the program.
        spec = next(
            (p for p in obj.programs if (p.section, p.offset) == (spec.section, spec.offset)), spec
        )
        spec, btf_id = self._types(spec, prog_type)
        placeholders = {m.name: 0 for m in obj.maps}
        linked = link(
            obj,
            spec,
            map_fds=placeholders,
            data_fds={d.name: 0 for d in self.data},
            externs=self.externs,
        )
        func, line = self._ext_records(linked)
        insns, refs = linked.insns, linked.map_refs
        if self.printk is not None and self.printk.taggable:
            from bpfkit.obj.printk_tags import tag_program

            placed = [(f.spec.section, f.spec.offset, f.start) for f in linked.functions]
            tagged = tag_program(insns, placed, refs, func, line, self.printk, self.stub_func_id)
            insns, refs = tagged.insns, tagged.map_refs
            func, line = tagged.func_info, tagged.line_info
        return PreparedProgram(
            name=spec.name,
            section=spec.section,
            prog_type=spec.prog_type,
            expected_attach_type=spec.expected_attach_type,
            prog_flags=spec.prog_flags,
            attach_btf_id=btf_id,
            insns=insns,
            map_refs=refs,
            func_info=func,
            line_info=line,
            license=obj.license or "",
            kern_version=self.kern_version(),
        )


def prepare(
    obj: ObjectSpec,
    kernel: KernelView,
    *,
    programs: Iterable[str] | None = None,
    prog_types: Mapping[str, int] | None = None,
    printk: PrintkTagging | None = None,
) -> PreparedObject:
    """``obj`` made ready for ``kernel`` (see the module docstring): ``programs`` limits
    which programs are prepared (their maps and data all are), ``prog_types`` overrides
    program types (numbers) by name, ``printk`` tags the lines of the printk calls it
    lists.  Raises ObjectError (or KernelError for what the
    kernel lacks) before anything would be created."""
    overrides = dict(prog_types or {})
    chosen = select_programs(obj, programs, overrides)
    p = _Preparer(obj, kernel, printk)
    p.parse_btf()
    btf, fallback = p.kernel_btf()
    p.apply_core([s.name for s in chosen])
    p.resolve_externs()
    tags = printk.data() if printk is not None else None
    if tags is not None:
        p.data.append(tags)
    progs = tuple(p.program(s, overrides.get(s.name)) for s in chosen)
    return PreparedObject(
        spec=replace(p.obj, data=p.typed_data()),
        btf=btf,
        btf_fallback=fallback,
        programs=progs,
        notes=tuple(p.notes),
        core_failures=tuple(p.core_failures),
    )
