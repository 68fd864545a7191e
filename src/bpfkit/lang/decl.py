"""What a program file declares at module level: program sections, maps and globals.

Program sections are decorators that mark a function and name its section::

    @tracepoint("syscalls/sys_enter_openat")      # tracepoint/syscalls/sys_enter_openat
    @raw_tracepoint("sched_switch")               # raw_tracepoint/sched_switch
    @kprobe("do_sys_openat2") / @kretprobe(...)   # kprobe/... (needs a kernel with kprobes)
    @uprobe("/bin/bash:readline") / @uretprobe   # uprobe/PATH:SYMBOL
    @usdt("/path:provider:name")                  # usdt/... (loaded as a kprobe program)
    @xdp  @socket_filter  @tc  @perf_event        # xdp, socket, tc, perf_event
    @cgroup_skb("ingress")                        # cgroup_skb/ingress

Maps are module-level values: ``counts = HashMap[u32, u64](max_entries=1024)``.
Globals are module-level annotated assignments: ``total: u64 = 0`` (``.data``, or ``.bss``
when 0) and ``limit: Const[u32] = 5`` (``.rodata``).
"""

from __future__ import annotations

from bpfkit.lang.types import Type, bpf_type
from bpfkit.uapi import MapType

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: a program file's import stays cheap
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])


class Section:
    """A decorated function's program: the kind (decorator name) and the ELF section
    (a value: compared by them)."""

    __slots__ = ("kind", "section", "target")

    def __init__(self, kind: str, section: str, target: str = "") -> None:
        self.kind, self.section = kind, section
        self.target = target  # tracepoint "cat/name", raw tracepoint name, probe target

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "target"):
            raise AttributeError(f"Section is immutable: cannot set {name!r}")
        object.__setattr__(self, name, value)

    def _key(self) -> tuple[str, str, str]:
        return (self.kind, self.section, self.target)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Section) and other._key() == self._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:  # also part of the compile cache's key (bpfkit.lang.cache)
        return f"Section(kind={self.kind!r}, section={self.section!r}, target={self.target!r})"


def _mark(kind: str, section: str, target: str = "") -> Callable[[F], F]:
    def deco(fn: F) -> F:
        fn.__bpf_section__ = Section(kind, section, target)  # type: ignore[attr-defined]
        return fn

    return deco


def _named(kind: str, prefix: str, what: str) -> Callable[[str], Callable[[F], F]]:
    def factory(target: str) -> Callable[[F], F]:
        if not isinstance(target, str) or not target:
            raise TypeError(f"@{kind}(...) needs the {what} as a string")
        return _mark(kind, f"{prefix}/{target}", target)

    factory.__name__ = kind
    factory.__doc__ = f"A {kind} program on ``{what}`` (section ``{prefix}/...``)."
    return factory


tracepoint = _named("tracepoint", "tracepoint", '"category/name"')
raw_tracepoint = _named("raw_tracepoint", "raw_tracepoint", "the tracepoint name")
kprobe = _named("kprobe", "kprobe", "the kernel function")
kretprobe = _named("kretprobe", "kretprobe", "the kernel function")
uprobe = _named("uprobe", "uprobe", '"/path/to/binary:symbol"')
uretprobe = _named("uretprobe", "uretprobe", '"/path/to/binary:symbol"')
usdt = _named("usdt", "usdt", '"/path:provider:name"')
cgroup_skb = _named("cgroup_skb", "cgroup_skb", '"ingress" or "egress"')


def xdp(fn: F) -> F:
    """An XDP program (section ``xdp``); its context has ``data``/``data_end``."""
    return _mark("xdp", "xdp")(fn)


def socket_filter(fn: F) -> F:
    """A socket filter (section ``socket``): returns how many bytes to keep."""
    return _mark("socket_filter", "socket")(fn)


def tc(fn: F) -> F:
    """A tc classifier (section ``tc``)."""
    return _mark("tc", "tc")(fn)


def perf_event(fn: F) -> F:
    """A perf event program (section ``perf_event``)."""
    return _mark("perf_event", "perf_event")(fn)


def section_of(obj: Any) -> Section | None:
    """The section a decorated function is marked with, or None."""
    s = getattr(obj, "__bpf_section__", None)
    return s if isinstance(s, Section) else None


# --- maps -------------------------------------------------------------------------------


