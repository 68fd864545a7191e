"""An object's BTF made acceptable to a kernel: pure rewriting of parsed types.

API::

    fixup_types(btf, *, section_sizes, symbol_offsets, hidden_funcs=(), layouts=None)
        -> list[Type]      what libbpf's btf_fixup_datasec and extern rewriting do
    sanitize_types(types, kinds=NEWER_KINDS) -> list[Type]
        kinds the target kernel does not know replaced by ones it does (same type ids)
    NEWER_KINDS: {Kind: "first Linux version that accepts it"}

Compilers leave two things for the loader to fill in: a DATASEC's size, and the offsets of
its variables, which only the ELF section and symbol tables know (``section_sizes``,
``symbol_offsets``).  The kernel rejects a DATASEC of size 0 or with variables out of order,
so they are filled in and sorted here; DATASECs without an ELF section (``.kconfig``) take
their layout from ``layouts``.  The kernel also rejects FUNCs and VARs with extern linkage
(kfunc/ksym/kconfig declarations), which become global or static as libbpf makes them; so
do global ``.text`` functions of hidden visibility (``hidden_funcs``), verified in their
caller's context when static.  The result is written with :func:`bpfkit.btf.encode.encode_btf`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from bpfkit.btf import types as T
from bpfkit.btf.btf import Btf
from bpfkit.btf.types import Kind, Linkage
from bpfkit.errors import ObjectError

# Kinds added after the kernels bpfkit may meet, with the version that added them.
NEWER_KINDS: dict[Kind, str] = {
    Kind.FLOAT: "5.13",
    Kind.DECL_TAG: "5.16",
    Kind.TYPE_TAG: "5.17",
    Kind.ENUM64: "6.0",
}


def fixup_types(
    btf: Btf,
    *,
    section_sizes: Mapping[str, int],
    symbol_offsets: Mapping[tuple[str, str], int],
    hidden_funcs: Collection[str] = (),
    layouts: Mapping[str, tuple[int, Mapping[str, int]]] | None = None,
) -> list[T.Type]:
    """The types of ``btf`` (index = type id) fixed up for loading (see the module doc).

    ``symbol_offsets`` maps ``(section, symbol)`` to the symbol's value; ``layouts`` gives
    the size and variable offsets of DATASECs that have no ELF section.
    """
    types = list(btf.types)
    layouts = layouts or {}
    for i, t in enumerate(types):
        if isinstance(t, T.Func) and t.linkage > Linkage.GLOBAL:  # a kfunc declaration
            types[i] = replace(t, linkage=Linkage.GLOBAL)
            # The kernel wants every parameter of a FUNC's prototype named; declarations
            # often leave them unnamed, so they borrow the function's name (libbpf too).
            proto = types[t.type] if 0 < t.type < len(types) else None
            if isinstance(proto, T.FuncProto):
                params = tuple(
                    replace(p, name=t.name) if p.type and not p.name else p for p in proto.params
                )
                types[t.type] = replace(proto, params=params)
        elif isinstance(t, T.Func) and t.linkage == Linkage.GLOBAL and t.name in hidden_funcs:
            types[i] = replace(t, linkage=Linkage.STATIC)
        elif isinstance(t, T.Var) and t.linkage > Linkage.GLOBAL:
            types[i] = replace(t, linkage=Linkage.STATIC)
    for i, t in enumerate(types):
        if isinstance(t, T.Datasec):
            types[i] = _datasec(t, types, section_sizes, symbol_offsets, layouts)
    return types


def _datasec(
    sec: T.Datasec,
    types: Sequence[T.Type],
    section_sizes: Mapping[str, int],
    symbol_offsets: Mapping[tuple[str, str], int],
    layouts: Mapping[str, tuple[int, Mapping[str, int]]],
) -> T.Datasec:
    size_given, offsets = layouts.get(sec.name, (0, {}))
    infos = []
    for vi in sec.vars:
        var = types[vi.type] if 0 < vi.type < len(types) else None
        if not isinstance(var, T.Var):
            continue  # a kfunc (FUNC) in .ksyms: the kernel accepts only VARs here
        off = offsets.get(var.name, symbol_offsets.get((sec.name, var.name), vi.offset))
        if off > 0xFFFFFFFF:  # BTF offsets are u32: a corrupt symbol value
            raise ObjectError(
                f"{sec.name}: variable {var.name!r} is at offset {off:#x}, "
                "past any section: the object's symbol table is corrupt"
            )
        infos.append(T.VarSecinfo(vi.type, off, vi.size))
    infos.sort(key=lambda v: (v.offset, v.type, v.size))
    size = sec.size
    if size_given:
        size = size_given
    elif size == 0:
        size = section_sizes.get(sec.name, 0)
    if size == 0:
        # No ELF section and no layout (typed ksyms): lay the variables out in order.
        off = 0
        for k, vi in enumerate(infos):
            infos[k] = replace(vi, offset=off)
            off += max(vi.size, 1)
        size = max(off, 1)
    return replace(sec, size=size, vars=tuple(infos))


def sanitize_types(
    types: Sequence[T.Type], kinds: Collection[Kind] = frozenset(NEWER_KINDS)
) -> list[T.Type]:
    """``types`` with the kinds in ``kinds`` replaced by ones older kernels know, as libbpf
    does for a kernel that refuses them: FLOAT becomes an empty struct of its size,
    DECL_TAG an anonymous 1-byte INT, TYPE_TAG a CONST, ENUM64 an empty union of its size.
    Type ids do not change, so func_info and map type ids stay valid."""
    out = list(types)
    for i, t in enumerate(out):
        if t.kind not in kinds:
            continue
        if isinstance(t, T.Float):
            out[i] = T.Struct(t.id, "", t.size, ())
        elif isinstance(t, T.DeclTag):
            out[i] = T.Int(t.id, "", 1, 0, 0, 8)
        elif isinstance(t, T.TypeTag):
            out[i] = T.Const(t.id, "", t.type)
        elif isinstance(t, T.Enum64):
            out[i] = T.Union(t.id, "", t.size, ())
    return out
