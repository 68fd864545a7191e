"""The helper table: every kernel helper of the uapi ``enum bpf_func_id``, as data.

Ids and names come from the kernel's BTF, prototypes from libbpf's ``bpf_helper_defs.h``
(see ``scripts/gen_uapi.py`` and :mod:`bpfkit.uapi._generated`).  explain names calls with
it, the VM emulates from it, the verifier checks arguments against it.

Argument *kinds* are a coarse classification inferred from each argument's C type and
name, good enough to print values sensibly and to pick a first verifier rule:

========  ===================================================================
``map``   a map pointer (``void *map``, ``ringbuf``, ...): ``lddw rN, map`` loads it
``ctx``   the program's context (``struct __sk_buff *skb``, ``struct xdp_md *``, ``ctx``)
``ptr``   any other pointer (memory the helper reads or writes)
``size``  an integer that is the byte length of the memory argument just before it
``flags`` an integer of flags (named ``flags``)
``func``  a callback: a BPF function (``callback_fn``)
``scalar`` any other integer
========  ===================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from bpfkit.uapi._generated import HELPER_ROWS

# C types of the context argument, per program type's context struct.
_CTX_TYPES = frozenset(
    {
        "struct __sk_buff *",
        "struct xdp_md *",
        "struct pt_regs *",
        "struct bpf_sock_ops *",
        "struct sk_msg_md *",
        "struct bpf_sysctl *",
        "struct bpf_sock_addr *",
        "struct sk_reuseport_md *",
        "struct bpf_perf_event_data *",
    }
)
_CTX_NAMES = frozenset({"ctx", "skb", "regs", "xdp_md", "skops", "msg", "reuse"})
_MAP_NAMES = frozenset({"map", "ringbuf", "sock_map", "reuseport_array", "stack_map"})
_SIZE_NAMES = frozenset({"size", "len", "bytes", "size_of_buf"})


@dataclass(frozen=True, slots=True)
class HelperArg:
    """One argument of a helper: its name and C type as libbpf declares it."""

    name: str
    ctype: str
    kind: str = "scalar"  # map, ctx, ptr, size, flags, func or scalar (module docstring)

    def __str__(self) -> str:
        sep = "" if self.ctype.endswith("*") else " "
        return f"{self.ctype}{sep}{self.name}"


@dataclass(frozen=True, slots=True)
class Helper:
    """A kernel helper: ``id`` (the call's immediate), name with its ``bpf_`` prefix, prototype."""

    id: int
    name: str
    ret: str
    args: tuple[HelperArg, ...]
    variadic: bool = False
    prototype_known: bool = True  # False when the pinned libbpf has no prototype for the id

    @property
    def prototype(self) -> str:
        """The C prototype, e.g. ``long bpf_trace_printk(const char *fmt, __u32 fmt_size, ...)``."""
        parts = [str(a) for a in self.args] + (["..."] if self.variadic else [])
        sep = "" if self.ret.endswith("*") else " "
        return f"{self.ret}{sep}{self.name}({', '.join(parts) or 'void'})"

    @property
    def short_name(self) -> str:
        """The name without ``bpf_`` (the ``BPF_FUNC_`` suffix)."""
        return self.name.removeprefix("bpf_")

    @property
    def ret_kind(self) -> str:
        """``ptr`` for pointer returns (possibly NULL), ``void`` or ``scalar``."""
        if self.ret.endswith("*"):
            return "ptr"
        return "void" if self.ret == "void" else "scalar"


def arg_kind(name: str, ctype: str, after: str = "") -> str:
    """Classify a helper argument by its C type, name and the kind of the argument before it.

    An integer is a ``size`` only right after a ``ptr`` (``bpf_skb_pull_data(skb, len)``'s
    ``len`` is a scalar: nothing before it is memory of that length).
    """
    pointer = ctype.endswith("*")
    if pointer:
        if name in _MAP_NAMES or ctype == "struct bpf_map *":
            return "map"
        if name.endswith("callback_fn") or name == "callback":
            return "func"
        if ctype in _CTX_TYPES or name in _CTX_NAMES:
            return "ctx"
        return "ptr"
    if name == "flags" or name.endswith("_flags"):
        return "flags"
    if after == "ptr" and (
        name in _SIZE_NAMES or name.endswith(("_size", "_len", "_sz", "len")) or name == "sz"
    ):
        return "size"
    return "scalar"


def _args(raw: tuple[tuple[str, str], ...]) -> tuple[HelperArg, ...]:
    out: list[HelperArg] = []
    for name, ctype in raw:
        out.append(HelperArg(name, ctype, arg_kind(name, ctype, out[-1].kind if out else "")))
    return tuple(out)


HELPERS: tuple[Helper, ...] = tuple(
    Helper(hid, name, ret, _args(args), variadic, known)
    for hid, name, ret, args, variadic, known in HELPER_ROWS
)
"""Every helper id of ``enum bpf_func_id`` (0, ``bpf_unspec``, included), ordered by id."""

_BY_ID = {h.id: h for h in HELPERS}
_BY_NAME = {h.name: h for h in HELPERS}


def by_id(helper_id: int) -> Helper | None:
    """The helper with this id (a call instruction's ``imm``), or ``None``."""
    return _BY_ID.get(helper_id)


def by_name(name: str) -> Helper | None:
    """The helper named ``name``, with or without its ``bpf_`` prefix, or ``None``."""
    return _BY_NAME.get(name) or _BY_NAME.get("bpf_" + name)
