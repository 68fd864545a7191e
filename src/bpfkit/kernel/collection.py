"""Loading a whole object: its BTF, maps, global data and programs.

API::

    load_collection(obj, *, programs=None, prog_types=None, pin_maps_dir=None,
                    log_level=0) -> Collection
    Collection: .programs[name] -> Program, .maps[name] -> Map (global data maps are
                named by section: ".data", ".rodata", ".bss"), .btf_fd, .notes (what
                was adapted on the way, one line each), .close(), with-block,
                .pin(directory)

The steps follow libbpf's ``bpf_object__load``: the object's ``.BTF`` is fixed up and
loaded (if the kernel refuses it the object loads without BTF, as libbpf does, and a note
says so); maps are created (legacy ``maps`` and BTF ``.maps``, ``LIBBPF_PIN_BY_NAME`` maps
reused from or pinned in ``pin_maps_dir``, default /sys/fs/bpf); each global data section
becomes a one-element array map with its initial contents (``.rodata`` frozen); then each
program is linked with its sub-programs, relocated (:mod:`bpfkit.obj.relocate`) and loaded
with the license, the kernel version, and func_info/line_info from ``.BTF.ext`` so that
verifier logs show source lines.  Program type and expected attach type come from the
section name (``ProgramSpec.prog_type`` and friends, which the reader sets from
:mod:`bpfkit.obj.sections`) unless ``prog_types`` overrides them by name.
On any error everything created so far is closed.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bpfkit.errors import BpfkitError, KernelError, ObjectError, VerifierError
from bpfkit.kernel import pins
from bpfkit.kernel.btf_load import load_btf
from bpfkit.kernel.maps import Map, create_map
from bpfkit.kernel.object_maps import ObjectMaps, data_map_name
from bpfkit.kernel.program import Program, load_program
from bpfkit.obj.relocate import Extern, Linked, extern_symbols, link, remap_ext_records
from bpfkit.obj.sections import definition, typed, unknown_section
from bpfkit.obj.spec import ObjectSpec, ProgramSpec
from bpfkit.syscalls import Fd, attrs
from bpfkit.syscalls.fd import Closing
from bpfkit.uapi import MapType

if TYPE_CHECKING:
    from bpfkit.btf.btf import Btf
    from bpfkit.btf.ext import BtfExt


@dataclass
class Collection(Closing):
    """The live kernel objects of one loaded object file."""

    spec: ObjectSpec
    programs: dict[str, Program] = field(default_factory=dict)
    maps: dict[str, Map] = field(default_factory=dict)
    btf_fd: Fd | None = None
    notes: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Close every program, map and the BTF object."""
        for p in self.programs.values():
            p.close()
        for m in self.maps.values():
            m.close()
        if self.btf_fd is not None:
            self.btf_fd.close()

    def pin(self, directory: str) -> list[str]:
        """Pin every program (as ``DIR/<program>``) and map (``DIR/maps/<map>``) in bpffs,
        like ``bpftool prog loadall OBJ DIR pinmaps DIR/maps``; return the paths."""
        pins.bpffs_dir(os.path.abspath(directory))  # the bpffs root itself is fine too
        os.makedirs(directory, exist_ok=True)
        made: list[str] = []
        try:
            for name, prog in self.programs.items():
                path = os.path.join(directory, name)
                prog.pin(path)
                made.append(path)
            if self.maps:
                mdir = os.path.join(directory, "maps")
                os.makedirs(mdir, exist_ok=True)
                for name, m in self.maps.items():
                    path = os.path.join(mdir, name.lstrip(".") or "map")
                    m.pin(path)
                    made.append(path)
        except BaseException:
            for path in made:
                pins.unpin(path)
            raise
        return made


