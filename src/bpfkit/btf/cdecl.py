"""C definitions of BTF types, in the style of ``bpftool btf dump file X format c``.

``define(btf, type_id)`` returns the definition of one struct, union, enum or typedef
(``struct point {\\n\\tint x;\\n\\tint y;\\n};``); anonymous member types are written inline
as C does.  Unlike a whole ``vmlinux.h`` it neither orders dependencies nor adds the
padding members and ``__attribute__((packed))`` bpftool writes for layouts the natural
alignment does not explain.
"""

from __future__ import annotations

from bpfkit.btf import types as T
from bpfkit.btf.btf import MAX_RESOLVE_DEPTH, Btf


def define(btf: Btf, type_id: int) -> str:
    """The C definition of type ``type_id`` (or its declaration, for other kinds)."""
    return _define(btf, type_id, 0, 0) + ";"


def _define(btf: Btf, type_id: int, indent: int, depth: int) -> str:
    t = btf.type(type_id)
    if isinstance(t, T.Struct) and depth <= MAX_RESOLVE_DEPTH:
        word = "union" if isinstance(t, T.Union) else "struct"
        head = f"{word} {t.name} {{" if t.name else f"{word} {{"
        tab = "\t" * (indent + 1)
        lines = [head]
        for m in t.members:
            decl = _member(btf, m, indent + 1, depth)
            if m.bitfield_size:
                decl += f": {m.bitfield_size}"
            lines.append(f"{tab}{decl};")
        lines.append("\t" * indent + "}")
        return "\n".join(lines)
    if isinstance(t, T.Enum):
        head = f"enum {t.name} {{" if t.name else "enum {"
        tab = "\t" * (indent + 1)
        suffix = ""
        if isinstance(t, T.Enum64):
            suffix = "LL" if t.signed else "ULL"
        body = [f"{tab}{v.name} = {v.value}{suffix}," for v in t.values]
        return "\n".join([head, *body, "\t" * indent + "}"])
    if isinstance(t, T.Typedef):
        return "typedef " + btf.format(t.type, t.name)
    if isinstance(t, T.Fwd):
        return f"{'union' if t.union else 'struct'} {t.name}"
    return btf.format(type_id)


def _member(btf: Btf, m: T.Member, indent: int, depth: int) -> str:
    """A member's declaration; an anonymous struct/union/enum type is written out inline."""
    target = btf.type(m.type)
    if isinstance(target, (T.Struct, T.Enum)) and not target.name:
        body = _define(btf, m.type, indent, depth + 1)
        return f"{body} {m.name}" if m.name else body
    return btf.format(m.type, m.name)


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
