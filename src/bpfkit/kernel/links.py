"""Attachments: :func:`attach` a loaded program to an :class:`AttachPoint`; a :class:`Link`
detaches it on ``close()`` (context manager, finalizer as a safety net).

How each kind attaches:

- tracepoint: the id from tracefs, ``perf_event_open(PERF_TYPE_TRACEPOINT)``;
- kprobe/kretprobe: the kprobe PMU (``/sys/bus/event_source/devices/kprobe/type``, 4.17+),
  else a tracefs ``kprobe_events`` entry (removed on close) opened as a tracepoint;
- uprobe/uretprobe: the uprobe PMU with the binary's path and the symbol's file offset,
  else a tracefs ``uprobe_events`` entry;
- usdt: a uprobe at each site of the probe (:mod:`bpfkit.kernel.usdt` finds them and
  writes the argument specs into the program's usdt.bpf.h maps), with the semaphore's
  file offset as ``ref_ctr_offset`` and a link per site whose BPF cookie is the spec id;
- on those perf events, a BPF link (``BPF_LINK_CREATE``, attach type ``BPF_PERF_EVENT``,
  5.15+) where the kernel offers it, else ``PERF_EVENT_IOC_SET_BPF`` + ``ENABLE``;
- raw tracepoint: ``BPF_RAW_TRACEPOINT_OPEN`` (4.17+);
- XDP on an interface: ``BPF_LINK_CREATE`` (``BPF_XDP``, the interface index, flags
  ``XDP_FLAGS_SKB_MODE`` for generic or ``XDP_FLAGS_DRV_MODE`` for native; none lets the
  kernel choose);
- tcx ingress/egress: ``BPF_LINK_CREATE`` (``BPF_TCX_INGRESS``/``EGRESS``, 6.6+);
- cgroup programs: ``BPF_LINK_CREATE`` on the cgroup v2 directory's fd, with the
  program's attach type (``BPF_CGROUP_INET_INGRESS``, ``..._SOCK_CREATE``, ...);
- perf_event: one CPU-clock sampling event per online CPU (``PERF_TYPE_SOFTWARE``,
  ``PERF_COUNT_SW_CPU_CLOCK``, ``freq``) with a perf link on each;
- tp_btf, fentry, fexit, lsm: ``BPF_LINK_CREATE`` on the program alone (its target was
  fixed at load by its BTF id);
- socket filter: ``SO_ATTACH_BPF`` on a socket you give, or on a raw ``AF_PACKET`` socket
  bound to an interface (the link owns that socket).

Closing goes in reverse: the link, then the perf event, then the tracefs entry (which the
kernel refuses to remove while an event uses it).

Detaching from a tracepoint through a perf event takes the kernel ~60 ms on this machine
(6.18, 2 CPUs): closing the last perf event of a tracepoint waits for RCU grace periods
(``perf_trace_event_unreg`` -> ``tracepoint_synchronize_unregister``), and with a BPF link
releasing the program waits too.  Measured (``bench/load.py``): BPF link ~60 ms, the
``SET_BPF`` ioctl ~65-70 ms, in either closing order and with ``PERF_EVENT_IOC_DISABLE``
first; a raw tracepoint link ~0.2 ms, but a tracepoint program cannot attach to a raw
tracepoint.  A process exiting without closing pays the same wait in ``exit()``, so there is
no faster way to detach that still releases everything before returning.

Step by step (what :class:`bpfkit.kernel.session.Session` does in one call)::

    from bpfkit.obj.reader import read_object
    from bpfkit.kernel.attach import parse_spec, plan
    from bpfkit.kernel.collection import load_collection
    from bpfkit.kernel.links import attach
    from bpfkit.kernel.tracefs import TraceInstance
    from bpfkit.events.trace_pipe import stream

    spec = read_object("examples/hello/hello.o")
    where = plan(parse_spec("kprobe:SyS_clone"))      # tracepoint here: no kprobes
    with (
        load_collection(spec, prog_types={"kprobe__sys_clone": where.prog_type}) as coll,
        TraceInstance() as trace,
        attach(coll.programs["kprobe__sys_clone"], where.point),
    ):
        for line in stream(trace.pipe, count=3, duration=10):
            print(line.message)                         # "hello from rust"
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import weakref
from collections.abc import Mapping

from bpfkit.errors import KernelError
from bpfkit.kernel import tracefs
from bpfkit.kernel.attach import XDP_MODES, AttachPoint, pmu_type, retprobe_bit
from bpfkit.syscalls import Cmd, Fd, attrs, bpf_errno
from bpfkit.syscalls import perf as perfsys
from bpfkit.syscalls.fd import Closing
from bpfkit.uapi import AttachType

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:  # imported where a socket filter attaches: most runs need no socket
    import socket
    from typing import Any, Protocol

    class HasFd(Protocol):
        """Anything with a program fd: a Program of :mod:`bpfkit.kernel.program`."""

        @property
        def fd(self) -> int | Fd: ...

    ProgRef = int | Fd | HasFd

SO_ATTACH_BPF = 50  # asm-generic/socket.h
SO_DETACH_BPF = 27  # == SO_DETACH_FILTER
ETH_P_ALL = 0x0003
ENOTSUPP = 524

TRACING_ATTACH = {
    "tp_btf": AttachType.TRACE_RAW_TP,
    "fentry": AttachType.TRACE_FENTRY,
    "fexit": AttachType.TRACE_FEXIT,
    "lsm": AttachType.LSM_MAC,
}

# Whether BPF_LINK_CREATE works on perf events here (None: not tried yet).
_perf_link_supported: bool | None = None


def _prog_fd(prog: ProgRef) -> int:
    if isinstance(prog, int):
        return prog
    if isinstance(prog, Fd):
        return prog.fd
    fd = prog.fd
    return fd.fd if isinstance(fd, Fd) else int(fd)


def _close_all(resources: list[object]) -> None:
    """Close ``resources`` in reverse order, each even if another fails."""
    while resources:
        res = resources.pop()
        try:
            if isinstance(res, tuple):  # (perf Fd, "disable"): turn the event off first
                perf_fd = res[0]
                if not perf_fd.closed:
                    try:
                        perfsys.disable(perf_fd.fd)
                    except KernelError:
                        pass
                    perf_fd.close()
            elif isinstance(res, _SocketDetach):
                res.detach()
            else:
                res.close()  # type: ignore[attr-defined]
        except OSError:
            pass


class _SocketDetach:
    """Detach a program from a socket we do not own (SO_DETACH_BPF)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def detach(self) -> None:
        import socket

        if self.sock.fileno() >= 0:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_BPF, 0)
            except OSError:
                pass  # nothing attached any more


