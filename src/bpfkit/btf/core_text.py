"""Human-readable CO-RE relocations, as ``llvm-objdump-19 -d -r`` prints them.

With ``-r``, llvm-objdump (LLVM 18 and later) reads ``.BTF`` and ``.BTF.ext`` and prints,
after each instruction that has a CO-RE relocation, a line like::

    \t\t0000000000000008:  CO-RE <byte_off> [17] struct xdp_buff::data (0:0)

Formats (LLVM's ``BTFParser::symbolize``):

* field kinds: ``<kind> [id] TYPE::[N].a.b[3].c (access string)`` -- the leading
  ``[N]`` only when the first accessor is not 0; a member with no name is ``<anon IDX>``;
* type kinds: ``<kind> [id] TYPE`` (the access string must be ``0``);
* enum kinds: ``<kind> [id] TYPE::NAME = VALUE``;
* anything malformed: ``<kind> [id] 'access' <what is wrong>``.

``TYPE`` is the modifiers (`` const``, `` volatile``, `` restrict``,
`` type_tag("x")``) followed by the kind word (``struct``, ``union``, ``enum``,
``typedef``, ``fwd struct``, ``fwd union``; none for other kinds) and the name.
Only the first relocation at an instruction is printed.
"""

from __future__ import annotations

import re

from bpfkit.btf import types as T
from bpfkit.btf.btf import Btf
from bpfkit.btf.ext import BtfExt, CoreRelo

_KIND_NAMES = (
    "byte_off",
    "byte_sz",
    "field_exists",
    "signed",
    "lshift_u64",
    "rshift_u64",
    "local_type_id",
    "target_type_id",
    "type_exists",
    "type_size",
    "enumval_exists",
    "enumval_value",
    "type_matches",
)
_FIELD_KINDS = range(0, 6)
_TYPE_KINDS = (6, 7, 8, 9, 12)
_ENUM_KINDS = (10, 11)
_MODS = (T.Const, T.Volatile, T.Restrict, T.TypeTag)
_NUMBER = re.compile(r"[0-9]+")
_U64 = (1 << 64) - 1


class _Fail(Exception):
    """A relocation that cannot be described; the message says why."""


def _kind_name(kind: int) -> str:
    name = _KIND_NAMES[kind] if 0 <= kind < len(_KIND_NAMES) else f"reloc kind #{kind}"
    return f"<{name}>"


def _anon(name: str, idx: int) -> str:
    return name or f"<anon {idx}>"


def _parse_access(spec: str) -> list[int]:
    """The access string's numbers (LLVM parses them as u32 after a u64 read)."""
    out: list[int] = []
    rest = spec
    while rest:
        m = _NUMBER.match(rest)
        if m is None or int(m.group()) > _U64:
            raise _Fail("spec string is not a number")
        out.append(int(m.group()) & 0xFFFFFFFF)
        rest = rest[m.end() :]
        if not rest:
            break
        if rest[0] != ":":
            raise _Fail(f"unexpected spec string delimiter: '{rest[0]}'")
        rest = rest[1:]
    return out


def _skip_mods_and_typedefs(btf: Btf, t: T.Type) -> T.Type:
    seen = 0
    while isinstance(t, (*_MODS, T.Typedef)) and seen < len(btf.types):
        if not 0 <= t.type < len(btf.types):
            break
        t = btf.types[t.type]
        seen += 1
    return t


def _type_word(t: T.Type) -> str:
    if isinstance(t, T.Typedef):
        return " typedef"
    if isinstance(t, T.Union):
        return " union"
    if isinstance(t, T.Struct):
        return " struct"
    if isinstance(t, T.Enum):
        return " enum"
    if isinstance(t, T.Fwd):
        return " fwd union" if t.union else " fwd struct"
    return ""


def _mod_word(t: T.Type) -> str:
    if isinstance(t, T.Const):
        return " const"
    if isinstance(t, T.Volatile):
        return " volatile"
    if isinstance(t, T.Restrict):
        return " restrict"
    return f' type_tag("{t.name}")'


