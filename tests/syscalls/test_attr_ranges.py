"""Every value put into a uapi structure is range-checked: too big or negative raises one
clear KernelError instead of being truncated by ctypes."""

from __future__ import annotations

import ctypes

import pytest

from bpfkit.errors import KernelError
from bpfkit.syscalls import attrs
from bpfkit.syscalls.perf import PerfEventAttr

STRUCTS = [
    getattr(attrs, n)
    for n in dir(attrs)
    if isinstance(getattr(attrs, n), type)
    and issubclass(getattr(attrs, n), attrs.Checked)
    and getattr(attrs, n) is not attrs.Checked
] + [PerfEventAttr]


def _int_fields(cls: type[ctypes.Structure]) -> list[tuple[str, int]]:
    """(name, bits) of the integer fields."""
    out = []
    for f in cls._fields_:
        if len(f) == 3:
            out.append((f[0], f[2]))  # type: ignore[misc]
        elif f[1] in (ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64):
            out.append((f[0], 8 * ctypes.sizeof(f[1])))
    return out


def test_map_create_value_size_is_not_truncated() -> None:
    """The defect: 0x100010000 became 65536 and a map of the wrong size was created."""
    with pytest.raises(KernelError, match=r"MapCreateAttr.value_size = 4295032832: out of range"):
        attrs.MapCreateAttr(value_size=0x100010000)
    assert attrs.MapCreateAttr(value_size=0xFFFF_FFFF).value_size == 0xFFFF_FFFF


@pytest.mark.parametrize("cls", STRUCTS, ids=lambda c: c.__name__)
def test_every_integer_field_refuses_what_does_not_fit(cls: type[ctypes.Structure]) -> None:
    fields = _int_fields(cls)
    assert fields
    for name, bits in fields:
        s = cls()
        setattr(s, name, (1 << bits) - 1)  # the largest value fits
        assert getattr(s, name) == (1 << bits) - 1
        for bad in (1 << bits, -1):
            with pytest.raises(KernelError, match=f"{cls.__name__}.{name} = "):
                setattr(s, name, bad)
            with pytest.raises(KernelError):
                cls(**{name: bad})