class Link(Closing):
    """One attachment; ``close()`` detaches it and releases what it opened (idempotent)."""

    def __init__(self, point: AttachPoint, resources: list[object], how: str) -> None:
        self.point = point
        self.how = how  # "bpf_link", "perf_ioctl", "raw_tracepoint", "socket"
        self.socket: socket.socket | None = None
        self._resources = resources
        self._finalizer = weakref.finalize(self, _close_all, resources)

    @property
    def closed(self) -> bool:
        """True once detached."""
        return not self._finalizer.alive

    def close(self) -> None:
        """Detach (again is a no-op)."""
        self._finalizer()

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.how
        return f"Link({self.point}, {state})"


def attach(
    prog: ProgRef,
    point: AttachPoint,
    *,
    sock: socket.socket | None = None,
    maps: Mapping[str, Any] | None = None,
    obj: Any = None,
) -> Link:
    """Attach ``prog`` (a program fd or object with ``.fd``) at ``point``.

    For ``socket`` points, ``sock`` is the socket to filter; without it a raw packet
    socket is opened on the interface ``point.target`` (``lo`` if empty) and kept in
    ``link.socket``.  For ``usdt`` points, ``maps`` are the program's maps (a
    Collection's ``maps``: usdt.bpf.h's are filled) and ``obj`` its ObjectSpec (whose
    BTF gives their layout); without them the program reads no USDT arguments.
    Raises :class:`~bpfkit.errors.KernelError` saying what failed.
    """
    prog_fd = _prog_fd(prog)
    resources: list[object] = []
    try:
        if point.kind == "socket":
            link = _attach_socket(prog_fd, point, sock, resources)
        elif point.kind == "raw_tracepoint":
            link = _attach_raw_tracepoint(prog_fd, point, resources)
        elif point.kind in ("xdp", "tcx"):
            link = _attach_interface(prog_fd, point, resources)
        elif point.kind == "cgroup":
            link = _attach_cgroup(prog_fd, point, resources)
        elif point.kind == "perf_event":
            link = _attach_cpu_clock(prog_fd, point, resources)
        elif point.kind in TRACING_ATTACH:
            link = _attach_tracing(prog_fd, point, resources)
        elif point.kind == "usdt":
            link = _attach_usdt(prog_fd, point, maps, obj, resources)
        else:
            perf_fd = _open_perf_event(point, resources)
            link = _attach_perf_event(prog_fd, perf_fd, point, resources)
    except BaseException:
        _close_all(resources)
        raise
    return link


