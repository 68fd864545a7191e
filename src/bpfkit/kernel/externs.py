"""Extern symbols of an object, resolved against the running kernel.

API::

    kconfig_layout(btf) -> dict[name, (offset, type_id)], size
    kconfig_bytes(btf, names, weak) -> bytes     # the .kconfig map value
    kernel_btf_ids() -> {(kind, name): id}        # the kernel's BTF names, read once
    kfunc_id(name) -> int | None                 # FUNC id of a kernel function (kfuncs)
    ksym(name) -> Extern | None                  # typed ksym (BTF VAR id) or kallsyms address
    attach_btf_id(section_def_name, target) -> int   # fentry/fexit/tp_btf/lsm/iter targets
    kernel_version_code() -> int                 # KERNEL_VERSION(a, b, c) of uname

As libbpf does: ``__kconfig`` externs (``LINUX_KERNEL_VERSION``, ``CONFIG_*`` from
/proc/config.gz or /boot/config-$(uname -r)) live in a frozen ``.kconfig`` array map;
``__ksym`` functions become kfunc calls by BTF id; typed ``__ksym`` variables become
``lddw`` of a BTF id (src 3), typeless ones their address from /proc/kallsyms.
"""

from __future__ import annotations

import functools
import gzip
import os
import struct
from collections.abc import Iterable, Mapping

from bpfkit.btf import types as T
from bpfkit.btf.btf import Btf
from bpfkit.errors import KernelError, ObjectError
from bpfkit.kernel.features import kernel_version_code
from bpfkit.obj.relocate import Extern

# libbpf's enum libbpf_tristate.
TRI_NO, TRI_YES, TRI_MODULE = 0, 1, 2


@functools.cache
def kernel_config() -> dict[str, str]:
    """``CONFIG_*`` values of the running kernel (empty if no config is readable)."""
    text = ""
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            text = f.read()
    except OSError:
        try:
            with open(f"/boot/config-{os.uname().release}") as f:
                text = f.read()
        except OSError:
            return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            k, _, v = line.partition("=")
            out[k] = v
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            out[line[2:].split()[0]] = "n"
    return out


def _special(name: str) -> str | None:
    if name == "LINUX_KERNEL_VERSION":
        return str(kernel_version_code())
    if name == "LINUX_HAS_BPF_COOKIE":
        return "y"  # Linux >= 5.15; bpfkit targets newer kernels
    if name == "LINUX_HAS_SYSCALL_WRAPPER":
        return "y" if os.uname().machine in ("x86_64", "aarch64", "s390x", "riscv64") else "n"
    return None


def kconfig_layout(btf: Btf) -> tuple[dict[str, tuple[int, int]], int]:
    """Offset and BTF type id of every ``.kconfig`` extern, and the total size."""
    secs = btf.find_all(".kconfig", T.Kind.DATASEC)
    if not secs:
        return {}, 0
    sec = secs[0]
    assert isinstance(sec, T.Datasec)
    layout: dict[str, tuple[int, int]] = {}
    off = 0
    for vi in sec.vars:
        var = btf.type(vi.type)
        if not isinstance(var, T.Var):
            continue
        size = btf.size_of(var.type)
        target = btf.resolve(var.type)
        elem = btf.size_of(target.type) if isinstance(target, T.Array) else size
        align = min(max(elem, 1), 8)
        off = (off + align - 1) // align * align
        layout[var.name] = (off, var.type)
        off += size
    return layout, (off + 7) // 8 * 8 or 8


def _encode(btf: Btf, type_id: int, name: str, raw: str) -> bytes:
    size = btf.size_of(type_id)
    t = btf.resolve(type_id)
    if isinstance(t, T.Array):
        text = raw[1:-1] if raw.startswith('"') and raw.endswith('"') else raw
        data = text.encode()
        if len(data) >= size:
            raise ObjectError(f"kconfig {name}: value {raw!r} does not fit in {size} bytes")
        return data.ljust(size, b"\0")
    tri = {"y": TRI_YES, "n": TRI_NO, "m": TRI_MODULE}
    if isinstance(t, T.Int) and t.encoding & T.INT_CHAR and size == 1 and raw in tri:
        return raw.encode()
    if raw in tri:
        if isinstance(t, T.Int) and t.encoding & T.INT_BOOL and raw == "m":
            raise ObjectError(f"kconfig {name} is a module (m); declare it as enum libbpf_tristate")
        value = tri[raw]
    else:
        try:
            value = int(raw.strip('"'), 0)
        except ValueError:
            raise ObjectError(f"kconfig {name}: value {raw!r} is not a number") from None
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def kconfig_bytes(btf: Btf, names: Iterable[str], weak: Mapping[str, bool]) -> bytes:
    """The ``.kconfig`` map value holding ``names`` (others zero)."""
    layout, size = kconfig_layout(btf)
    buf = bytearray(size)
    config = kernel_config()
    for name in names:
        if name not in layout:
            raise ObjectError(f"extern {name!r} is not in the .kconfig section of the BTF")
        off, type_id = layout[name]
        raw = _special(name) or config.get(name)
        if raw is None:
            if weak.get(name):
                continue
            where = "/proc/config.gz" if os.path.exists("/proc/config.gz") else "the kernel config"
            raise ObjectError(
                f"kconfig extern {name} is not set in {where}; declare it __weak to accept 0"
            )
        data = _encode(btf, type_id, name, raw)
        buf[off : off + len(data)] = data
    return bytes(buf)


