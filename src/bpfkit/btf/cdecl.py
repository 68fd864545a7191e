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
