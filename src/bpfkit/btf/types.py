"""The BTF type model: one frozen dataclass per BTF kind (uapi ``linux/btf.h``).

Every type has an ``id`` (its index in the BTF, 0 being ``void``) and a ``name`` ("" when
anonymous).  References to other types are ids; a :class:`~bpfkit.btf.Btf` turns them
into types (``btf.type(id)``), skips modifiers (``btf.resolve``), computes sizes and
formats C-like names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar


class Kind(IntEnum):
    """BTF_KIND_* numbers."""

    VOID = 0  # BTF_KIND_UNKN: only type id 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


# INT encoding bits (BTF_INT_SIGNED, BTF_INT_CHAR, BTF_INT_BOOL).
INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4


class Linkage(IntEnum):
    """Linkage of a FUNC (btf_func_linkage) or VAR (BTF_VAR_*)."""

    STATIC = 0
    GLOBAL = 1  # FUNC: global; VAR: global allocated
    EXTERN = 2


# A kind that adds no field to its base (Ptr to Ref, Union to Struct, ...) is a plain
# subclass with empty __slots__: it stays a frozen, slotted dataclass (fields, replace,
# ==, repr and pickling come from the base and use the instance's own class), without
# the code generation a @dataclass decorator repeats for each class at import.


@dataclass(frozen=True, slots=True)
class Type:
    """Fields every BTF type has."""

    KIND: ClassVar[Kind] = Kind.VOID
    id: int
    name: str

    @property
    def kind(self) -> Kind:
        """The BTF kind of this type."""
        return self.KIND


class Void(Type):
    """Type id 0: ``void``."""

    __slots__ = ()  # adds no field (see the note above Type)


@dataclass(frozen=True, slots=True)
class Int(Type):
    """An integer (``char``, ``_Bool`` included)."""

    KIND: ClassVar[Kind] = Kind.INT
    size: int
    encoding: int  # INT_SIGNED | INT_CHAR | INT_BOOL
    bit_offset: int
    bits: int

    @property
    def signed(self) -> bool:
        """True for a signed integer."""
        return bool(self.encoding & INT_SIGNED)


@dataclass(frozen=True, slots=True)
class Ref(Type):
    """A kind whose only content is a referenced type id."""

    type: int


class Ptr(Ref):
    """A pointer to ``type``."""

    __slots__ = ()  # adds no field (see the note above Type)

    KIND: ClassVar[Kind] = Kind.PTR


class Typedef(Ref):
    """``typedef type name``."""

    __slots__ = ()  # adds no field (see the note above Type)

    KIND: ClassVar[Kind] = Kind.TYPEDEF


class Volatile(Ref):
    """``volatile type``."""

    __slots__ = ()  # adds no field (see the note above Type)

    KIND: ClassVar[Kind] = Kind.VOLATILE


class Const(Ref):
    """``const type``."""

    __slots__ = ()  # adds no field (see the note above Type)

    KIND: ClassVar[Kind] = Kind.CONST


class Restrict(Ref):
    """``restrict type``."""

    __slots__ = ()  # adds no field (see the note above Type)

    KIND: ClassVar[Kind] = Kind.RESTRICT


@dataclass(frozen=True, slots=True)
class TypeTag(Ref):
    """``type __attribute__((btf_type_tag(name)))``."""

    KIND: ClassVar[Kind] = Kind.TYPE_TAG
    attribute: bool = False  # kind_flag: the tag is a plain __attribute__((name))


@dataclass(frozen=True, slots=True)
class Array(Type):
    """``type[nelems]``."""

    KIND: ClassVar[Kind] = Kind.ARRAY
    type: int
    index_type: int
    nelems: int


@dataclass(frozen=True, slots=True)
class Member:
    """A struct or union member; ``bit_offset`` from the start of the aggregate."""

    name: str
    type: int
    bit_offset: int
    bitfield_size: int = 0  # 0 unless a bitfield (kind_flag set)


@dataclass(frozen=True, slots=True)
class Struct(Type):
    """``struct name { members }``."""

    KIND: ClassVar[Kind] = Kind.STRUCT
    size: int
    members: tuple[Member, ...]

    def member(self, name: str) -> Member | None:
        """The member called ``name``, or None."""
        return next((m for m in self.members if m.name == name), None)


class Union(Struct):
    """``union name { members }``."""

    __slots__ = ()  # adds no field (see the note above Type)

    KIND: ClassVar[Kind] = Kind.UNION


@dataclass(frozen=True, slots=True)
class EnumValue:
    """One enumerator."""

    name: str
    value: int


@dataclass(frozen=True, slots=True)
class Enum(Type):
    """``enum name { values }`` (ENUM: 32-bit values, ENUM64: 64-bit)."""

    KIND: ClassVar[Kind] = Kind.ENUM
    size: int
    values: tuple[EnumValue, ...]
    signed: bool = False

    def value(self, name: str) -> int | None:
        """The value of enumerator ``name``, or None."""
        return next((v.value for v in self.values if v.name == name), None)

    def as_dict(self) -> dict[str, int]:
        """Enumerator names to values."""
        return {v.name: v.value for v in self.values}


class Enum64(Enum):
    """A 64-bit enum."""

    __slots__ = ()  # adds no field (see the note above Type)

    KIND: ClassVar[Kind] = Kind.ENUM64


@dataclass(frozen=True, slots=True)
class Fwd(Type):
    """A forward declaration (``struct name;`` or ``union name;``)."""

    KIND: ClassVar[Kind] = Kind.FWD
    union: bool


@dataclass(frozen=True, slots=True)
class Func(Type):
    """A function: its prototype is ``type`` (a FUNC_PROTO)."""

    KIND: ClassVar[Kind] = Kind.FUNC
    type: int
    linkage: int


@dataclass(frozen=True, slots=True)
class Param:
    """A FUNC_PROTO parameter (a last one with type 0 and no name means ``...``)."""

    name: str
    type: int


@dataclass(frozen=True, slots=True)
class FuncProto(Type):
    """A function prototype: return type and parameters."""

    KIND: ClassVar[Kind] = Kind.FUNC_PROTO
    return_type: int
    params: tuple[Param, ...]

    @property
    def variadic(self) -> bool:
        """True when the prototype ends with ``...``."""
        return bool(self.params) and self.params[-1].type == 0 and not self.params[-1].name


@dataclass(frozen=True, slots=True)
class Var(Type):
    """A global or static variable."""

    KIND: ClassVar[Kind] = Kind.VAR
    type: int
    linkage: int


@dataclass(frozen=True, slots=True)
class VarSecinfo:
    """A variable's place in a DATASEC."""

    type: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Datasec(Type):
    """An ELF data section (``.data``, ``.maps``, ``.kconfig``...) and its variables."""

    KIND: ClassVar[Kind] = Kind.DATASEC
    size: int
    vars: tuple[VarSecinfo, ...]


@dataclass(frozen=True, slots=True)
class Float(Type):
    """A floating-point type."""

    KIND: ClassVar[Kind] = Kind.FLOAT
    size: int


@dataclass(frozen=True, slots=True)
class DeclTag(Type):
    """``__attribute__((btf_decl_tag(name)))`` on ``type`` (member/param ``component_idx``, or -1)."""

    KIND: ClassVar[Kind] = Kind.DECL_TAG
    type: int
    component_idx: int
    attribute: bool = False  # kind_flag: the tag is a plain __attribute__((name))


MODIFIERS = (Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG)
"""Kinds that :meth:`Btf.resolve` skips."""
