"""A parsed BTF: look types up by id or name, skip modifiers, compute sizes, format C names."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from bpfkit.btf import types as T
from bpfkit.btf.parse import Header, Strings, parse_header, parse_types
from bpfkit.btf.types import MODIFIERS, Kind
from bpfkit.errors import BtfError

# libbpf's MAX_RESOLVE_DEPTH: chains of modifiers/typedefs longer than this are loops.
MAX_RESOLVE_DEPTH = 32

_KIND_WORDS = {"struct": Kind.STRUCT, "union": Kind.UNION, "enum": Kind.ENUM}


class Btf:
    """Types of one BTF blob (plus its base, for split BTF).

    ``types[id]`` is the type with that id (``types[0]`` is ``void``); for split BTF the
    list starts with the base's types, so ids are global.
    """

    def __init__(
        self,
        types: Sequence[T.Type],
        strings: Strings,
        header: Header,
        base: Btf | None = None,
        what: str = ".BTF",
    ) -> None:
        self.types = types
        self.strings = strings
        self.header = header
        self.base = base
        self.what = what
        self.first_id = len(base.types) if base else 1
        self._by_name: dict[str, list[int]] | None = None
        # Types never change once parsed: resolved types and sizes are worked out once
        # (typed map access resolves the same few types for every key and value).
        self._resolved: dict[int, T.Type] = {}
        self._sizes: dict[int, int] = {}

    @property
    def big_endian(self) -> bool:
        """Byte order of the blob."""
        return self.header.big_endian

    def __len__(self) -> int:
        return len(self.types)

    def __iter__(self) -> Iterator[T.Type]:
        return iter(self.types)

    def string(self, off: int) -> str:
        """The string at offset ``off`` of the string section (base strings first)."""
        return self.strings.get(off)

    def type(self, type_id: int) -> T.Type:
        """The type with id ``type_id``."""
        if not 0 <= type_id < len(self.types):
            raise BtfError(
                f"{self.what}: type id {type_id} does not exist (ids go up to {len(self.types) - 1})"
            )
        return self.types[type_id]

    def _index(self) -> dict[str, list[int]]:
        if self._by_name is None:
            idx: dict[str, list[int]] = {}
            for t in self.types:
                if t.name:
                    idx.setdefault(t.name, []).append(t.id)
            self._by_name = idx
        return self._by_name

    def find_all(self, name: str, kind: Kind | str | None = None) -> list[T.Type]:
        """All types called ``name`` (optionally of ``kind``: a Kind, or "struct", "union",
        "enum" (ENUM or ENUM64), "typedef", "func", ... case-insensitively)."""
        want = _kinds(kind)
        ids = self._index().get(name, [])
        return [self.types[i] for i in ids if want is None or self.types[i].kind in want]

    def find(self, name: str, kind: Kind | str | None = None) -> T.Type:
        """The first type called ``name`` (of ``kind``, if given); BtfError if none."""
        found = self.find_all(name, kind)
        if not found:
            what = f"{kind.name.lower() if isinstance(kind, Kind) else kind} " if kind else ""
            raise BtfError(f"{self.what}: no {what}type named {name!r}")
        return found[0]

    def resolve(self, type_id: int) -> T.Type:
        """The type ``type_id`` names once typedefs and const/volatile/restrict/type tags are
        skipped."""
        done = self._resolved.get(type_id)
        if done is not None:
            return done
        t = self.type(type_id)
        for _ in range(MAX_RESOLVE_DEPTH):
            if t.kind not in MODIFIERS:
                self._resolved[type_id] = t
                return t
            assert isinstance(t, T.Ref)
            t = self.type(t.type)
        raise BtfError(f"{self.what}: type {type_id}: modifier chain too long (a loop?)")

    def resolve_id(self, type_id: int) -> int:
        """Id of :meth:`resolve`'s result."""
        return self.resolve(type_id).id

    def size_of(self, type_id: int) -> int:
        """Size in bytes of a value of type ``type_id`` (as libbpf's btf__resolve_size)."""
        done = self._sizes.get(type_id)
        if done is None:
            done = self._sizes[type_id] = self._size_of(type_id)
        return done

    def _size_of(self, type_id: int) -> int:
        t = self.type(type_id)
        mult = 1
        for _ in range(MAX_RESOLVE_DEPTH):
            if isinstance(t, (T.Int, T.Struct, T.Enum, T.Datasec, T.Float)):
                return mult * t.size
            if isinstance(t, T.Ptr):
                return mult * 8  # BPF pointers are 64-bit
            if isinstance(t, T.Array):
                mult *= t.nelems
                t = self.type(t.type)
            elif isinstance(t, (T.Ref, T.Var)):
                t = self.type(t.type)
            else:
                raise BtfError(
                    f"{self.what}: type {type_id} ({self.format(type_id)}) has no size "
                    f"({t.kind.name} has none)"
                )
        raise BtfError(f"{self.what}: type {type_id}: type chain too long (a loop?)")

    def format(self, type_id: int, name: str = "") -> str:
        """C-like text of a type (``struct foo``, ``unsigned int``, ``char[16]``,
        ``int (*)(void *)``); with ``name``, a declaration of it (``char comm[16]``)."""
        return _Formatter(self).declare(type_id, name, 0).strip()

    def __repr__(self) -> str:
        return f"<Btf {self.what}: {len(self.types)} types>"


