"""C declarations of single BTF types, as bpftool writes them.

``define(btf, type_id)`` is the definition of one struct, union, enum or typedef
(``struct point {\n\tint x;\n\tint y;\n};``) exactly as in ``bpftool btf dump file X
format c`` (:func:`bpfkit.btf.cdump.definition`: libbpf's ``btf_dump`` rules, padding
members and ``__attribute__((packed))`` included; other kinds are named by
:meth:`Btf.format`).  ``type_only(btf, type_id)`` names a type or function as bpftool does
beside translated and JIT-compiled code (its ``btf_dumper_type_only``, other rules:
``T * `` pointers, no definitions).
"""

from __future__ import annotations

from bpfkit.btf import types as T
from bpfkit.btf.btf import MAX_RESOLVE_DEPTH, Btf


def define(btf: Btf, type_id: int) -> str:
    """The C definition of type ``type_id`` (or its declaration, for other kinds)."""
    from bpfkit.btf.cdump import definition

    text = definition(btf, type_id)
    return (btf.format(type_id) if text is None else text) + ";"


def type_only(btf: Btf, type_id: int) -> str:
    """A type or function as bpftool names it beside translated and JIT-compiled code
    (its ``btf_dumper_type_only``): ``int on_args(struct pt_regs * ctx)``; pointers as
    ``T * ``, no definitions; "" for kinds bpftool does not name (variables, sections)."""
    try:
        return _only(btf, type_id, 0)
    except (ValueError, IndexError, KeyError):
        return ""


def _only(btf: Btf, type_id: int, depth: int) -> str:
    if depth > MAX_RESOLVE_DEPTH:
        raise ValueError("type loop")
    t = btf.type(type_id)
    if isinstance(t, T.Struct):
        return f"{'union' if isinstance(t, T.Union) else 'struct'} {t.name} "
    if isinstance(t, T.Enum):
        return f"enum {t.name} "
    if isinstance(t, (T.Int, T.Typedef, T.Float)):
        return f"{t.name} "
    if isinstance(t, T.Array):
        return f"{_only(btf, t.type, depth + 1)}[{t.nelems}]"
    if isinstance(t, T.Ptr):
        return f"{_only(btf, t.type, depth + 1)}* "
    if isinstance(t, T.Fwd):
        return f"{'union' if t.union else 'struct'} {t.name} "
    words = {T.Volatile: "volatile ", T.Const: "const ", T.Restrict: "restrict "}
    for kind, word in words.items():
        if isinstance(t, kind):
            return word + _only(btf, t.type, depth + 1)
    if isinstance(t, T.FuncProto):
        return _func(btf, t, "", depth)
    if isinstance(t, T.Func):
        proto = btf.type(t.type)
        if not isinstance(proto, T.FuncProto):
            raise ValueError("FUNC without a prototype")
        return _func(btf, proto, t.name, depth)
    if isinstance(t, T.Void):
        return "void "
    raise ValueError("a kind bpftool does not name")


def _func(btf: Btf, proto: T.FuncProto, name: str, depth: int) -> str:
    out = _only(btf, proto.return_type, depth + 1) + f"{name}("
    for i, p in enumerate(proto.params):
        if i:
            out += ", "
        if p.type:
            out += _only(btf, p.type, depth + 1)
            if p.name:
                out += p.name
            elif out.endswith(" "):
                out = out[:-1]
        else:
            out += "..."
    return out + ")"
