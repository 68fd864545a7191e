"""Load an object, attach its programs and read what they print: what ``bpfkit run`` does.

::

    from bpfkit.kernel.session import Session

    with Session("examples/hello/hello.o") as s:     # load + attach (+ a trace instance)
        for note in s.notes:                          # e.g. the no-kprobes fallback
            print(note)
        for line in s.lines(count=3, duration=10):    # parsed trace_pipe lines
            print(line.render())
        print(dict(s.maps["counts"].items()))         # maps as mappings
    # everything detached and closed here, also on Ctrl-C or an exception

Each program attaches where its section says (``kprobe/FUNC``, ``tracepoint/CAT/NAME``,
...) or where ``attach=`` says; :func:`bpfkit.kernel.attach.plan` adapts the point to this
kernel *before* loading, because the no-kprobes fallback loads a kprobe program as a
tracepoint program.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace

from bpfkit.errors import KernelError, ObjectError
from bpfkit.kernel import attach as attach_mod
from bpfkit.kernel import links, tracefs
from bpfkit.obj.spec import ObjectSpec, ProgramSpec
from bpfkit.syscalls.causes import privileged
from bpfkit.syscalls.fd import Closing, HeldSignals
from bpfkit.uapi import MapType, ProgType

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:  # the readers are imported when a session opens one (buffers=True),
    from typing import Any

    # the trace machinery when it opens a trace instance (trace=True)
    from bpfkit.btf.mapview import MapTypes
    from bpfkit.btf.typedmap import TypedMap
    from bpfkit.events.perf import PerfBufferReader
    from bpfkit.events.printk import TagFilter
    from bpfkit.events.ringbuf import RingBufReader
    from bpfkit.events.trace_pipe import TraceLine, TraceStats
    from bpfkit.obj.prepare import PreparedObject
    from bpfkit.obj.printk_tags import PrintkTagging


_SERIAL = itertools.count()  # a process's sessions: its first is tagged by pid alone


@dataclass(frozen=True, slots=True)
class MapEvent:
    """A record a program sent through a ring buffer or perf event array map."""

    map: str
    data: bytes
    cpu: int | None = None  # perf buffers: the CPU it came from
    value: Any = None  # decoded by the record's BTF type, when the object shows it

    def render(self) -> str:
        """``map[cpu]: {pid: 42, comm: "xdp"}`` (decoded, by the one map renderer's
        value text) or ``map[cpu]: hex bytes  |printable|``."""
        where = self.map + (f"[cpu {self.cpu}]" if self.cpu is not None else "")
        if self.value is not None:
            from bpfkit.btf.mapview import format_value

            return f"{where}: {format_value(self.value)}"
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in self.data[:64])
        more = " ..." if len(self.data) > 64 else ""
        return f"{where}: {self.data[:64].hex(' ')}{more}  |{text}|"


@dataclass(frozen=True, slots=True)
class Planned:
    """A program of the object and where it will attach."""

    program: ProgramSpec
    plan: attach_mod.Plan


def choose_programs(spec: ObjectSpec, program: str | None = None) -> list[ProgramSpec]:
    """The programs to run: the one named, or every program that is not a sub-program."""
    entries = [p for p in spec.programs if not p.is_subprog]
    if program is None:
        if not entries:
            raise ObjectError(f"{spec.path}: no programs to run")
        return entries
    for p in entries:
        if program in (p.name, p.section):
            return [p]
    names = ", ".join(f"{p.name} ({p.section})" for p in entries) or "none"
    raise ObjectError(f"{spec.path}: no program named {program!r}; programs: {names}")


# Section-table rows (ProgramSpec.kind) whose programs `run` can attach (given a target).
_ATTACHABLE = frozenset(
    "kprobe kretprobe ksyscall kretsyscall uprobe uretprobe uprobe.s uretprobe.s usdt usdt.s "
    "tracepoint "
    "tp raw_tracepoint raw_tp raw_tracepoint.w raw_tp.w socket xdp xdp.frags tc/ingress "
    "tc/egress tcx/ingress tcx/egress perf_event tp_btf fentry fexit lsm".split()
)
# What a program needs from the command line when its section cannot say where.
_NEEDS = {
    "xdp": "an interface: --ifname IFNAME (and --xdp-mode generic|native)",
    "xdp.frags": "an interface: --ifname IFNAME",
    "tc/ingress": "an interface: --ifname IFNAME",
    "tc/egress": "an interface: --ifname IFNAME",
    "tcx/ingress": "an interface: --ifname IFNAME",
    "tcx/egress": "an interface: --ifname IFNAME",
}


def _is_cgroup(p: ProgramSpec) -> bool:
    return p.prog_type in _CGROUP_TYPES


_CGROUP_TYPES = frozenset(
    int(t)
    for t in (
        ProgType.CGROUP_SKB,
        ProgType.CGROUP_SOCK,
        ProgType.CGROUP_SOCK_ADDR,
        ProgType.CGROUP_SOCKOPT,
        ProgType.CGROUP_SYSCTL,
        ProgType.CGROUP_DEVICE,
        ProgType.SOCK_OPS,
    )
)


def plan_programs(
    programs: list[ProgramSpec],
    attach: str | None = None,
    *,
    kprobes: bool | None = None,
    where: attach_mod.Where | None = None,
) -> list[Planned]:
    """Where each program attaches on this kernel (``attach`` applies to all of them;
    ``where`` gives the interface, cgroup and sampling frequency sections cannot name)."""
    explicit = attach_mod.parse_spec(attach) if attach else None
    planned = []
    for p in programs:
        point = explicit or attach_mod.from_program(p, where)
        if point is None:
            if _is_cgroup(p):
                raise KernelError(
                    f"program {p.name}: section {p.section!r} attaches to a cgroup: give "
                    "its cgroup v2 directory with --cgroup PATH (e.g. /sys/fs/cgroup/NAME)"
                )
            need = p.kind or ("xdp" if p.prog_type == ProgType.XDP else "")
            if need in _NEEDS:
                raise KernelError(
                    f"program {p.name}: section {p.section!r} attaches to {_NEEDS[need]}"
                )
            if p.kind not in _ATTACHABLE and (p.kind or not p.prog_type):
                raise KernelError(
                    f"program {p.name}: bpfkit run attaches kprobe, tracepoint, raw "
                    "tracepoint, tp_btf, uprobe, USDT, socket filter, XDP, tc/tcx, cgroup and "
                    f"perf_event programs; section {p.section!r} is none of them (load it "
                    "without attaching: bpfkit load; or say its type: --type TYPE)"
                )
            raise KernelError(
                f"program {p.name}: section {p.section!r} names no attach point; "
                f"say where with --attach ({', '.join(attach_mod.SPEC_FORMS)})"
            )
        if point.kind == "cgroup" and point.attach_type is None:
            point = replace(point, attach_type=attach_mod.cgroup_hook(p))
        where_ = attach_mod.plan(point, kprobes=kprobes)
        own = explicit is None and where_.point.kind == point.kind
        if p.prog_type and (own or (point.kind == "cgroup" and _is_cgroup(p))):
            # The section's own point, unchanged: load the type the section says
            # (raw_tp.w is RAW_TRACEPOINT_WRITABLE, attached as a raw tracepoint).
            where_ = replace(where_, prog_type=ProgType(p.prog_type))
        planned.append(Planned(p, where_))
    return planned


class Session(Closing):
    """A loaded object with its programs attached and (optionally) a private trace buffer.

    ``obj`` is a path or an :class:`ObjectSpec`; ``program`` restricts to one program;
    ``attach`` overrides where (``--attach`` syntax); ``trace=False`` skips the tracefs
    instance; ``buffers=True`` also opens a reader on each ring buffer and perf event
    array map, whose records :meth:`events` yields.  Trace lines are only those the
    programs print: each printk call whose format is known before loading prints it
    tagged with this session (``[bpfkit PID] ``, :attr:`tag`; see
    :mod:`bpfkit.obj.printk_tags`), and only lines with this tag are shown, the tag
    stripped; a call whose format is not known prints untagged lines, and then untagged
    lines matching the formats (all of them, if one is unknown) are shown too, with a note.
    ``all_lines=True`` shows every line.  ``where`` gives the interface,
    XDP mode, cgroup and sampling frequency for programs whose section cannot (XDP, tcx,
    cgroup, perf_event).  ``prepared`` is the :attr:`prepared` of an earlier session of
    the same object and arguments on this kernel (boot), without ``trace`` (whose tags
    are per session): it is loaded without preparing again
    (:func:`~bpfkit.kernel.collection.load_collection`).  ``close()`` (or leaving the
    ``with`` block) detaches and closes everything.
    """

    def __init__(
        self,
        obj: str | os.PathLike[str] | ObjectSpec,
        *,
        program: str | None = None,
        attach: str | None = None,
        trace: bool = True,
        buffers: bool = False,
        all_lines: bool = False,
        where: attach_mod.Where | None = None,
        prepared: PreparedObject | None = None,
    ) -> None:
        from bpfkit.kernel.collection import load_collection

        if not privileged():
            raise KernelError(
                "loading BPF programs needs root or CAP_BPF: run bpfkit as root (sudo)"
            )
        if isinstance(obj, ObjectSpec):
            self.spec = obj
        else:
            from bpfkit.obj.reader import read_object

            self.spec = read_object(os.fspath(obj))
        self.planned = plan_programs(choose_programs(self.spec, program), attach, where=where)
        self.notes = [p.plan.note for p in self.planned if p.plan.note]
        self._pid, self._serial = os.getpid(), next(_SERIAL)
        self._tag: str | None = None
        # The printk calls (and their formats) of what runs: each known one prints tagged
        # (with trace=False there is no trace buffer to read: no tags, and the trace
        # machinery is not imported).
        self.printk: PrintkTagging | None = None
        self.filter: TagFilter | None = None
        self.formats: list[str] | None = []  # None: one is unknown
        self._all_lines = all_lines
        if trace:
            self._tag_printk()
        self.links: list[links.Link] = []
        self.instance: tracefs.TraceInstance | None = None
        self.readers: list[tuple[str, RingBufReader | PerfBufferReader]] = []
        self._stats: TraceStats | None = None
        self.collection: Any = None
        # What was loaded (load_collection's): a later session may load it again as it is.
        self.prepared: PreparedObject | None = None if trace else prepared
        # Ctrl-C while resources are created is held until each has its owner (a leak
        # otherwise: a tracefs instance made but not yet registered for removal, an fd
        # returned by bpf() but not yet in an Fd), then raised once all is closed again.
        held = HeldSignals()
        with held:
            try:
                self._open(load_collection, trace, buffers)
            except BaseException:
                self.close()
                raise
            if held.pending:
                self.close()
        held.deliver()

    @property
    def tag(self) -> str:
        """This session's tag on its printk lines (``[bpfkit PID] ``)."""
        if self._tag is None:
            from bpfkit.obj.printk_tags import run_tag

            self._tag = run_tag(self._pid, self._serial)
        return self._tag

    @property
    def stats(self) -> TraceStats:
        """Counts of the trace lines read: lost, skipped (other programs')."""
        if self._stats is None:
            from bpfkit.events.trace_pipe import TraceStats

            self._stats = TraceStats()
        return self._stats

    def _tag_printk(self) -> None:
        from bpfkit.events.printk import TagFilter, printk_sites, site_formats, site_name
        from bpfkit.obj.printk_tags import PrintkTagging

        sites = printk_sites(self.spec, [p.program for p in self.planned])
        self.printk = PrintkTagging(self.tag, tuple(sites))
        self.filter = TagFilter(self.tag, sites, all_lines=self._all_lines)
        self.formats = site_formats(sites)
        untagged = self.printk.untaggable
        if untagged:
            first = untagged[0]
            more = f" (and {len(untagged) - 1} more)" if len(untagged) > 1 else ""
            self.notes.append(
                f"the bpf_trace_printk call at {site_name(self.spec, first)}{more} prints "
                f"untagged lines: {first.why}; lines of other programs that look like "
                "its lines show here too"
            )

    def _open(self, load_collection: Any, trace: bool, buffers: bool) -> None:
        names = [p.program.name for p in self.planned]
        types = {p.program.name: int(p.plan.prog_type) for p in self.planned}
        printk = self.printk if self.printk is not None and self.printk.taggable else None
        try:
            self.collection = load_collection(
                self.spec, programs=names, prog_types=types, printk=printk, prepared=self.prepared
            )
        except KernelError as e:  # VerifierError too
            if printk is None:
                raise
            # A kernel that refuses the stubs (bpf-to-bpf calls) gets the programs as
            # they are (if they fail too, that error is raised); their lines are untagged.
            self.collection = load_collection(self.spec, programs=names, prog_types=types)
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            self._untag(f"this kernel refused the tagged calls ({why})")
        self.prepared = getattr(self.collection, "prepared", None)
        self.notes += list(getattr(self.collection, "notes", []))
        # Readers before attaching, so nothing the programs send is missed.
        if trace:
            self.instance = tracefs.TraceInstance()
        if buffers:
            self._open_readers()
        for p in self.planned:
            prog = self.collection.programs[p.program.name]
            self.links.append(
                links.attach(prog, p.plan.point, maps=self.collection.maps, obj=self.spec)
            )

    def _untag(self, why: str) -> None:
        """The programs were loaded without tagged calls: show untagged lines as before."""
        from bpfkit.events.printk import TagFilter
        from bpfkit.obj.printk_tags import PrintkTagging

        assert self.printk is not None  # only a tagging session is untagged
        sites = self.printk.sites
        self.filter = TagFilter(self.tag, sites, all_lines=self._all_lines, tagged=False)
        self.printk = PrintkTagging(
            self.tag, tuple(replace(site, format=None, why=why) for site in sites)
        )
        self.notes.append(
            f"bpf_trace_printk lines are not tagged: {why}; lines of other programs "
            "(another run of this object too) that look like its lines show here too"
        )

    @property
    def maps(self) -> Mapping[str, Any]:
        """The object's maps by name (each a MutableMapping of bytes); not the map of
        tagged printk formats bpfkit adds."""
        if self.collection is None:
            return {}
        if self.printk is None:  # no tags: no map of them
            return dict(self.collection.maps)
        from bpfkit.obj.printk_tags import TAG_SECTION

        return {k: v for k, v in self.collection.maps.items() if k != TAG_SECTION}

    def __getitem__(self, name: str) -> TypedMap:
        """The map ``name`` as Python values typed by the object's BTF (``s["counts"]``,
        as bcc's ``b["counts"]``; :mod:`bpfkit.btf.typedmap`)."""
        if self.collection is None:
            raise KernelError(f"{self.spec.path}: the session is not open: use it in a with-block")
        result: TypedMap = self.collection[name]
        return result

    @property
    def programs(self) -> Mapping[str, Any]:
        """The loaded programs by name."""
        return dict(self.collection.programs) if self.collection is not None else {}

    def lines(
        self, *, count: int | None = None, duration: float | None = None
    ) -> Iterator[TraceLine]:
        """``bpf_trace_printk`` lines until ``count`` lines or ``duration`` seconds."""
        if self.instance is None:
            raise KernelError("this session was opened with trace=False")
        from bpfkit.events.trace_pipe import stream

        return stream(
            self.instance.pipe,
            count=count,
            duration=duration,
            stats=self.stats,
            select=self._select,
        )

    def _select(self, line: TraceLine) -> TraceLine | None:
        assert self.filter is not None  # set when the trace instance is (trace=True)
        message = self.filter.message(line.message)
        if message is None:
            return None
        return line if message is line.message else replace(line, message=message)

    def _open_readers(self) -> None:
        for name, m in self.collection.maps.items():
            if m.type == MapType.RINGBUF:
                from bpfkit.events.ringbuf import RingBufReader

                self.readers.append((name, RingBufReader(m.fd, m.max_entries)))
            elif m.type == MapType.PERF_EVENT_ARRAY:
                from bpfkit.events.perf import PerfBufferReader  # not imported for ring buffers

                self.readers.append((name, PerfBufferReader(m.fd)))

    def events(
        self, *, count: int | None = None, duration: float | None = None, decode: bool = True
    ) -> Iterator[TraceLine | MapEvent]:
        """Trace lines and buffer records as they come, until ``count`` of them or
        ``duration`` seconds (None: no limit); ``decode=False`` leaves each record's
        ``value`` None (a caller that decodes the bytes itself: no BTF is parsed)."""
        if count is not None and count <= 0:
            return
        types: dict[str, MapTypes] = {}
        if self.readers:  # imported by _open_readers already
            from bpfkit.events.ringbuf import RingBufReader
        if self.readers and decode:
            from bpfkit.btf.mapview import object_map_types

            found = object_map_types(self.spec)
            types = {n: found[n] for n, _ in self.readers if n in found and found[n].value}
        if self.instance is not None:
            from bpfkit.events.trace_pipe import stream
        deadline = None if duration is None else time.monotonic() + duration
        step = 0.05 if self.readers else 0.2  # how long one source may wait for data
        shown = 0
        while True:
            wait = step
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return
            batch: list[TraceLine | MapEvent] = []
            if self.instance is not None:
                batch += stream(
                    self.instance.pipe, duration=wait, stats=self.stats, select=self._select
                )
            elif not self.readers:
                time.sleep(wait)
            for name, reader in self.readers:
                t = types.get(name)
                got: list[tuple[int | None, bytes]]
                if isinstance(reader, RingBufReader):
                    got = [(None, r) for r in reader.read()]
                else:
                    got = [(cpu, r) for cpu, r in reader.read()]
                batch += [
                    MapEvent(name, r, cpu, t.decode_value(r) if t is not None else None)
                    for cpu, r in got
                ]
            for event in batch:
                yield event
                shown += 1
                if count is not None and shown >= count:
                    return
            if self.instance is None and self.readers and not batch:
                time.sleep(wait)

    def close(self) -> None:
        """Detach every link, remove the trace instance, close programs and maps (a Ctrl-C
        meanwhile is raised once all is closed)."""
        held = HeldSignals()
        with held:
            self._close()
        held.deliver()

    def _close(self) -> None:
        closers: list[Callable[[], None]] = [link.close for link in reversed(self.links)]
        if self.instance is not None:
            closers.append(self.instance.close)
        errors = close_together(closers)
        self.links.clear()
        self.instance = None
        for _, reader in self.readers:
            reader.close()
        self.readers.clear()
        if self.collection is not None:
            self.collection.close()
            self.collection = None
        if errors:
            raise errors[0]