class _Loader:
    def __init__(
        self,
        obj: ObjectSpec,
        stack: ExitStack,
        coll: Collection,
        pin_maps_dir: str | None,
        log_level: int,
    ) -> None:
        self.obj = obj
        self.stack = stack
        self.coll = coll
        self.pin_maps_dir = pin_maps_dir
        self.log_level = log_level
        self.btf: Btf | None = None
        self.ext: BtfExt | None = None
        self.map_fds: dict[str, int] = {}
        self.data_fds: dict[str, int] = {}
        self.externs: dict[str, Extern] = {}
        self.core_failures: list[str] = []

    # -- BTF ---------------------------------------------------------------------------------
    def load_btf(self) -> None:
        obj = self.obj
        if not obj.btf:
            return
        try:
            from bpfkit.btf import parse_btf, parse_btf_ext
        except ImportError:  # the btf package is optional for loading
            parse_btf = parse_btf_ext = None  # type: ignore[assignment]
        try:
            if parse_btf is None or parse_btf_ext is None:
                raise ObjectError("bpfkit.btf is not available")
            self.btf = parse_btf(obj.btf, big_endian=obj.big_endian)
            if obj.btf_ext:
                self.ext = parse_btf_ext(obj.btf_ext, big_endian=obj.big_endian, btf=self.btf)
        except BpfkitError as e:
            self.coll.notes.append(f"{obj.path}: BTF not usable ({e}); loading without it")
            self.btf = self.ext = None
            return
        layouts: dict[str, tuple[int, Mapping[str, int]]] = {}
        try:
            from bpfkit.kernel.externs import kconfig_layout

            kc, kc_size = kconfig_layout(self.btf)
            if kc:
                layouts[".kconfig"] = (kc_size, {n: off for n, (off, _) in kc.items()})
        except BpfkitError as e:
            self.coll.notes.append(f"{obj.path}: .kconfig layout: {e}")
        from bpfkit.btf.fixup import NEWER_KINDS
        from bpfkit.obj.prepare import btf_for_kernel

        try:
            raw = btf_for_kernel(obj, self.btf, layouts=layouts)
            self.coll.btf_fd = load_btf(raw, what=f"{obj.path}: .BTF")
        except KernelError as e:
            # An older kernel may refuse newer kinds (FLOAT, DECL_TAG, TYPE_TAG, ENUM64):
            # try again with them replaced, then give up on BTF as libbpf does.
            try:
                raw = btf_for_kernel(obj, self.btf, layouts=layouts, unsupported=NEWER_KINDS)
                self.coll.btf_fd = load_btf(raw, what=f"{obj.path}: .BTF")
                self.coll.notes.append(
                    f"{obj.path}: this kernel refused some BTF kinds; loaded a sanitized BTF"
                )
            except KernelError:
                self.coll.notes.append(f"{e}; loading without BTF")

    wanted: list[str] | None = None  # programs being loaded (CO-RE is applied to those)

    def apply_core(self) -> None:
        """CO-RE: rewrite field offsets etc. for the running kernel's types."""
        if self.btf is None or self.ext is None or not any(self.ext.core_relos.values()):
            return
        from bpfkit.btf import load_vmlinux
        from bpfkit.obj.core_relocate import apply_core

        try:
            target = load_vmlinux()
        except BpfkitError as e:
            self.coll.notes.append(f"CO-RE relocations not applied: {e}")
            return
        self.obj, results = apply_core(self.obj, self.btf, self.ext, target, self.wanted)
        for r in results:
            if r.value is None:
                self.core_failures.append(r.why)
                self.coll.notes.append(
                    f"CO-RE: {r.why}; the instruction at byte {r.relo.insn_off} fails "
                    "verification if it can run"
                )

    @property
    def btf_fd(self) -> int | None:
        fd = self.coll.btf_fd
        return None if fd is None or fd.closed else fd.fd

    # -- externs -----------------------------------------------------------------------------
    def resolve_externs(self) -> None:
        used = extern_symbols(self.obj)
        if not used:
            return
        from bpfkit.btf import types as T
        from bpfkit.kernel import externs as X

        weak = X.weak_symbols(self.obj.symbols)
        kconfig: dict[str, tuple[int, int]] = {}
        if self.btf is not None:
            kconfig = X.kconfig_layout(self.btf)[0]
        wanted = [n for n in used if n in kconfig]
        if wanted:
            assert self.btf is not None
            value = X.kconfig_bytes(self.btf, wanted, weak)
            m = create_map(
                MapType.ARRAY,
                4,
                len(value),
                1,
                flags=attrs.F_MMAPABLE | attrs.F_RDONLY_PROG,
                name=data_map_name(self.obj, ".kconfig"),
            )
            self.coll.maps[".kconfig"] = m
            m[0] = value
            m.freeze()
            for n in wanted:
                self.externs[n] = Extern("map_value", m.fd, kconfig[n][0])
        for name, called in used.items():
            if name in kconfig:
                continue
            if called:
                kid = X.kfunc_id(name)
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
            ext = X.ksym(name, typed)
            if ext is None:
                if not weak.get(name):
                    raise ObjectError(
                        f"{self.obj.path}: ksym {name!r} does not exist in this kernel; "
                        "declare it __weak to accept a missing symbol"
                    )
                ext = Extern("addr", 0)
            self.externs[name] = ext

    # -- programs ----------------------------------------------------------------------------
    def _ext_records(self, linked: Linked) -> tuple[bytes, bytes]:
        ext = self.ext
        if ext is None or self.btf_fd is None:
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
        # `version` section often holds 0xFFFFFFFE ("the running kernel", libbpf's
        # LINUX_VERSION_CODE placeholder) or nothing.  Newer kernels ignore it.
        v = self.obj.version
        if v is None or v in (0, 0xFFFFFFFE):
            from bpfkit.kernel.features import kernel_version_code  # not externs: no BTF

            return kernel_version_code()
        return v

    def load_program(self, spec: ProgramSpec, prog_type: int | None) -> Program:
        try:
            return self._load_program(spec, prog_type)
        except VerifierError as e:
            from bpfkit.obj.core_relocate import POISON_HELPER  # imports bpfkit.btf

            # A poisoned CO-RE instruction shows as a call to helper 0xbad2310: say why.
            if str(POISON_HELPER) not in e.log or not self.core_failures:
                raise
            why = "; ".join(self.core_failures)
            raise VerifierError(f"{e}: a CO-RE relocation failed ({why})", e.log, e.errno) from None

    def _load_program(self, spec: ProgramSpec, prog_type: int | None) -> Program:
        obj = self.obj
        # The loader's object may have been rewritten (CO-RE): use its copy of the program.
        spec = next(
            (p for p in obj.programs if (p.section, p.offset) == (spec.section, spec.offset)), spec
        )
        if prog_type is not None:
            spec = typed(spec, prog_type)  # --type / the no-kprobes fallback
        if not spec.prog_type:
            raise unknown_section(spec.section)
        ptype, attach, flags = spec.prog_type, spec.expected_attach_type, spec.prog_flags
        btf_id = 0
        row = definition(spec.kind)
        if row is not None and row.needs_btf_id:
            if row.name.startswith("freplace"):
                raise ObjectError(
                    f"{obj.path}: program {spec.name!r} in section {spec.section!r}: "
                    f"{row.name} programs are not supported yet"
                )
            if row.name.startswith("struct_ops"):
                from bpfkit.kernel.struct_ops import struct_ops_target

                btf_id, attach = struct_ops_target(obj, spec.name)
            else:
                from bpfkit.kernel.externs import attach_btf_id

                btf_id = attach_btf_id(row.name, spec.attach_target)
        linked = link(obj, spec, map_fds=self.map_fds, data_fds=self.data_fds, externs=self.externs)
        func, line = self._ext_records(linked)
        common = dict(
            license=obj.license or "",
            name=spec.name,
            expected_attach_type=attach,
            kern_version=self.kern_version(),
            prog_flags=flags,
            log_level=self.log_level,
            attach_btf_id=btf_id,
        )
        if func or line:
            try:
                return load_program(
                    linked.insns,
                    ptype,
                    btf_fd=self.btf_fd,
                    func_info=func,
                    line_info=line,
                    **common,  # type: ignore[arg-type]
                )
            except VerifierError as e:
                # Rejected for its BTF info rather than its code: load without, as a
                # loader that never had BTF would.
                if not any(w in str(e) for w in ("func_info", "line_info", "BTF", "btf")):
                    raise
                self.coll.notes.append(f"program {spec.name!r}: {e}; loading without BTF info")
            except KernelError as e:
                self.coll.notes.append(f"program {spec.name!r}: {e}; loading without BTF info")
        return load_program(linked.insns, ptype, **common)  # type: ignore[arg-type]