class MapDecl:
    """A map declared at module level; the compiler gives it the variable's name."""

    map_type: MapType = MapType.HASH
    keyed = True  # has key and value types
    default_entries = 0

    def __init__(
        self,
        key: Type | None = None,
        value: Type | None = None,
        max_entries: int | None = None,
        flags: int = 0,
    ) -> None:
        entries = self.default_entries if max_entries is None else max_entries
        if not isinstance(entries, int) or not 0 <= entries <= 0xFFFFFFFF:
            raise ValueError(f"max_entries must be an int from 0 to 2**32-1, not {entries!r}")
        if entries == 0 and self.map_type not in (MapType.PERF_EVENT_ARRAY,):
            raise ValueError(f"{type(self).__name__} needs max_entries=N (N > 0)")
        if not isinstance(flags, int) or not 0 <= flags <= 0xFFFFFFFF:
            raise ValueError(f"flags must be an int from 0 to 2**32-1, not {flags!r}")
        self.key, self.value, self.max_entries, self.flags = key, value, entries, flags

    def __class_getitem__(cls, params: Any) -> Callable[..., MapDecl]:
        if not cls.keyed:
            raise TypeError(f"{cls.__name__} takes no [key, value] types")
        if not isinstance(params, tuple) or len(params) != 2:
            raise TypeError(f"{cls.__name__}[K, V] takes a key type and a value type")
        key, value = (bpf_type(p) for p in params)
        if key is None or value is None:
            raise TypeError(f"{cls.__name__}[K, V]: K and V must be BPF types (u32, a @struct)")

        def make(max_entries: int | None = None, flags: int = 0) -> MapDecl:
            return cls(key, value, max_entries, flags)

        return make

    def _outside(self, *args: Any) -> Any:
        raise TypeError(
            "BPF maps are used by BPF programs; from Python, load the module (load(...)) "
            "and use program.maps[name]"
        )

    __getitem__ = __setitem__ = __delitem__ = __contains__ = _outside


class HashMap(MapDecl):
    """``HashMap[K, V](max_entries=N)``: BPF_MAP_TYPE_HASH."""

    map_type = MapType.HASH


class Array(MapDecl):
    """``Array[u32, V](max_entries=N)``: BPF_MAP_TYPE_ARRAY (every index exists)."""

    map_type = MapType.ARRAY


class PerCpuArray(MapDecl):
    """BPF_MAP_TYPE_PERCPU_ARRAY."""

    map_type = MapType.PERCPU_ARRAY


class PerCpuHash(MapDecl):
    """BPF_MAP_TYPE_PERCPU_HASH."""

    map_type = MapType.PERCPU_HASH


class LruHash(MapDecl):
    """BPF_MAP_TYPE_LRU_HASH."""

    map_type = MapType.LRU_HASH


class ProgArray(MapDecl):
    """``ProgArray(max_entries=N)``: programs for ``progs.tail_call(ctx, i)``."""

    map_type = MapType.PROG_ARRAY
    keyed = False

    def __init__(self, max_entries: int | None = None, flags: int = 0) -> None:
        from bpfkit.lang.types import u32

        super().__init__(u32, u32, max_entries, flags)


class RingBuf(MapDecl):
    """``RingBuf(max_entries=BYTES)`` (a power of 2, multiple of the page size):
    ``events.output(record)`` sends a struct instance to user space."""

    map_type = MapType.RINGBUF
    keyed = False

    def __init__(self, max_entries: int = 1 << 16, flags: int = 0) -> None:
        if max_entries < 4096 or max_entries & (max_entries - 1):
            raise ValueError(f"RingBuf max_entries must be a power of 2 >= 4096, not {max_entries}")
        super().__init__(None, None, max_entries, flags)


class PerfEventArray(MapDecl):
    """``PerfEventArray()``: ``events.output(record)`` sends through the perf buffer of
    the current CPU."""

    map_type = MapType.PERF_EVENT_ARRAY
    keyed = False

    def __init__(self, max_entries: int = 0, flags: int = 0) -> None:
        import os

        from bpfkit.lang.types import u32

        # One slot per CPU (libbpf sizes it at load time; the VM needs a number).
        super().__init__(u32, u32, max_entries or os.cpu_count() or 1, flags)


class Const:
    """``name: Const[u32] = 5``: a global in ``.rodata`` (user space may set it before
    loading; programs only read it)."""

    def __class_getitem__(cls, t: Any) -> Any:
        return ("const", t)


MAP_CLASSES = (HashMap, Array, PerCpuArray, PerCpuHash, LruHash, ProgArray, RingBuf, PerfEventArray)