VMLINUX_BTF = "/sys/kernel/btf/vmlinux"
_NAMED_KINDS = {T.Kind.FUNC, T.Kind.VAR, T.Kind.TYPEDEF}


@functools.cache
def kernel_btf_ids() -> dict[tuple[int, str], int]:
    """``(kind, name) -> type id`` of the kernel's functions, variables and typedefs.

    Only names are needed here, so the kernel's BTF is walked record by record rather than
    parsed into objects: faster, and nothing large stays alive for the garbage collector.
    """
    from bpfkit.btf.parse import iter_records

    try:
        with open(VMLINUX_BTF, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise KernelError(
            f"{VMLINUX_BTF}: cannot read the kernel's BTF ({e.strerror or e}); "
            "this needs a kernel built with CONFIG_DEBUG_INFO_BTF=y"
        ) from e
    if len(raw) < 24 or raw[:2] != b"\x9f\xeb":
        raise KernelError(f"{VMLINUX_BTF}: not little-endian BTF")
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<IIIII", raw, 4)
    t0, s0 = hdr_len + type_off, hdr_len + str_off
    want = {int(k) for k in _NAMED_KINDS}
    out: dict[tuple[int, str], int] = {}
    for type_id, (_, _, name_off, info) in enumerate(iter_records(raw, t0, type_len), 1):
        kind = (info >> 24) & 0x1F
        if kind in want and name_off:
            stop = raw.index(b"\0", s0 + name_off)
            out.setdefault((kind, raw[s0 + name_off : stop].decode()), type_id)
    return out


def _kernel_id(kind: T.Kind, name: str) -> int | None:
    return kernel_btf_ids().get((int(kind), name))


def kfunc_id(name: str) -> int | None:
    """The BTF id of kernel function ``name`` (a kfunc), or None."""
    return _kernel_id(T.Kind.FUNC, name)


def _kallsyms() -> dict[str, int]:
    from bpfkit.kernel.symbols import kallsyms

    try:
        return kallsyms().addresses
    except KernelError:
        return {}


def ksym(name: str, typed: bool) -> Extern | None:
    """A ``__ksym`` variable: its BTF id (typed) or its address (typeless), or None."""
    if typed:
        var_id = _kernel_id(T.Kind.VAR, name)
        return Extern("btf_id", var_id) if var_id is not None else None
    addr = _kallsyms().get(name)
    if addr is None:
        return None
    if addr == 0:
        raise KernelError(
            f"/proc/kallsyms hides the address of {name} (kernel.kptr_restrict): run as root"
        )
    return Extern("addr", addr)


# Where fentry/fexit/tp_btf/lsm/iter programs attach, as libbpf finds it in kernel BTF.
_BTF_TARGET = {
    "tp_btf": ("btf_trace_", T.Kind.TYPEDEF),
    "lsm": ("bpf_lsm_", T.Kind.FUNC),
    "lsm.s": ("bpf_lsm_", T.Kind.FUNC),
    "lsm_cgroup": ("bpf_lsm_", T.Kind.FUNC),
    "iter": ("bpf_iter_", T.Kind.FUNC),
    "iter.s": ("bpf_iter_", T.Kind.FUNC),
}


def attach_btf_id(kind: str, target: str) -> int:
    """The kernel BTF id a ``kind/target`` program (fentry, tp_btf, lsm, iter...) needs."""
    prefix, btf_kind = _BTF_TARGET.get(kind, ("", T.Kind.FUNC))
    name = prefix + target.split(":")[-1] if target else ""
    found = _kernel_id(btf_kind, name) if name else None
    if found is None:
        raise KernelError(
            f"{kind}/{target}: no {btf_kind.name.lower()} {name!r} in the kernel's BTF "
            "(/sys/kernel/btf/vmlinux): check the name for this kernel"
        )
    return found


def weak_symbols(symbols: Iterable[object]) -> dict[str, bool]:
    """Symbol name -> True if weak (``__weak`` externs may stay unresolved)."""
    out: dict[str, bool] = {}
    for s in symbols:
        name, bind = getattr(s, "name", ""), getattr(s, "bind", "")
        if name:
            out[name] = out.get(name, False) or bind == "STB_WEAK"
    return out


def kconfig_names(btf: Btf) -> list[str]:
    """Names of the ``.kconfig`` externs."""
    return list(kconfig_layout(btf)[0])
