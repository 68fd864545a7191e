"""Extern symbols of an object, resolved against a description of the target kernel (pure).

API::

    kconfig_layout(btf) -> dict[name, (offset, type_id)], size
    kconfig_bytes(btf, names, weak, config, special) -> bytes   # the .kconfig map value
    special_kconfig(version_code, machine) -> {name: value}     # LINUX_KERNEL_VERSION, ...
    weak_symbols(symbols) -> {name: is weak}
    btf_target(kind, target) -> (BTF kind, name)                # fentry/tp_btf/lsm/iter targets

As libbpf does: ``__kconfig`` externs (``LINUX_KERNEL_VERSION``, ``CONFIG_*`` from the
kernel's config) live in a frozen ``.kconfig`` array map; ``__ksym`` functions become
kfunc calls by BTF id; typed ``__ksym`` variables become ``lddw`` of a BTF id (src 3),
typeless ones their address from kallsyms.  Where those values come from (the running
kernel, or a recording in the tests) is :mod:`bpfkit.obj.prepare`'s ``KernelView``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bpfkit.btf import types as T
from bpfkit.btf.btf import Btf
from bpfkit.errors import ObjectError

# libbpf's enum libbpf_tristate.
TRI_NO, TRI_YES, TRI_MODULE = 0, 1, 2


def special_kconfig(version_code: int, machine: str) -> dict[str, str]:
    """The ``.kconfig`` externs libbpf computes rather than reads from the config."""
    wrapper = machine in ("x86_64", "aarch64", "s390x", "riscv64")
    return {
        "LINUX_KERNEL_VERSION": str(version_code),
        "LINUX_HAS_BPF_COOKIE": "y",  # Linux >= 5.15; bpfkit targets newer kernels
        "LINUX_HAS_SYSCALL_WRAPPER": "y" if wrapper else "n",
    }


def kconfig_layout(btf: Btf) -> tuple[dict[str, tuple[int, int]], int]:
    """Offset and BTF type id of every ``.kconfig`` extern, and the total size."""
    secs = btf.find_all(".kconfig", T.Kind.DATASEC)
    if not secs:
        return {}, 0
    sec = secs[0]
    assert isinstance(sec, T.Datasec)
    # As libbpf: by alignment (largest first), then size (smallest first), then name;
    # each at the next offset of its alignment; the section ends after the last one.
    found: list[tuple[int, int, str, int]] = []
    for vi in sec.vars:
        var = btf.type(vi.type)
        if not isinstance(var, T.Var):
            continue
        size = btf.size_of(var.type)
        target = btf.resolve(var.type)
        elem = btf.size_of(target.type) if isinstance(target, T.Array) else size
        found.append((-min(max(elem, 1), 8), size, var.name, var.type))
    layout: dict[str, tuple[int, int]] = {}
    off = 0
    for neg_align, size, name, type_id in sorted(found, key=lambda f: f[:3]):
        off = (off - neg_align - 1) // -neg_align * -neg_align
        layout[name] = (off, type_id)
        off += size
    return layout, off


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


def kconfig_bytes(
    btf: Btf,
    names: Iterable[str],
    weak: Mapping[str, bool],
    config: Mapping[str, str],
    special: Mapping[str, str],
    config_source: str = "the kernel config",
) -> bytes:
    """The ``.kconfig`` map value holding ``names`` (others zero): values from ``special``
    first, then ``config`` (``CONFIG_*`` -> text as in the config file)."""
    layout, size = kconfig_layout(btf)
    buf = bytearray(size)
    for name in names:
        if name not in layout:
            raise ObjectError(f"extern {name!r} is not in the .kconfig section of the BTF")
        off, type_id = layout[name]
        raw = special.get(name) or config.get(name)
        if raw is None:
            if weak.get(name):
                continue
            raise ObjectError(
                f"kconfig extern {name} is not set in {config_source}; declare it __weak to accept 0"
            )
        data = _encode(btf, type_id, name, raw)
        buf[off : off + len(data)] = data
    return bytes(buf)


# Where fentry/fexit/tp_btf/lsm/iter programs attach, as libbpf finds it in kernel BTF.
_BTF_TARGET = {
    "tp_btf": ("btf_trace_", T.Kind.TYPEDEF),
    "lsm": ("bpf_lsm_", T.Kind.FUNC),
    "lsm.s": ("bpf_lsm_", T.Kind.FUNC),
    "lsm_cgroup": ("bpf_lsm_", T.Kind.FUNC),
    "iter": ("bpf_iter_", T.Kind.FUNC),
    "iter.s": ("bpf_iter_", T.Kind.FUNC),
}


def btf_target(kind: str, target: str) -> tuple[T.Kind, str]:
    """The kernel BTF kind and name a ``kind/target`` program (fentry, tp_btf, lsm, iter...)
    attaches to (name "" when ``target`` is empty)."""
    prefix, btf_kind = _BTF_TARGET.get(kind, ("", T.Kind.FUNC))
    return btf_kind, (prefix + target.split(":")[-1] if target else "")


def weak_symbols(symbols: Iterable[object]) -> dict[str, bool]:
    """Symbol name -> True if weak (``__weak`` externs may stay unresolved)."""
    out: dict[str, bool] = {}
    for s in symbols:
        name, bind = getattr(s, "name", ""), getattr(s, "bind", "")
        if name:
            out[name] = out.get(name, False) or bind == "STB_WEAK"
    return out
