"""The types of the Python BPF subset: explicit-width integers, fixed arrays and C structs.

These objects serve both sides of a program file: the compiler reads them (sizes, layouts,
signedness) and user space uses them to convert and decode (``u32(x)`` wraps like C,
``Event.unpack(data)`` decodes a ring-buffer record).

Integer semantics (the compiler and :meth:`IntType.wrap` agree): every value is kept at its
type's width, wrapping as C does on overflow; ``//`` and ``%`` truncate toward zero (C's ``/``
and ``%``); dividing by zero gives 0 and ``x % 0`` gives ``x`` (BPF's rule); a shift count is
taken modulo 64 for 64-bit types and modulo 32 for the narrower ones.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: a program file's import stays cheap
if TYPE_CHECKING:
    from typing import Any


class Type:
    """A type of the subset: it has a size and an alignment (C's)."""

    name: str = "?"
    size: int = 0
    align: int = 1

    def __repr__(self) -> str:
        return self.name


class IntType(Type):
    """``u8`` ... ``i64``: an integer of ``size`` bytes, signed or not.

    Calling it converts a Python int as a C cast would: ``u8(300) == 44``.
    ``u8[16]`` is the array type of 16 ``u8``.
    """

    def __init__(self, name: str, size: int, signed: bool) -> None:
        self.name, self.size, self.align, self.signed = name, size, size, signed
        self.bits = size * 8

    def wrap(self, value: int) -> int:
        """``value`` converted to this type (two's complement wrap-around)."""
        v = int(value) & ((1 << self.bits) - 1)
        if self.signed and v >> (self.bits - 1):
            v -= 1 << self.bits
        return v

    def __call__(self, value: Any = 0) -> int:
        return self.wrap(int(value))

    def __getitem__(self, count: int) -> ArrayType:
        return ArrayType(self, count)

    @property
    def min(self) -> int:
        """The smallest value."""
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        """The largest value."""
        return (1 << (self.bits - (1 if self.signed else 0))) - 1

    def pack(self, value: int) -> bytes:
        """``value`` (wrapped) as bytes in this machine's byte order."""
        return (self.wrap(value) & ((1 << self.bits) - 1)).to_bytes(self.size, sys.byteorder)

    def unpack(self, data: bytes) -> int:
        """The value ``data`` holds."""
        return self.wrap(int.from_bytes(data[: self.size], sys.byteorder))


u8, u16, u32, u64 = (IntType(f"u{8 * n}", n, False) for n in (1, 2, 4, 8))
i8, i16, i32, i64 = (IntType(f"i{8 * n}", n, True) for n in (1, 2, 4, 8))
INT_TYPES: dict[str, IntType] = {t.name: t for t in (u8, u16, u32, u64, i8, i16, i32, i64)}
BOOL = u8  # what a comparison is, as a value


class ArrayType(Type):
    """``T[N]``: ``N`` elements of ``T`` (``u8[16]`` holds a C string such as a comm)."""

    def __init__(self, elem: Type, count: int) -> None:
        if not isinstance(count, int) or not 0 < count <= 1 << 16:
            raise TypeError(f"array length must be an int from 1 to 65536, not {count!r}")
        self.elem, self.count = elem, count
        self.size, self.align = elem.size * count, elem.align
        self.name = f"{elem.name}[{count}]"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArrayType) and (other.elem, other.count) == (self.elem, self.count)

    def __hash__(self) -> int:
        return hash((self.elem, self.count))

    def unpack(self, data: bytes) -> Any:
        """``bytes`` for ``u8``/``i8`` arrays (see :func:`cstr`), else a list."""
        if isinstance(self.elem, IntType) and self.elem.size == 1:
            return bytes(data[: self.size])
        step = self.elem.size
        return [unpack(self.elem, data[i * step : (i + 1) * step]) for i in range(self.count)]


class Field:
    """A member of a struct: name, type and byte offset (a value: compared by them)."""

    __slots__ = ("name", "offset", "type")

    def __init__(self, name: str, type: Type, offset: int) -> None:  # noqa: A002
        self.name, self.type, self.offset = name, type, offset

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Field) and (other.name, other.type, other.offset) == (
            self.name,
            self.type,
            self.offset,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.type, self.offset))

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, type={self.type!r}, offset={self.offset!r})"