def close_together(closers: list[Callable[[], None]]) -> list[Exception]:
    """Call every closer, at the same time when there are several; return their errors.

    Detaching from a perf-event tracepoint and removing a tracefs instance each make the
    kernel wait for RCU grace periods (~35-70 ms here, see bench/load.py); waiting in one
    thread per closer overlaps part of those waits (one link and an instance: ~100 ->
    ~70 ms; three links and an instance: ~245 -> ~145 ms).  The threads are not daemons:
    even if the caller is interrupted while joining them, they finish before exit."""
    errors: list[Exception] = []

    def call(fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as e:  # keep closing the rest
            errors.append(e)

    threads: list[threading.Thread] = []
    here = closers[:1]
    for fn in closers[1:]:
        t = threading.Thread(target=call, args=(fn,), name="bpfkit-close")
        try:
            t.start()
        except RuntimeError:  # no new threads (interpreter shutting down): close here
            here.append(fn)
            continue
        threads.append(t)
    try:
        for fn in here:
            call(fn)
    finally:
        for t in threads:
            t.join()
    return errors


def render_maps(maps: Mapping[str, Any], *, limit: int = 50, obj: Any = None) -> str:
    """The maps' contents as text, by the one map renderer (:mod:`bpfkit.btf.mapview`),
    typed by ``obj``'s BTF when given (``Session.render_maps`` passes its object)."""
    from bpfkit.btf.mapview import object_map_types
    from bpfkit.kernel.render import render_maps as render

    types = object_map_types(obj) if obj is not None else {}
    return render(maps, limit=limit, types=types)
