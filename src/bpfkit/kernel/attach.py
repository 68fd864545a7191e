"""Where a program attaches: attach points, the plan for this kernel, and ``attach()``.

An :class:`AttachPoint` says where (``kprobe:FUNC``, ``kretprobe:FUNC``,
``tracepoint:CATEGORY:NAME``, ``raw_tracepoint:NAME``, ``uprobe:PATH:SYMBOL``,
``uretprobe:PATH:SYMBOL``, ``usdt:PATH:PROVIDER:NAME``, ``socket[:IFNAME]``, ...); it comes from ``--attach`` text
(:func:`parse_spec`) or from a program's libbpf section name (:func:`from_program`).

:func:`plan` adapts a point to the running kernel *before* the program is loaded, since
the fallback changes the program type: syscall probe names are resolved
(``SyS_clone`` -> ``__x64_sys_clone``), and on a kernel without kprobes a
``kprobe/SyS_<name>`` program becomes a tracepoint program on ``syscalls:sys_enter_<name>``
(``kretprobe`` on ``sys_exit_<name>``), with a one-line note saying so.

:func:`attach` (in :mod:`bpfkit.kernel.links`) makes the attachment and returns a
:class:`~bpfkit.kernel.links.Link` that detaches on ``close()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from bpfkit.errors import KernelError
from bpfkit.kernel import tracefs
from bpfkit.obj.spec import ProgramSpec
from bpfkit.uapi import ProgType

KINDS = (
    "kprobe",
    "kretprobe",
    "tracepoint",
    "raw_tracepoint",
    "uprobe",
    "uretprobe",
    "usdt",
    "socket",
    "xdp",
    "tcx",
    "cgroup",
    "perf_event",
)
SPEC_FORMS = (
    "kprobe:FUNC[+OFF]",
    "kretprobe:FUNC",
    "tracepoint:CATEGORY:NAME",
    "raw_tracepoint:NAME",
    "uprobe:PATH:SYMBOL[+OFF]",
    "uretprobe:PATH:SYMBOL",
    "usdt:PATH:PROVIDER:NAME",
    "socket[:IFNAME]",
    "xdp:IFNAME[:generic|native]",
    "tcx:IFNAME:ingress|egress",
    "cgroup:PATH (the attach type from the section or --type)",
    "perf_event[:FREQ] (CPU clock sampling, FREQ Hz)",
)
PROG_TYPE = {
    "kprobe": ProgType.KPROBE,
    "kretprobe": ProgType.KPROBE,
    "uprobe": ProgType.KPROBE,
    "uretprobe": ProgType.KPROBE,
    "usdt": ProgType.KPROBE,
    "tracepoint": ProgType.TRACEPOINT,
    "raw_tracepoint": ProgType.RAW_TRACEPOINT,
    "socket": ProgType.SOCKET_FILTER,
    "xdp": ProgType.XDP,
    "tcx": ProgType.SCHED_CLS,
    "cgroup": ProgType.CGROUP_SKB,
    "perf_event": ProgType.PERF_EVENT,
    "tp_btf": ProgType.TRACING,
    "fentry": ProgType.TRACING,
    "fexit": ProgType.TRACING,
    "lsm": ProgType.LSM,
}
# Where the program's own section row gives the type and attach type (cgroup programs,
# tcx, fentry...), the loaded program keeps them; PROG_TYPE is the type for --attach alone.
XDP_MODES = {"": 0, "generic": 1 << 1, "native": 1 << 2}  # XDP_FLAGS_SKB_MODE / DRV_MODE
TCX_DIRECTIONS = ("ingress", "egress")
DEFAULT_PERF_FREQ = 99  # Hz, as bcc's profile samples
TRACING_KINDS = ("tp_btf", "fentry", "fexit", "lsm")


@dataclass(frozen=True, slots=True)
class AttachPoint:
    """Where to attach.  ``target`` is the function, ``CATEGORY:NAME``, raw tracepoint
    name, binary path, interface or cgroup directory; ``symbol`` the uprobe symbol or the
    USDT probe's ``PROVIDER:NAME``, the
    XDP mode (``generic``/``native``; "" lets the kernel choose) or the tcx direction
    (``ingress``/``egress``); ``offset`` a kprobe offset inside the function or a
    perf_event sampling frequency (Hz); ``attach_type`` a cgroup point's ``enum
    bpf_attach_type`` (None: the program's own)."""

    kind: str
    target: str = ""
    symbol: str = ""
    offset: int = 0
    attach_type: int | None = None

    def __str__(self) -> str:
        if self.kind in ("uprobe", "uretprobe", "usdt", "tcx") or (
            self.kind == "xdp" and self.symbol
        ):
            return f"{self.kind}:{self.target}:{self.symbol}"
        if self.kind == "perf_event":
            return f"perf_event:{self.offset}"
        target = self.target + (f"+{self.offset}" if self.offset else "")
        return f"{self.kind}:{target}" if target else self.kind

    @property
    def prog_type(self) -> ProgType:
        """The program type this point runs."""
        return PROG_TYPE[self.kind]


def _bad_spec(spec: str, why: str) -> KernelError:
    return KernelError(f"bad attach point {spec!r}: {why}; use one of {', '.join(SPEC_FORMS)}")


def _function(text: str, spec: str) -> tuple[str, int]:
    func, plus, off = text.partition("+")
    if not func:
        raise _bad_spec(spec, "no function named")
    try:
        return func, int(off, 0) if plus else 0
    except ValueError:
        raise _bad_spec(spec, f"offset {off!r} is not a number") from None


def parse_spec(spec: str) -> AttachPoint:
    """Parse ``--attach`` text (see :data:`SPEC_FORMS`)."""
    kind, _, rest = spec.partition(":")
    kind = {"tp": "tracepoint", "raw_tp": "raw_tracepoint"}.get(kind, kind)
    if kind not in KINDS:
        raise _bad_spec(spec, f"unknown kind {kind!r}")
    if kind in ("kprobe", "kretprobe"):
        func, off = _function(rest, spec)
        return AttachPoint(kind, func, offset=off)
    if kind == "tracepoint":
        category, _, name = rest.partition(":")
        if not category or not name:
            raise _bad_spec(spec, "a tracepoint needs CATEGORY:NAME")
        return AttachPoint(kind, f"{category}:{name}")
    if kind == "raw_tracepoint":
        if not rest:
            raise _bad_spec(spec, "a raw tracepoint needs a NAME")
        return AttachPoint(kind, rest)
    if kind in ("uprobe", "uretprobe"):
        path, _, symbol = rest.rpartition(":")
        if not path or not symbol:
            raise _bad_spec(spec, "a uprobe needs PATH:SYMBOL")
        return AttachPoint(kind, path, symbol)
    if kind == "usdt":
        return usdt_point(rest, spec)
    if kind == "xdp":
        ifname, _, mode = rest.partition(":")
        if not ifname:
            raise _bad_spec(spec, "XDP needs an interface (xdp:IFNAME)")
        return xdp_point(ifname, mode, spec)
    if kind == "tcx":
        ifname, _, direction = rest.partition(":")
        if not ifname or direction not in TCX_DIRECTIONS:
            raise _bad_spec(spec, "tcx needs IFNAME:ingress or IFNAME:egress")
        return AttachPoint("tcx", ifname, direction)
    if kind == "cgroup":
        if not rest:
            raise _bad_spec(spec, "a cgroup point needs the cgroup v2 directory")
        return AttachPoint("cgroup", rest)
    if kind == "perf_event":
        return AttachPoint("perf_event", offset=perf_freq(rest or str(DEFAULT_PERF_FREQ), spec))
    return AttachPoint("socket", rest)


def usdt_point(text: str, spec: str = "") -> AttachPoint:
    """A USDT point from ``PATH:PROVIDER:NAME``."""
    try:
        path, provider, name = split_target(text)
    except ValueError:
        raise _bad_spec(spec or f"usdt:{text}", "a USDT probe needs PATH:PROVIDER:NAME") from None
    return AttachPoint("usdt", path, f"{provider}:{name}")


def split_target(text: str) -> tuple[str, str, str]:
    """``PATH:PROVIDER:NAME`` -> (path, provider, name); ValueError if a part is missing
    (the path has no ``:``, as in libbpf's ``usdt/PATH:PROVIDER:NAME``)."""
    path, _, rest = text.partition(":")
    provider, _, name = rest.partition(":")
    if not path or not provider or not name or ":" in name:
        raise ValueError(text)
    return path, provider, name


def xdp_point(ifname: str, mode: str = "", spec: str = "") -> AttachPoint:
    """An XDP point on ``ifname``; ``mode`` is ``generic``, ``native`` or "" (kernel's choice)."""
    mode = {"skb": "generic", "drv": "native"}.get(mode, mode)
    if mode not in XDP_MODES:
        raise _bad_spec(
            spec or f"xdp:{ifname}:{mode}", f"XDP mode {mode!r} is not generic or native"
        )
    return AttachPoint("xdp", ifname, mode)


def perf_freq(text: str, spec: str = "") -> int:
    """A sampling frequency in Hz (1 .. 100000)."""
    try:
        freq = int(text, 0)
    except ValueError:
        raise _bad_spec(spec or text, f"frequency {text!r} is not a number") from None
    if not 1 <= freq <= 100_000:
        raise _bad_spec(spec or text, f"frequency {freq} Hz is outside 1..100000")
    return freq


@dataclass(frozen=True, slots=True)
class Where:
    """What ``run`` was told about places a section name cannot say: the interface
    (``--ifname``) and XDP mode, the cgroup (``--cgroup``), the sampling frequency."""

    ifname: str = ""
    xdp_mode: str = ""
    cgroup: str = ""
    freq: int = DEFAULT_PERF_FREQ


def from_program(program: ProgramSpec, where: Where | None = None) -> AttachPoint | None:
    """The attach point a program's section names, or None if it names none.

    Read from what the object reader resolved (``kind`` and ``attach_target``, from
    libbpf's table in :mod:`bpfkit.obj.sections`): ``kprobe/FUNC[+OFF]``,
    ``kretprobe/FUNC``, ``ksyscall/NAME``, ``kretsyscall/NAME``, ``tracepoint/CAT/NAME``
    and ``tp/CAT/NAME``, ``raw_tracepoint/NAME`` and ``raw_tp/NAME`` (and ``.w``),
    ``uprobe/PATH:SYMBOL`` and ``uretprobe/PATH:SYMBOL`` (and ``.s``),
    ``usdt/PATH:PROVIDER:NAME`` (and ``.s``), and any socket
    filter (``socket``, ``socket/1``, ``socket1``).
    """
    kind, rest = program.kind.removesuffix(".s").removesuffix(".w"), program.attach_target
    where = where or Where()
    if not kind:  # typed by --type, not by its section: the type says what it can
        kind = _BY_TYPE.get(program.prog_type, "")
    if kind == "socket":
        return AttachPoint("socket", where.ifname)
    if kind in ("xdp", "xdp.frags"):
        return xdp_point(where.ifname, where.xdp_mode) if where.ifname else None
    if kind in ("tc/ingress", "tc/egress", "tcx/ingress", "tcx/egress"):
        direction = kind.partition("/")[2]
        return AttachPoint("tcx", where.ifname, direction) if where.ifname else None
    if cgroup_hook(program) is not None:
        if not where.cgroup:
            return None
        return AttachPoint("cgroup", where.cgroup, attach_type=program.expected_attach_type)
    if kind == "perf_event":
        return AttachPoint("perf_event", offset=where.freq)
    if kind in TRACING_KINDS:
        return AttachPoint(kind, rest) if rest else None
    if not rest:
        return None
    if kind in ("kprobe", "kretprobe"):
        func, _, off = rest.partition("+")
        try:
            return AttachPoint(kind, func, offset=int(off, 0) if off else 0)
        except ValueError:
            return None
    if kind in ("ksyscall", "kretsyscall"):
        probe = "kprobe" if kind == "ksyscall" else "kretprobe"
        return AttachPoint(probe, f"sys_{rest}")
    if kind in ("tracepoint", "tp"):
        category, _, name = rest.partition("/")
        return AttachPoint("tracepoint", f"{category}:{name}") if name else None
    if kind in ("raw_tracepoint", "raw_tp"):
        return AttachPoint("raw_tracepoint", rest)
    if kind in ("uprobe", "uretprobe"):
        path, _, symbol = rest.rpartition(":")
        if not path or not symbol:
            return None
        return AttachPoint(kind, path, symbol)
    if kind == "usdt":
        try:
            path, provider, name = split_target(rest)
        except ValueError:
            return None
        return AttachPoint("usdt", path, f"{provider}:{name}")
    return None


# What a program given only a type (--type) attaches as.
_BY_TYPE = {
    int(ProgType.SOCKET_FILTER): "socket",
    int(ProgType.XDP): "xdp",
    int(ProgType.PERF_EVENT): "perf_event",
}


def cgroup_hook(program: ProgramSpec) -> int | None:
    """The cgroup attach type a program's section names (``cgroup_skb/ingress`` ->
    ``BPF_CGROUP_INET_INGRESS``), or None for a section naming no cgroup hook."""
    kind = program.kind
    if kind == "cgroup/skb" or not kind.startswith(("cgroup/", "cgroup_skb/", "sockops")):
        return None
    return program.expected_attach_type


def pmu_type(name: str) -> int | None:
    """The perf PMU type of ``kprobe``/``uprobe`` (sysfs), or None if the kernel has none."""
    try:
        with open(f"/sys/bus/event_source/devices/{name}/type") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def retprobe_bit(name: str) -> int:
    """The config bit meaning "return probe" for PMU ``name`` (``format/retprobe``)."""
    try:
        with open(f"/sys/bus/event_source/devices/{name}/format/retprobe") as f:
            text = f.read()
        return 1 << int(text.strip().split(":")[1])
    except (OSError, ValueError, IndexError):
        return 1  # config:0 on every kernel that has the PMU


def has_kprobes() -> bool:
    """True if this kernel can place kprobes (the kprobe PMU, or tracefs kprobe_events)."""
    if pmu_type("kprobe") is not None:
        return True
    try:
        return (tracefs.root() / "kprobe_events").exists()
    except KernelError:
        return False


@dataclass(frozen=True, slots=True)
class Plan:
    """A point adapted to this kernel: where to attach, the type to load the program
    as, and a one-line note when bpfkit changed the point (None otherwise)."""

    point: AttachPoint
    prog_type: ProgType
    note: str | None = None


def plan(point: AttachPoint, *, kprobes: bool | None = None) -> Plan:
    """Adapt ``point`` to the running kernel (``kprobes`` overrides the probe)."""
    if point.kind not in ("kprobe", "kretprobe"):
        return Plan(point, point.prog_type)
    from bpfkit.kernel import symbols  # kallsyms: for kprobes only

    if kprobes is None:
        kprobes = has_kprobes()
    if kprobes:
        resolved = symbols.resolve_kernel_function(point.target)
        note = None
        if resolved != point.target:
            note = f"{point.kind} {point.target}: this kernel calls it {resolved}"
        return Plan(replace(point, target=resolved), point.prog_type, note)
    syscall = symbols.syscall_name(point.target)
    if syscall is None or point.offset:
        raise KernelError(
            f"cannot attach {point}: this kernel has no kprobes (built without "
            f"CONFIG_KPROBES); attach to a tracepoint instead (--attach "
            f"tracepoint:CATEGORY:NAME, listed in {_events_dir()})"
        )
    direction = "enter" if point.kind == "kprobe" else "exit"
    event = f"sys_{direction}_{syscall}"
    tracefs.event_dir("syscalls", event)  # raises if this kernel lacks it
    target = AttachPoint("tracepoint", f"syscalls:{event}")
    note = f"{point} -> tracepoint:syscalls:{event} (this kernel has no kprobes)"
    return Plan(target, ProgType.TRACEPOINT, note)


def _events_dir() -> str:
    try:
        return str(tracefs.root() / "events")
    except KernelError:
        return "tracefs events/"


def default_interface() -> str:
    """The loopback interface name (for socket filters with no interface given)."""
    return "lo" if os.path.exists("/sys/class/net/lo") else ""