def _open_perf_event(point: AttachPoint, resources: list[object]) -> Fd:
    """Open the perf event of a tracepoint/kprobe/uprobe point (owned by ``resources``)."""
    keep: list[object] = []
    if point.kind == "tracepoint":
        category, _, name = point.target.partition(":")
        attr = perfsys.tracepoint_attr(tracefs.event_id(category, name))
    elif point.kind in ("kprobe", "kretprobe"):
        retprobe = point.kind == "kretprobe"
        pmu = pmu_type("kprobe")
        if pmu is not None:
            attr = perfsys.probe_pmu_attr(
                pmu, name=point.target.encode(), offset=point.offset, retprobe=False, keep=keep
            )
            attr.config |= retprobe_bit("kprobe") if retprobe else 0
        else:
            where = point.target + (f"+{point.offset}" if point.offset else "")
            entry = tracefs.ProbeEntry("kprobe", where, retprobe=retprobe)
            resources.append(entry)
            attr = perfsys.tracepoint_attr(entry.event_id)
    elif point.kind in ("uprobe", "uretprobe"):
        path = os.path.abspath(point.target)
        from bpfkit.kernel import symbols  # ELF symbols: for uprobes only

        located = symbols.resolve_user_symbol(path, point.symbol)
        retprobe = point.kind == "uretprobe"
        return _open_uprobe(path, located.offset, str(point), resources, retprobe=retprobe)
    else:
        raise KernelError(f"cannot attach to {point}: not a perf event attach point")
    fd = Fd(perfsys.perf_event_open(attr, what=str(point)), "perf event")
    del keep  # the name buffers had to live until perf_event_open returned
    resources.append(fd)
    return fd


def _open_uprobe(
    path: str,
    offset: int,
    what: str,
    resources: list[object],
    *,
    retprobe: bool = False,
    ref_ctr_offset: int = 0,
) -> Fd:
    """A uprobe perf event at file ``offset`` of ``path`` (owned by ``resources``);
    ``ref_ctr_offset``: the file offset of a USDT semaphore the kernel counts (0: none)."""
    keep: list[object] = []
    pmu = pmu_type("uprobe")
    if pmu is not None:
        attr = perfsys.probe_pmu_attr(
            pmu, name=path.encode(), offset=offset, retprobe=False, keep=keep
        )
        flags = retprobe_bit("uprobe") if retprobe else 0
        attr.config = flags | ref_ctr_offset << perfsys.REF_CTR_OFFSET_SHIFT
    else:
        where = f"{path}:{offset:#x}" + (f"({ref_ctr_offset:#x})" if ref_ctr_offset else "")
        entry = tracefs.ProbeEntry("uprobe", where, retprobe=retprobe)
        resources.append(entry)
        attr = perfsys.tracepoint_attr(entry.event_id)
    fd = Fd(perfsys.perf_event_open(attr, what=what), "perf event")
    del keep  # the name buffer had to live until perf_event_open returned
    resources.append(fd)
    return fd


def _attach_usdt(
    prog_fd: int,
    point: AttachPoint,
    maps: Mapping[str, Any] | None,
    obj: Any,
    resources: list[object],
) -> Link:
    from bpfkit.kernel import usdt

    path = os.path.abspath(point.target)
    provider, _, name = point.symbol.partition(":")
    probes, specs = usdt.place(path, provider, name, maps, obj=obj)
    resources.append(specs)
    how = "bpf_link"
    for probe in probes:
        what = f"{point} at {probe.address:#x}"
        perf_fd = _open_uprobe(
            path, probe.offset, what, resources, ref_ctr_offset=probe.ref_ctr_offset
        )
        how = _perf_link(prog_fd, perf_fd, point, resources, cookie=probe.cookie)
    return Link(point, resources, how)