def _kinds(kind: Kind | str | None) -> tuple[Kind, ...] | None:
    if kind is None:
        return None
    if isinstance(kind, Kind):
        return (kind, Kind.ENUM64) if kind == Kind.ENUM else (kind,)
    k = _KIND_WORDS.get(kind.lower())
    if k is None:
        try:
            k = Kind[kind.upper()]
        except KeyError:
            raise BtfError(f"unknown BTF kind {kind!r}") from None
    return (k, Kind.ENUM64) if k == Kind.ENUM else (k,)


def _paren(decl: str) -> str:
    return f"({decl})" if decl.startswith("*") else decl


def _sp(decl: str) -> str:
    if not decl:
        return ""
    return decl if decl.startswith("[") else " " + decl


class _Formatter:
    """C declarations, inside out; a node budget stops pathological (cyclic, branching)
    prototypes from taking exponential time."""

    def __init__(self, btf: Btf) -> None:
        self.btf = btf
        self.budget = 10_000

    def declare(self, type_id: int, decl: str, depth: int) -> str:
        """C declaration of ``decl`` with type ``type_id``."""
        self.budget -= 1
        if depth > MAX_RESOLVE_DEPTH or self.budget < 0:
            return "..." + _sp(decl)
        return self._declare(type_id, decl, depth)

    def _declare(self, type_id: int, decl: str, depth: int) -> str:
        btf = self.btf
        t = btf.type(type_id)
        anon = "(anon)"
        if isinstance(t, T.Void):
            return "void" + _sp(decl)
        if isinstance(t, (T.Int, T.Float, T.Typedef)):
            return t.name + _sp(decl)
        if isinstance(t, T.Union):
            return f"union {t.name or anon}" + _sp(decl)
        if isinstance(t, T.Struct):
            return f"struct {t.name or anon}" + _sp(decl)
        if isinstance(t, T.Enum):
            return f"enum {t.name or anon}" + _sp(decl)
        if isinstance(t, T.Fwd):
            return f"{'union' if t.union else 'struct'} {t.name}" + _sp(decl)
        if isinstance(t, T.Ptr):
            return self.declare(t.type, "*" + decl, depth + 1)
        if isinstance(t, T.Array):
            return self.declare(t.type, f"{_paren(decl)}[{t.nelems}]", depth + 1)
        if isinstance(t, (T.Const, T.Volatile, T.Restrict)):
            word = t.kind.name.lower()
            target = btf.type(t.type)
            if isinstance(target, T.Ptr):
                # The qualifier applies to the pointer itself: "char *const p".
                return self.declare(t.type, f"{word} {decl}".strip(), depth + 1)
            return f"{word} " + self.declare(t.type, decl, depth + 1)
        if isinstance(t, T.TypeTag):
            return self.declare(t.type, decl, depth + 1)
        if isinstance(t, T.FuncProto):
            args = [
                "..." if (p.type == 0 and not p.name) else self.declare(p.type, p.name, depth + 1)
                for p in t.params
            ]
            inner = f"{_paren(decl)}({', '.join(args) or 'void'})"
            return self.declare(t.return_type, inner, depth + 1)
        if isinstance(t, T.Func):
            return self.declare(t.type, t.name if not decl else decl, depth + 1)
        if isinstance(t, T.Var):
            return self.declare(t.type, decl or t.name, depth + 1)
        if isinstance(t, T.Datasec):
            return f'SEC("{t.name}")' + _sp(decl)
        if isinstance(t, T.DeclTag):
            return f'__attribute__((btf_decl_tag("{t.name}")))' + _sp(decl)
        return f"<{t.kind.name}>" + _sp(decl)


def parse_btf(data: bytes, *, big_endian: bool = False, base: Btf | None = None) -> Btf:
    """Parse a ``.BTF`` blob (or /sys/kernel/btf/*).

    The byte order is taken from the magic; ``big_endian`` is what the caller expects
    (an object's EI_DATA) and is only a hint.  ``base`` is the BTF a split BTF builds on
    (vmlinux for module BTF).  Raises :class:`BtfError` saying what is malformed and where.
    """
    del big_endian  # the magic decides; kept for symmetry with parse_btf_ext
    what = ".BTF" if base is None else "split .BTF"
    data = bytes(data)
    hdr = parse_header(data, what)
    s0 = hdr.hdr_len + hdr.str_off
    strings = Strings(data[s0 : s0 + hdr.str_len], base.strings if base else None, what)
    first = len(base.types) if base else 1
    own = parse_types(data, hdr, strings, first, what)
    types: list[T.Type] = list(base.types) if base else [T.Void(0, "")]
    types.extend(own)
    btf = Btf(types, strings, hdr, base, what)
    _check_refs(btf, own)
    return btf


def _refs(t: T.Type) -> Iterator[int]:
    if isinstance(t, (T.Ref, T.Func, T.Var, T.DeclTag)):
        yield t.type
    elif isinstance(t, T.Array):
        yield t.type
        yield t.index_type
    elif isinstance(t, T.Struct):
        for m in t.members:
            yield m.type
    elif isinstance(t, T.FuncProto):
        yield t.return_type
        for p in t.params:
            yield p.type
    elif isinstance(t, T.Datasec):
        for v in t.vars:
            yield v.type


def _check_refs(btf: Btf, own: list[T.Type]) -> None:
    """Every referenced type id must exist (the kernel's btf_check_all_types does more)."""
    n = len(btf.types)
    for t in own:
        for r in _refs(t):
            if r >= n:
                raise BtfError(
                    f"{btf.what}: type {t.id} ({t.kind.name} {t.name or '(anon)'}) refers to "
                    f"type {r}, but the last type id is {n - 1}"
                )
