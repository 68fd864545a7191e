"""The values of the Python-to-IR lowering (:mod:`bpfkit.lang.lower`): what an expression
lowers to (an integer, memory, a pointer, bytes, a compile-time object), a local variable,
and what the module defines that programs use (:class:`Globals`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bpfkit.lang import ir
from bpfkit.lang.decl import MapDecl
from bpfkit.lang.ir import Slot, VReg
from bpfkit.lang.types import IntType, Type


@dataclass
class Val:
    """A lowered expression."""


@dataclass
class Int(Val):
    """An integer: a register or a constant; ``type`` None for an untyped literal."""

    v: VReg | int
    type: IntType | None


@dataclass
class Mem(Val):
    """Memory of ``type`` at ``base + off`` (a stack slot, a pointer, or a global)."""

    base: Slot | VReg | ir.DataRef
    off: int
    type: Type
    const: bool = False


@dataclass
class Ptr(Val):
    """A possibly-NULL pointer to a ``type`` (a map lookup's result)."""

    v: VReg
    type: Type


@dataclass
class KPtr(Val):
    """A kernel pointer (an address read with bpf_probe_read_kernel) to struct ``name``."""

    v: VReg | int
    struct: str


@dataclass
class Bytes(Val):
    data: bytes


@dataclass
class Obj(Val):
    """A compile-time object: a map, the context, a helper, a type, a module function."""

    obj: Any
    kind: str  # map, ctx, helper, type, builtin, pyfunc


@dataclass
class Local:
    """A local variable: an int in a register, memory on the stack, or a pointer."""

    val: Val


@dataclass
class Globals:
    """What the module defines that programs use (filled by :mod:`bpfkit.lang.compiler`)."""

    maps: dict[str, MapDecl] = field(default_factory=dict)
    data: dict[str, tuple[str, Type, bool]] = field(
        default_factory=dict
    )  # name->(sym, type, const)
    consts: dict[str, int] = field(default_factory=dict)
    namespace: dict[str, Any] = field(default_factory=dict)
    strings: dict[bytes, str] = field(default_factory=dict)  # rodata strings -> symbol
    data_init: dict[str, tuple[str, bytes, Type]] = field(
        default_factory=dict
    )  # name->(section, bytes, type)
    core: Any = None  # bpfkit.lang.core.Core, for kernel struct access
    funcs: dict[str, tuple[list[IntType], IntType | None]] = field(default_factory=dict)


def lit(v: VReg | int) -> int:
    """The int of an untyped literal (a constant :class:`Int`)."""
    assert isinstance(v, int)
    return v
