"""The user-space side of a Python BPF program: compile, load, attach, read maps and events.

::

    prog = Program.from_module(__name__)      # or Program.from_file("prog.py")
    prog.vm()                                 # a bpfkit.vm.Vm of one program (no kernel)
    with load(__name__) as live:              # compiled, loaded, attached (a Session)
        live.maps["counts"]                   # typed: keys and values as declared
        for event in live.events():           # ring/perf buffer records as struct instances
            ...

Tracepoint, raw tracepoint, kprobe, uprobe and USDT programs attach through
:class:`bpfkit.kernel.session.Session`; XDP programs attach to an interface
(``load(..., ifname="lo")``) with a BPF link; others are loaded and not attached.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import ModuleType

from bpfkit.errors import KernelError
from bpfkit.kernel.maps import Codec, Map
from bpfkit.lang.compiler import Compiled, compile_file, compile_module
from bpfkit.lang.decl import MapDecl
from bpfkit.lang.types import Type, pack, unpack
from bpfkit.obj.spec import ObjectSpec, ProgramSpec
from bpfkit.uapi import MapType

TYPE_CHECKING = False  # as typing.TYPE_CHECKING
if TYPE_CHECKING:
    from typing import Any

    from bpfkit.obj.prepare import PreparedObject

ATTACHED_KINDS = {
    "tracepoint",
    "raw_tracepoint",
    "kprobe",
    "kretprobe",
    "uprobe",
    "uretprobe",
    "usdt",
}


class TypeCodec(Codec):
    """Map keys/values as the program declared them (ints, struct instances, bytes)."""

    def __init__(self, t: Type) -> None:
        super().__init__(t.size)
        self.t = t

    def encode(self, value: Any) -> bytes:
        if isinstance(value, (bytes, bytearray)) and len(value) == self.size:
            return bytes(value)
        return pack(self.t, value)

    def decode(self, data: bytes) -> Any:
        return unpack(self.t, data)


class Program:
    """A compiled Python BPF module: its object, for the VM, the loader and the session."""

    def __init__(self, compiled: Compiled) -> None:
        self.compiled = compiled

    @classmethod
    def from_module(cls, module: ModuleType | str) -> Program:
        """Compile a module (or a module name, e.g. ``__name__``)."""
        return cls(compile_module(module))

    @classmethod
    def from_file(cls, path: str) -> Program:
        """Compile the program file at ``path``."""
        return cls(compile_file(path))

    @property
    def spec(self) -> ObjectSpec:
        """The object as bpfkit reads it (for Session, load_collection, the VM)."""
        return self.compiled.spec

    @property
    def obj(self) -> bytes:
        """The ELF object's bytes."""
        return self.compiled.obj

    def program(self, name: str | None = None) -> ProgramSpec:
        """One program by function name (the only one when ``name`` is None)."""
        progs = [p for p in self.spec.programs if not p.is_subprog]
        if name is None:
            if len(progs) != 1:
                raise KernelError(f"{self.compiled.path} has {len(progs)} programs: name one")
            return progs[0]
        for p in progs:
            if p.name == name:
                return p
        raise KernelError(f"{self.compiled.path}: no program {name!r}")

    def vm(self, name: str | None = None, **kwargs: Any) -> Any:
        """A :class:`bpfkit.vm.Vm` running program ``name`` (kwargs: ctx, packet, env ...)."""
        from bpfkit.vm import Vm

        return Vm(self.program(name), obj=self.spec, **kwargs)

    def decode_map(self, name: str, items: Mapping[bytes, bytes]) -> dict[Any, Any]:
        """A map's raw items (from the VM) decoded with the declared types."""
        decl = self.compiled.maps[name]
        if decl.key is None or decl.value is None:
            return dict(items)
        return {unpack(decl.key, k): unpack(decl.value, v) for k, v in items.items()}

    def load(self, **kwargs: Any) -> Loaded:
        """Load and attach (see :func:`load`)."""
        return Loaded(self, **kwargs)