class StructType(Type):
    """A C struct laid out as a C compiler would (natural alignment, tail padding)."""

    def __init__(self, name: str, fields: list[tuple[str, Type]], cls: type | None = None) -> None:
        self.name, self.cls = name, cls
        self.fields: dict[str, Field] = {}
        off, align = 0, 1
        for fname, ftype in fields:
            off = (off + ftype.align - 1) // ftype.align * ftype.align
            self.fields[fname] = Field(fname, ftype, off)
            off += ftype.size
            align = max(align, ftype.align)
        self.align = align
        self.size = max((off + align - 1) // align * align, 1)

    def unpack(self, data: bytes) -> Any:
        """An instance of the declared class (or a dict) with the fields ``data`` holds."""
        values = {
            f.name: unpack(f.type, data[f.offset : f.offset + f.type.size])
            for f in self.fields.values()
        }
        return self.cls(**values) if self.cls is not None else values

    def pack(self, value: Any) -> bytes:
        """The bytes of an instance (or a mapping) of this struct."""
        out = bytearray(self.size)
        for f in self.fields.values():
            v = value[f.name] if isinstance(value, dict) else getattr(value, f.name)
            if isinstance(f.type, IntType):
                out[f.offset : f.offset + f.type.size] = f.type.pack(v)
            elif isinstance(v, (bytes, bytearray)):
                b = bytes(v)[: f.type.size]
                out[f.offset : f.offset + len(b)] = b
        return bytes(out)


def cstr(data: bytes) -> str:
    """A C string held in bytes (a comm, a path): up to the first NUL, decoded."""
    return bytes(data).split(b"\0", 1)[0].decode(errors="replace")


def unpack(t: Type, data: bytes) -> Any:
    """The Python value of ``data`` read as type ``t``."""
    if isinstance(t, (IntType, ArrayType, StructType)):
        return t.unpack(data)
    raise TypeError(f"cannot decode {t!r}")


def pack(t: Type, value: Any) -> bytes:
    """``value`` as the bytes of type ``t``."""
    if isinstance(t, IntType):
        return t.pack(int(value))
    if isinstance(t, StructType):
        return t.pack(value)
    if isinstance(t, ArrayType) and isinstance(value, (bytes, bytearray)):
        return bytes(value[: t.size]).ljust(t.size, b"\0")
    raise TypeError(f"cannot encode {value!r} as {t!r}")


def resolve_annotation(ann: Any, namespace: dict[str, Any]) -> Type:
    """A type from an annotation (an object, or a string under ``from __future__ import
    annotations``), looked up in ``namespace``."""
    if isinstance(ann, str):
        ann = eval(ann, dict(namespace))  # noqa: S307 - the user's own annotation
    t = bpf_type(ann)
    if t is None:
        raise TypeError(f"{ann!r} is not a BPF type (u8..u64, i8..i64, T[N] or a @struct class)")
    return t


def bpf_type(obj: Any) -> Type | None:
    """The :class:`Type` an object stands for (a @struct class stands for its StructType)."""
    if isinstance(obj, Type):
        return obj
    t = getattr(obj, "__bpf_type__", None)
    return t if isinstance(t, Type) else None


def struct(cls: type) -> type:
    """Declare a C struct: ``@struct class Event: pid: u32; comm: u8[16]``.

    The class keeps working in Python: ``Event(pid=1, comm=b"sh")`` builds an instance,
    ``Event.unpack(data)`` decodes bytes, ``Event.size`` is ``sizeof``.
    """
    # The annotations are evaluated where the class is written (its module, or the
    # globals of the code that ran the decorator when that is not a module: exec()).
    namespace = dict(sys._getframe(1).f_globals)
    module = sys.modules.get(cls.__module__)
    if module is not None and cls.__module__ != "builtins":
        namespace.update(vars(module))
    namespace.update(vars(cls))
    fields = [
        (name, resolve_annotation(ann, namespace))
        for name, ann in cls.__dict__.get("__annotations__", {}).items()
    ]
    st = StructType(cls.__name__, fields, cls)
    names = list(st.fields)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__} takes at most {len(names)} values")
        for name, value in zip(names, args, strict=False):
            kwargs[name] = value
        for name in names:
            f = st.fields[name]
            default = b"" if isinstance(f.type, ArrayType) else 0
            setattr(self, name, kwargs.pop(name, default))
        if kwargs:
            raise TypeError(f"{cls.__name__} has no field {next(iter(kwargs))!r}")

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{cls.__name__}({inner})"

    def __eq__(self: Any, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, n) == getattr(other, n) for n in names
        )

    cls.__init__ = __init__  # type: ignore[misc]
    cls.__repr__ = __repr__  # type: ignore[assignment,method-assign]
    cls.__eq__ = __eq__  # type: ignore[assignment,method-assign]
    cls.__hash__ = None  # type: ignore[assignment]
    cls.__bpf_type__ = st  # type: ignore[attr-defined]
    cls.size = st.size  # type: ignore[attr-defined]
    cls.unpack = staticmethod(st.unpack)  # type: ignore[attr-defined]
    cls.pack = lambda self: st.pack(self)  # type: ignore[attr-defined]
    return cls
