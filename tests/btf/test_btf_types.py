"""Every BTF kind's class behaves as a frozen, slotted dataclass of its own: the kinds that
add no field to their base (Ptr, Union, Enum64, ...) share the base's generated methods,
and must still compare, print, copy, hash and pickle as themselves."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from bpfkit.btf import types as T

SAMPLES: list[T.Type] = [
    T.Void(0, ""),
    T.Int(1, "int", 4, T.INT_SIGNED, 0, 32),
    T.Ptr(2, "", 1),
    T.Typedef(3, "s32", 1),
    T.Volatile(4, "", 1),
    T.Const(5, "", 1),
    T.Restrict(6, "", 2),
    T.TypeTag(7, "user", 2),
    T.Array(8, "", 1, 1, 4),
    T.Struct(9, "s", 4, (T.Member("a", 1, 0),)),
    T.Union(10, "s", 4, (T.Member("a", 1, 0),)),
    T.Enum(11, "e", 4, (T.EnumValue("A", 1),)),
    T.Enum64(12, "e", 4, (T.EnumValue("A", 1),)),
    T.Fwd(13, "f", False),
    T.Func(14, "f", 15, 1),
    T.FuncProto(15, "", 1, (T.Param("x", 1),)),
    T.Var(16, "v", 1, 1),
    T.Datasec(17, ".data", 4, (T.VarSecinfo(16, 0, 4),)),
    T.Float(18, "double", 8),
    T.DeclTag(19, "tag", 16, -1),
]


def test_every_kind_has_a_sample() -> None:
    assert {t.kind for t in SAMPLES} == set(T.Kind)


@pytest.mark.parametrize("t", SAMPLES, ids=lambda t: type(t).__name__)
def test_each_kind_is_a_frozen_slotted_dataclass_of_its_own(t: T.Type) -> None:
    cls = type(t)
    assert dataclasses.is_dataclass(t)
    assert repr(t).startswith(f"{cls.__name__}(id={t.id}, ")
    assert not hasattr(t, "__dict__")  # slotted all the way down
    with pytest.raises(AttributeError):
        t.name = "other"  # type: ignore[misc]
    # (Python 3.11's frozen slotted dataclasses say TypeError here, from their __setattr__.)
    with pytest.raises((AttributeError, TypeError)):
        t.extra = 1  # type: ignore[attr-defined]
    copy = dataclasses.replace(t, name="renamed")
    assert type(copy) is cls and copy.name == "renamed" and copy != t
    assert dataclasses.replace(t) == t and hash(dataclasses.replace(t)) == hash(t)
    back = pickle.loads(pickle.dumps(t))
    assert type(back) is cls and back == t
    assert t.kind == cls.KIND


def test_kinds_with_the_same_fields_are_not_equal() -> None:
    ptr, typedef = T.Ptr(2, "", 1), T.Typedef(2, "", 1)
    assert ptr != typedef and typedef != ptr
    assert T.Struct(1, "s", 4, ()) != T.Union(1, "s", 4, ())
    assert T.Enum(1, "e", 4, ()) != T.Enum64(1, "e", 4, ())