def load_collection(
    obj: ObjectSpec,
    *,
    programs: Iterable[str] | None = None,
    prog_types: Mapping[str, int | str] | None = None,
    pin_maps_dir: str | None = None,
    log_level: int = 0,
) -> Collection:
    """Load ``obj`` (see the module docstring); ``programs`` limits which programs load
    (their maps and data still all load), ``prog_types`` overrides program types by name."""
    from bpfkit.kernel.program import prog_type_number

    mains = [p for p in obj.programs if not p.is_subprog]
    # "?type" sections (libbpf 1.0) are loaded only when named.
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
    overrides = {k: prog_type_number(v) for k, v in (prog_types or {}).items()}
    # Check every section name before creating anything.
    for name in wanted:
        if name not in overrides and not by_name[name].prog_type:
            e = unknown_section(by_name[name].section)
            raise ObjectError(f"{obj.path}: program {name!r}: {e}")
    if obj.big_endian != (sys.byteorder == "big"):
        order = "big" if obj.big_endian else "little"
        raise ObjectError(
            f"{obj.path}: the object is {order}-endian but this machine is {sys.byteorder}-"
            f"endian: compile it for this machine (clang -target bpf{'el' if sys.byteorder == 'little' else 'eb'})"
        )
    coll = Collection(obj)
    with ExitStack() as stack:
        stack.callback(coll.close)
        loader = _Loader(obj, stack, coll, pin_maps_dir, log_level)
        loader.load_btf()
        loader.wanted = wanted
        loader.apply_core()
        maker = ObjectMaps(obj, btf_fd=loader.btf_fd, pin_maps_dir=pin_maps_dir)
        try:
            maker.create()
            maker.create_data()
        finally:
            coll.maps.update(maker.maps)  # owned by the collection from here on
            coll.notes += maker.notes
            maker.notes = coll.notes
        loader.map_fds, loader.data_fds = maker.map_fds, maker.data_fds
        loader.resolve_externs()
        for name in wanted:
            coll.programs[name] = loader.load_program(by_name[name], overrides.get(name))
        maker.fill_initial_values(coll.programs)
        stack.pop_all()
    return coll