class Loaded:
    """A loaded (and attached) Python BPF program; close() detaches and frees everything."""

    def __init__(
        self,
        program: Program,
        *,
        attach: str | None = None,
        ifname: str | None = None,
        trace: bool = False,
    ) -> None:
        from bpfkit.kernel.collection import load_collection
        from bpfkit.kernel.session import Session

        self.program = program
        self.session: Session | None = None
        self.collection: Any = None
        self._links: list[Any] = []  # bpfkit.kernel.links.Link
        kinds = {s.kind for s in program.compiled.programs.values()}
        attached = kinds <= ATTACHED_KINDS
        # What an earlier run prepared for this kernel (not when tracing: tags are per run).
        options = repr(("session" if attached else "collection", attach))
        prepared = None if trace else self._prepared(options)
        spec = prepared.spec if prepared is not None else program.spec
        if attached:
            # all_lines when not tracing: no printk-format analysis to pay for.
            self.session = Session(
                spec,
                attach=attach,
                trace=trace,
                buffers=True,
                all_lines=not trace,
                prepared=prepared,
            )
            self.collection = self.session.collection
        else:
            self.collection = load_collection(spec, prepared=prepared)
        if prepared is None and not trace:
            self._keep(options, self.collection.prepared)
        if not attached:
            try:
                if ifname is not None:
                    from bpfkit.kernel.attach import xdp_point
                    from bpfkit.kernel.links import attach as attach_link

                    for name, sec in program.compiled.programs.items():
                        if sec.kind == "xdp":
                            prog = self.collection.programs[name]
                            self._links.append(attach_link(prog, xdp_point(ifname)))
            except BaseException:
                self.close()
                raise
        self._readers: list[Any] = []

    def _prepared(self, options: str) -> PreparedObject | None:
        compiled = self.program.compiled
        if compiled.key is None:
            return None
        from bpfkit.lang import cache

        return cache.load_prepared(compiled.key, compiled.path, options)

    def _keep(self, options: str, prepared: PreparedObject | None) -> None:
        compiled = self.program.compiled
        if compiled.key is None or prepared is None:
            return
        from bpfkit.lang import cache

        cache.store_prepared(compiled.key, compiled.path, options, prepared)

    def __enter__(self) -> Loaded:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def maps(self) -> dict[str, Map]:
        """The maps by name, keys and values typed as declared."""
        out: dict[str, Map] = {}
        for name, m in self.collection.maps.items():
            decl: MapDecl | None = self.program.compiled.maps.get(name)
            if (
                decl is not None
                and decl.key is not None
                and decl.value is not None
                and (decl.map_type not in (MapType.PERF_EVENT_ARRAY, MapType.PROG_ARRAY))
            ):
                out[name] = m.typed(key=TypeCodec(decl.key), value=TypeCodec(decl.value))
            else:
                out[name] = m
        return out

    @property
    def programs(self) -> Mapping[str, Any]:
        """The loaded kernel programs by name (for test_run)."""
        return dict(self.collection.programs)

    def events(
        self, record: Any = None, *, count: int | None = None, duration: float | None = None
    ) -> Iterator[Any]:
        """Ring/perf buffer records, decoded as ``record`` (a @struct class) when given."""
        if self.session is None:
            raise KernelError("events() needs an attached tracing program")
        from bpfkit.kernel.session import MapEvent

        # Records are decoded by the declared struct: the object's BTF is not read for it.
        for ev in self.session.events(count=count, duration=duration, decode=record is None):
            if isinstance(ev, MapEvent):
                yield record.unpack(ev.data) if record is not None else ev.data

    def lines(self, *, count: int | None = None, duration: float | None = None) -> Iterator[str]:
        """print() output of the programs (needs ``trace=True``)."""
        if self.session is None:
            raise KernelError("lines() needs an attached tracing program loaded with trace=True")
        for line in self.session.lines(count=count, duration=duration):
            yield line.message

    def close(self) -> None:
        """Detach and close everything."""
        for link in self._links:
            link.close()
        self._links.clear()
        if self.session is not None:
            self.session.close()
            self.session = None
        elif self.collection is not None:
            self.collection.close()
        self.collection = None


def load(module: ModuleType | str, **kwargs: Any) -> Loaded:
    """Compile ``module`` (a module or its name, e.g. ``__name__``), load it and attach its
    programs: ``attach=`` overrides the attach point, ``ifname=`` attaches XDP programs,
    ``trace=True`` opens a trace buffer for print()."""
    return Program.from_module(module).load(**kwargs)


__all__ = ["Loaded", "Program", "TypeCodec", "compile_file", "compile_module", "load", "log2_hist"]


def log2_hist(counts: Mapping[int, int], label: str = "value") -> str:
    """A log2 histogram as bcc's ``print_log2_hist`` draws it (:func:`bpfkit.text.log2_hist`,
    the one histogram drawer); here bucket ``i`` holds values from ``2**i`` to
    ``2**(i+1) - 1`` (bucket 0 holds 0 and 1), which is bcc's slot ``i + 1``."""
    from bpfkit.text import log2_hist as draw

    return draw({i + 1: n for i, n in counts.items()}, label)