def _attach_perf_event(
    prog_fd: int, perf_fd: Fd, point: AttachPoint, resources: list[object]
) -> Link:
    return Link(point, resources, _perf_link(prog_fd, perf_fd, point, resources))


def _perf_link(
    prog_fd: int, perf_fd: Fd, point: AttachPoint, resources: list[object], cookie: int = 0
) -> str:
    """Run the program on the perf event: a BPF link (with ``cookie``) where the kernel
    has them, else the ioctl (no cookie).  Returns how."""
    global _perf_link_supported
    probing = False
    if _perf_link_supported is not False:
        attr = attrs.LinkCreateAttr(
            prog_fd=prog_fd, target_fd=perf_fd.fd, attach_type=AttachType.PERF_EVENT
        )
        attr.extra.bpf_cookie = cookie
        fd, err = bpf_errno(Cmd.LINK_CREATE, attr)
        if fd >= 0:
            _perf_link_supported = True
            resources.append(Fd(fd, "bpf link"))
            return "bpf_link"
        if err not in (_errno.EINVAL, _errno.EOPNOTSUPP, ENOTSUPP) or _perf_link_supported:
            raise KernelError(
                f"attaching to {point} failed (BPF_LINK_CREATE): {_link_cause(err, point)}",
                err,
            )
        # EINVAL: a kernel before 5.15 (no perf links), or a program that does not fit
        # this event.  The ioctl tells which: only its success proves links are missing.
        probing = True
    # The ioctl path: the event must be disabled before its fd is closed.
    resources[resources.index(perf_fd)] = (perf_fd, "disable")
    perfsys.set_bpf(perf_fd.fd, prog_fd)
    perfsys.enable(perf_fd.fd)
    if probing:
        _perf_link_supported = False
    return "perf_ioctl"


def _link_cause(err: int, point: AttachPoint) -> str:
    if err == _errno.EPERM:
        return "not permitted (run as root)"
    if err == _errno.EEXIST:
        return "a program is already attached there"
    if err == _errno.EINVAL:
        return f"the program's type does not fit {point.kind}"
    return os.strerror(err)


def _attach_raw_tracepoint(prog_fd: int, point: AttachPoint, resources: list[object]) -> Link:
    name = ctypes.create_string_buffer(point.target.encode())
    attr = attrs.RawTracepointAttr(name=ctypes.addressof(name), prog_fd=prog_fd)
    fd, err = bpf_errno(Cmd.RAW_TRACEPOINT_OPEN, attr)
    if fd < 0:
        cause = os.strerror(err)
        if err == _errno.ENOENT:
            cause = f"no raw tracepoint named {point.target!r} in this kernel"
        elif err == _errno.EINVAL:
            cause = "the program is not a raw tracepoint program"
        raise KernelError(f"attaching to {point} failed: {cause}", err)
    resources.append(Fd(fd, "raw tracepoint link"))
    return Link(point, resources, "raw_tracepoint")


def _attach_socket(
    prog_fd: int, point: AttachPoint, sock: socket.socket | None, resources: list[object]
) -> Link:
    import socket

    owned = sock is None
    if sock is None:
        ifname = point.target or "lo"
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except OSError as e:
            raise KernelError(
                f"cannot open a raw packet socket: {e.strerror} (needs CAP_NET_RAW)", e.errno
            ) from None
        resources.append(sock)
        try:
            sock.bind((ifname, 0))
        except OSError as e:
            raise KernelError(f"no network interface {ifname!r}: {e.strerror}", e.errno) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, prog_fd)
    except OSError as e:
        cause = e.strerror
        if e.errno == _errno.EINVAL:
            cause = "the program is not a socket filter"
        raise KernelError(f"SO_ATTACH_BPF on {point} failed: {cause}", e.errno) from None
    if not owned:
        resources.append(_SocketDetach(sock))
    link = Link(point, resources, "socket")
    link.socket = sock
    return link