def describe_core_relo(btf: Btf, relo: CoreRelo, access: str | None = None) -> str:
    """The text after ``CO-RE `` that llvm-objdump-19 prints for ``relo``.

    ``access`` is the access string (default: ``relo.access``, filled in when the
    ``.BTF.ext`` was parsed with its ``.BTF``).
    """
    spec = relo.access if access is None else access
    try:
        return _describe(btf, relo, spec)
    except _Fail as e:
        return f"{_kind_name(relo.kind)} [{relo.type_id}] '{spec}' <{e}>"


def _lookup(btf: Btf, type_id: int) -> T.Type | None:
    return btf.types[type_id] if 0 <= type_id < len(btf.types) else None


def _describe(btf: Btf, relo: CoreRelo, spec: str) -> str:
    raw = _parse_access(spec)
    out = [_kind_name(relo.kind)]
    cur = relo.type_id
    t = _lookup(btf, cur)
    if t is None:
        raise _Fail(f"unknown type id: {cur}")
    out.append(f" [{cur}]")
    chain = 0
    while isinstance(t, _MODS):
        if chain >= 32:
            raise _Fail("modifiers chain is too long")
        out.append(_mod_word(t))
        cur = t.type
        nxt = _lookup(btf, cur)
        if nxt is None:
            raise _Fail(f"unknown type id: {cur} in modifiers chain")
        t = nxt
        chain += 1
    if cur == 0:
        out.append(" void")
    else:
        out.append(f"{_type_word(t)} {_anon(t.name, cur)}")
    kind = relo.kind
    if kind in _TYPE_KINDS:
        if raw != [0]:
            raise _Fail("unexpected type-based relocation spec: should be '0'")
        return "".join(out)
    out.append("::")
    if kind in _ENUM_KINDS:
        t = _skip_mods_and_typedefs(btf, t)
        if len(raw) != 1:
            raise _Fail("unexpected enumval relocation spec size")
        idx = raw[0]
        if not isinstance(t, T.Enum):
            raise _Fail(f"unexpected type kind for enum relocation: {int(t.kind)}")
        if len(t.values) <= idx:
            raise _Fail(f"bad value index: {idx}")
        ev = t.values[idx]
        value = _enum_value(t, ev.value)
        out.append(f"{_anon(ev.name, idx)} = {value}")
        return "".join(out)
    if kind in _FIELD_KINDS:
        if not raw:
            raise _Fail("field spec too short")
        if raw[0]:
            out.append(f"[{raw[0]}]")
        for i in range(1, len(raw)):
            t = _skip_mods_and_typedefs(btf, t)
            idx = raw[i]
            if isinstance(t, T.Struct):
                if len(t.members) <= idx:
                    raise _Fail(f"member index {idx} for spec sub-string {i} is out of range")
                member = t.members[idx]
                if i != 1 or raw[0]:
                    out.append(".")
                out.append(_anon(member.name, idx))
                nxt = _lookup(btf, member.type)
                if nxt is None:
                    raise _Fail(f"unknown member type id {member.type} for spec sub-string {i}")
                t = nxt
            elif isinstance(t, T.Array):
                out.append(f"[{idx}]")
                nxt = _lookup(btf, t.type)
                if nxt is None:
                    raise _Fail(f"unknown element type id {t.type} for spec sub-string {i}")
                t = nxt
            else:
                raise _Fail(f"unexpected type kind {int(t.kind)} for spec sub-string {i}")
        out.append(f" ({spec})")
        return "".join(out)
    raise _Fail(f"unknown relocation kind: {kind}")


def _enum_value(t: T.Enum, value: int) -> int:
    """The value as LLVM prints it: a 32-bit enumerator is read as a signed int32."""
    if isinstance(t, T.Enum64):
        v = value & _U64
    else:
        v32 = value & 0xFFFFFFFF
        v = (v32 - (1 << 32) if v32 & 0x80000000 else v32) & _U64
    if t.signed:
        return v - (1 << 64) if v & (1 << 63) else v
    return v


def core_relo_lines(btf: Btf, ext: BtfExt) -> dict[str, dict[int, str]]:
    """Per ELF section name, the CO-RE text for each relocated instruction's byte offset.

    When several relocations share an offset, the first (in file order) wins, as in
    llvm-objdump.
    """
    out: dict[str, dict[int, str]] = {}
    for sec, relos in ext.core_relos.items():
        lines = out.setdefault(sec, {})
        for r in relos:
            if r.insn_off not in lines:
                lines[r.insn_off] = describe_core_relo(btf, r)
    return out
