"""Loading a whole object: its BTF, maps, global data and programs.

API::

    load_collection(obj, *, programs=None, prog_types=None, pin_maps_dir=None,
                    log_level=0, printk=None) -> Collection
    Collection: .programs[name] -> Program, .maps[name] -> Map (global data maps are
                named by section: ".data", ".rodata", ".bss"), [name] -> the map
                as Python values typed by the object's BTF (bpfkit.btf.typedmap),
                .btf_fd, .notes (what was adapted on the way, one line each),
                .close(), with-block, .pin(directory)

The steps follow libbpf's ``bpf_object__load``.  Everything that needs no kernel call
is decided first by :func:`bpfkit.obj.prepare.prepare` against the running kernel's
description (:mod:`bpfkit.kernel.target`): BTF fixed up for it, CO-RE applied, externs
resolved, programs typed, linked and their func_info/line_info remapped.  Then, here:
the BTF is loaded (if the kernel refuses it, a fully sanitized one, then none, as libbpf
does, with a note); maps are created (legacy ``maps`` and BTF ``.maps``,
``LIBBPF_PIN_BY_NAME`` maps reused from or pinned in ``pin_maps_dir``, default
/sys/fs/bpf); each global data section (and ``.kconfig``) becomes a one-element array map
with its initial contents (read-only ones frozen); each program gets its maps' descriptors
and is loaded with func_info/line_info (so verifier logs show source lines) when the BTF
loaded.  On any error everything created so far is closed.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field

from bpfkit.errors import KernelError, VerifierError
from bpfkit.kernel import pins
from bpfkit.kernel.btf_load import load_btf
from bpfkit.kernel.maps import Map
from bpfkit.kernel.object_maps import ObjectMaps
from bpfkit.kernel.program import Program, load_program
from bpfkit.obj.spec import ObjectSpec
from bpfkit.syscalls import Fd
from bpfkit.syscalls.fd import Closing
from bpfkit.uapi import AttachType, ProgType

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from bpfkit.btf.mapview import MapTypes
    from bpfkit.btf.typedmap import TypedMap
    from bpfkit.obj.prepare import PreparedObject, PreparedProgram
    from bpfkit.obj.printk_tags import PrintkTagging


@dataclass
class Collection(Closing):
    """The live kernel objects of one loaded object file."""

    spec: ObjectSpec
    programs: dict[str, Program] = field(default_factory=dict)
    maps: dict[str, Map] = field(default_factory=dict)
    btf_fd: Fd | None = None
    notes: list[str] = field(default_factory=list)
    _types: dict[str, MapTypes] | None = field(default=None, repr=False)
    prepared: PreparedObject | None = field(default=None, repr=False)  # what was loaded

    def __getitem__(self, name: str) -> TypedMap:
        """The map ``name`` as Python values typed by the object's BTF (``coll["counts"]``,
        as bcc's ``b["counts"]``; :mod:`bpfkit.btf.typedmap`); ``.maps[name]`` is the
        same map in bytes."""
        from bpfkit.btf.mapview import object_map_types
        from bpfkit.btf.typedmap import TypedMap

        m = self.maps.get(name)
        if m is None:
            names = ", ".join(self.maps) or "none"
            raise KernelError(f"{self.spec.path}: no map named {name!r} (maps: {names})")
        if self._types is None:
            self._types = object_map_types(self.spec)
        return TypedMap(m, self._types.get(name))

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
    """Creates what :func:`bpfkit.obj.prepare.prepare` decided, in the kernel."""

    def __init__(self, prepared: PreparedObject, coll: Collection, log_level: int) -> None:
        self.prepared = prepared
        self.coll = coll
        self.log_level = log_level
        self.fds: dict[str, int] = {}

    def load_btf(self) -> None:
        prepared, path = self.prepared, self.prepared.spec.path
        if prepared.btf is None:
            return
        try:
            self.coll.btf_fd = load_btf(prepared.btf, what=f"{path}: .BTF")
        except KernelError as e:
            # A kernel may refuse kinds its version should know (FLOAT, DECL_TAG, TYPE_TAG,
            # ENUM64): try again with them replaced, then give up on BTF as libbpf does.
            try:
                if prepared.btf_fallback is None:
                    raise
                self.coll.btf_fd = load_btf(prepared.btf_fallback, what=f"{path}: .BTF")
                self.coll.notes.append(
                    f"{path}: this kernel refused some BTF kinds; loaded a sanitized BTF"
                )
            except KernelError:
                self.coll.notes.append(f"{e}; loading without BTF")

    @property
    def btf_fd(self) -> int | None:
        fd = self.coll.btf_fd
        return None if fd is None or fd.closed else fd.fd

    def load_program(self, prog: PreparedProgram) -> Program:
        try:
            return self._load_program(prog)
        except VerifierError as e:
            from bpfkit.obj.core_relocate import POISON_HELPER  # imports bpfkit.btf

            # A poisoned CO-RE instruction shows as a call to helper 0xbad2310: say why.
            failures = self.prepared.core_failures
            if str(POISON_HELPER) not in e.log or not failures:
                raise
            why = "; ".join(failures)
            raise VerifierError(f"{e}: a CO-RE relocation failed ({why})", e.log, e.errno) from None
        except KernelError as e:
            if e.errno != errno.EPERM:
                raise
            refused = trampoline_refused(prog.name, prog.prog_type, prog.expected_attach_type)
            if refused is None:
                raise
            raise KernelError(refused, e.errno) from None

    def _load_program(self, prog: PreparedProgram) -> Program:
        insns = prog.bind(self.fds)
        common = dict(
            license=prog.license,
            name=prog.name,
            expected_attach_type=prog.expected_attach_type,
            kern_version=prog.kern_version,
            prog_flags=prog.prog_flags,
            log_level=self.log_level,
            attach_btf_id=prog.attach_btf_id,
        )
        if self.btf_fd is not None and (prog.func_info or prog.line_info):
            try:
                return load_program(
                    insns,
                    prog.prog_type,
                    btf_fd=self.btf_fd,
                    func_info=prog.func_info,
                    line_info=prog.line_info,
                    **common,  # type: ignore[arg-type]
                )
            except VerifierError as e:
                # Rejected for its BTF info rather than its code: load without, as a
                # loader that never had BTF would.
                if not any(w in str(e) for w in ("func_info", "line_info", "BTF", "btf")):
                    raise
                self.coll.notes.append(f"program {prog.name!r}: {e}; loading without BTF info")
            except KernelError as e:
                self.coll.notes.append(f"program {prog.name!r}: {e}; loading without BTF info")
        return load_program(insns, prog.prog_type, **common)  # type: ignore[arg-type]


# Programs the kernel runs through a BPF trampoline, and what to use instead.
_TRAMPOLINED: dict[tuple[int, int], tuple[str, str]] = {
    (ProgType.TRACING, AttachType.TRACE_FENTRY): ("fentry", 'SEC("kprobe/FUNC")'),
    (ProgType.TRACING, AttachType.TRACE_FEXIT): ("fexit", 'SEC("kretprobe/FUNC")'),
    (ProgType.TRACING, AttachType.MODIFY_RETURN): ("fmod_ret", 'SEC("kretprobe/FUNC")'),
    (ProgType.LSM, AttachType.LSM_MAC): ("lsm", 'a tracepoint or SEC("kprobe/security_HOOK")'),
    (ProgType.LSM, AttachType.LSM_CGROUP): ("lsm_cgroup", "a cgroup program (cgroup/...)"),
}


def trampoline_refused(name: str, prog_type: int, attach_type: int) -> str | None:
    """The message for a trampoline program (fentry, fexit, fmod_ret, lsm) the kernel
    refused with EPERM although bpfkit is privileged, or None for other programs."""
    found = _TRAMPOLINED.get((prog_type, attach_type))
    if found is None:
        return None
    kind, instead = found
    return (
        f"loading program {name!r}: this kernel refuses {kind} programs (BPF_PROG_LOAD: "
        "EPERM although running as root): they run through BPF trampolines, which this "
        "kernel does not allow here (kernel lockdown, see dmesg 'locked down', or a "
        f"security module); attach the same code as {instead} instead, or run on a "
        "kernel that allows trampolines"
    )


def load_collection(
    obj: ObjectSpec,
    *,
    programs: Iterable[str] | None = None,
    prog_types: Mapping[str, int | str] | None = None,
    pin_maps_dir: str | None = None,
    log_level: int = 0,
    printk: PrintkTagging | None = None,
    prepared: PreparedObject | None = None,
) -> Collection:
    """Load ``obj`` (see the module docstring); ``programs`` limits which programs load
    (their maps and data still all load), ``prog_types`` overrides program types by name,
    ``printk`` tags printk calls (``bpfkit run``; :mod:`bpfkit.obj.printk_tags`).

    ``prepared`` is what :func:`~bpfkit.obj.prepare.prepare` made of ``obj`` for this
    kernel with these arguments before (``Collection.prepared`` of an earlier load, kept
    by the caller, e.g. bpfkit.lang's cache): it is loaded as it is, skipping preparing
    (and the imports of the BTF parser, CO-RE and the linker it needs)."""
    if prepared is None:
        from bpfkit.kernel.program import prog_type_number
        from bpfkit.kernel.target import running_kernel
        from bpfkit.obj.prepare import prepare

        overrides = {k: prog_type_number(v) for k, v in (prog_types or {}).items()}
        prepared = prepare(
            obj, running_kernel(), programs=programs, prog_types=overrides, printk=printk
        )
    coll = Collection(obj, prepared=prepared)
    coll.notes += prepared.notes
    with ExitStack() as stack:
        stack.callback(coll.close)
        loader = _Loader(prepared, coll, log_level)
        loader.load_btf()
        maker = ObjectMaps(prepared.spec, btf_fd=loader.btf_fd, pin_maps_dir=pin_maps_dir)
        try:
            maker.create()
            maker.create_data()
        finally:
            coll.maps.update(maker.maps)  # owned by the collection from here on
            coll.notes += maker.notes
            maker.notes = coll.notes
        loader.fds = {**maker.map_fds, **maker.data_fds}
        for prog in prepared.programs:
            coll.programs[prog.name] = loader.load_program(prog)
        maker.fill_initial_values(coll.programs)
        stack.pop_all()
    return coll
