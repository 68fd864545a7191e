"""Text of a BTF in ``bpftool btf dump file X`` (raw format) form, line for line.

``dump_raw(btf)`` returns what bpftool prints: one ``[id] KIND 'name' ...`` line per type,
members, enumerators, parameters and datasec variables on tab-indented lines.  The tests
compare it with bpftool's own output.
"""

from __future__ import annotations

from collections.abc import Iterator

from bpfkit.btf import types as T
from bpfkit.btf.btf import Btf

_INT_ENC = {0: "(none)", T.INT_SIGNED: "SIGNED", T.INT_CHAR: "CHAR", T.INT_BOOL: "BOOL"}
_LINKAGE = {0: "static", 1: "global", 2: "extern"}


def _q(name: str) -> str:
    return f"'{name or '(anon)'}'"


def dump_type(btf: Btf, t: T.Type) -> str:
    """bpftool's raw text of one type (several lines for aggregates)."""
    head = f"[{t.id}] {t.kind.name} {_q(t.name)}"
    return "\n".join([head + _fields(btf, t), *_lines(btf, t)])


def _fields(btf: Btf, t: T.Type) -> str:
    if isinstance(t, T.Int):
        enc = _INT_ENC.get(t.encoding, "UNKN")
        return f" size={t.size} bits_offset={t.bit_offset} nr_bits={t.bits} encoding={enc}"
    if isinstance(t, T.Ref):
        return f" type_id={t.type}"
    if isinstance(t, T.Array):
        return f" type_id={t.type} index_type_id={t.index_type} nr_elems={t.nelems}"
    if isinstance(t, T.Struct):
        return f" size={t.size} vlen={len(t.members)}"
    if isinstance(t, T.Enum):
        enc = "SIGNED" if t.signed else "UNSIGNED"
        return f" encoding={enc} size={t.size} vlen={len(t.values)}"
    if isinstance(t, T.Fwd):
        return f" fwd_kind={'union' if t.union else 'struct'}"
    if isinstance(t, T.Func):
        return f" type_id={t.type} linkage={_LINKAGE.get(t.linkage, 'unknown')}"
    if isinstance(t, T.FuncProto):
        return f" ret_type_id={t.return_type} vlen={len(t.params)}"
    if isinstance(t, T.Var):
        return f" type_id={t.type}, linkage={_LINKAGE.get(t.linkage, 'unknown')}"
    if isinstance(t, T.Datasec):
        return f" size={t.size} vlen={len(t.vars)}"
    if isinstance(t, T.Float):
        return f" size={t.size}"
    if isinstance(t, T.DeclTag):
        return f" type_id={t.type} component_idx={t.component_idx}"
    return ""


def _lines(btf: Btf, t: T.Type) -> Iterator[str]:
    if isinstance(t, T.Struct):
        for m in t.members:
            bf = f" bitfield_size={m.bitfield_size}" if m.bitfield_size else ""
            yield f"\t{_q(m.name)} type_id={m.type} bits_offset={m.bit_offset}{bf}"
    elif isinstance(t, T.Enum64):
        for v in t.values:
            yield f"\t{_q(v.name)} val={v.value}{'LL' if t.signed else 'ULL'}"
    elif isinstance(t, T.Enum):
        for v in t.values:
            yield f"\t{_q(v.name)} val={v.value}"
    elif isinstance(t, T.FuncProto):
        for p in t.params:
            yield f"\t{_q(p.name)} type_id={p.type}"
    elif isinstance(t, T.Datasec):
        for sv in t.vars:
            vt = btf.type(sv.type)
            yield (
                f"\ttype_id={sv.type} offset={sv.offset} size={sv.size} "
                f"({vt.kind.name} {_q(vt.name)})"
            )


def dump_raw(btf: Btf) -> str:
    """The whole BTF (its own types, for split BTF) as bpftool prints it."""
    return "".join(dump_type(btf, t) + "\n" for t in btf.types[btf.first_id :])