def _link_create(
    attr: attrs.LinkCreateAttr, point: AttachPoint, resources: list[object], how: str
) -> Link:
    fd, err = bpf_errno(Cmd.LINK_CREATE, attr)
    if fd < 0:
        raise KernelError(
            f"attaching to {point} failed (BPF_LINK_CREATE): {_link_cause(err, point)}", err
        )
    resources.append(Fd(fd, f"{point.kind} link"))
    return Link(point, resources, how)


def _ifindex(ifname: str, point: AttachPoint) -> int:
    import socket

    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        raise KernelError(
            f"cannot attach to {point}: no network interface {ifname!r} (list them with: ip link)",
            _errno.ENODEV,
        ) from None


def _attach_interface(prog_fd: int, point: AttachPoint, resources: list[object]) -> Link:
    ifindex = _ifindex(point.target, point)
    if point.kind == "xdp":
        attach_type, flags = AttachType.XDP, XDP_MODES[point.symbol]
    else:
        attach_type = AttachType.TCX_INGRESS if point.symbol == "ingress" else AttachType.TCX_EGRESS
        flags = 0
    attr = attrs.LinkCreateAttr(
        prog_fd=prog_fd, target_fd=ifindex, attach_type=attach_type, flags=flags
    )
    return _link_create(attr, point, resources, "bpf_link")


def _attach_cgroup(prog_fd: int, point: AttachPoint, resources: list[object]) -> Link:
    if point.attach_type is None:
        raise KernelError(
            f"cannot attach to {point}: the program's section names no cgroup hook; use a "
            "section that does (cgroup_skb/ingress, cgroup_skb/egress, cgroup/sock_create, "
            "cgroup/connect4, cgroup/sysctl, cgroup/getsockopt, cgroup/dev, ...)"
        )
    try:
        cg = Fd(os.open(point.target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), "cgroup")
    except OSError as e:
        raise KernelError(
            f"cannot attach to {point}: cannot open cgroup directory {point.target!r}: "
            f"{e.strerror} (give a cgroup v2 directory, e.g. /sys/fs/cgroup/NAME)",
            e.errno,
        ) from None
    resources.append(cg)
    attr = attrs.LinkCreateAttr(prog_fd=prog_fd, target_fd=cg.fd, attach_type=point.attach_type)
    fd, err = bpf_errno(Cmd.LINK_CREATE, attr)
    if fd < 0:
        cause = _link_cause(err, point)
        if err == _errno.EBADF:
            root = cgroup2_root()
            cause = f"{point.target} is not a cgroup v2 directory; " + (
                f"cgroup v2 is mounted at {root}: give a directory under it"
                if root
                else "mount cgroup v2 first (mount -t cgroup2 none /sys/fs/cgroup/unified)"
            )
        raise KernelError(f"attaching to {point} failed (BPF_LINK_CREATE): {cause}", err)
    resources.append(Fd(fd, "cgroup link"))
    return Link(point, resources, "bpf_link")


def cgroup2_root() -> str | None:
    """Where cgroup v2 is mounted (``/sys/fs/cgroup`` or, on a hybrid system,
    ``/sys/fs/cgroup/unified``), or None."""
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and fields[2] == "cgroup2":
                    return fields[1]
    except OSError:
        pass
    return None


def _attach_cpu_clock(prog_fd: int, point: AttachPoint, resources: list[object]) -> Link:
    for cpu in sorted(os.sched_getaffinity(0)):
        attr = perfsys.cpu_clock_attr(point.offset)
        fd = Fd(perfsys.perf_event_open(attr, cpu=cpu, what=f"CPU clock on CPU {cpu}"), "perf")
        resources.append(fd)
        link = attrs.LinkCreateAttr(
            prog_fd=prog_fd, target_fd=fd.fd, attach_type=AttachType.PERF_EVENT
        )
        lfd, err = bpf_errno(Cmd.LINK_CREATE, link)
        if lfd < 0:
            raise KernelError(
                f"attaching to {point} on CPU {cpu} failed (BPF_LINK_CREATE): "
                f"{_link_cause(err, point)}",
                err,
            )
        resources.append(Fd(lfd, "perf link"))
    return Link(point, resources, "bpf_link")


def _attach_tracing(prog_fd: int, point: AttachPoint, resources: list[object]) -> Link:
    attr = attrs.LinkCreateAttr(prog_fd=prog_fd, attach_type=TRACING_ATTACH[point.kind])
    return _link_create(attr, point, resources, "bpf_link")
