"""``struct __bpf_usdt_spec``: how libbpf's ``usdt.bpf.h`` wants a probe's arguments laid
out in its ``__bpf_usdt_specs`` map (pure).

The layout is read from the object's BTF (the map's value type), so the usdt.bpf.h the
program was compiled with decides: libbpf 1.1 (Debian 12) has ``args[12]`` of
``{u64 val_off; enum arg_type; short reg_off; bool arg_signed; char arg_bitshift}``,
then ``u64 usdt_cookie`` and ``short arg_cnt``; later versions pack ``arg_type`` in 8
bits beside ``idx_reg_off`` and ``scale_bitshift`` (for base+index*scale arguments).
Without BTF, libbpf 1.1's layout is used.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpfkit.btf import types as T
from bpfkit.btf.btf import Btf
from bpfkit.errors import ObjectError
from bpfkit.obj.usdt import ARG_SIB, ArgSpec

# (bit offset, bit size) of each member of struct __bpf_usdt_arg_spec.
Fields = dict[str, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class SpecLayout:
    """Where each piece of ``struct __bpf_usdt_spec`` goes (byte and bit offsets)."""

    size: int
    args_offset: int
    arg_size: int
    max_args: int
    arg_fields: Fields
    cookie: tuple[int, int]  # (bit offset, bits)
    arg_cnt: tuple[int, int]


LIBBPF_1_1 = SpecLayout(
    size=208,
    args_offset=0,
    arg_size=16,
    max_args=12,
    arg_fields={
        "val_off": (0, 64),
        "arg_type": (64, 32),
        "reg_off": (96, 16),
        "arg_signed": (112, 8),
        "arg_bitshift": (120, 8),
    },
    cookie=(192 * 8, 64),
    arg_cnt=(200 * 8, 16),
)


def _struct(btf: Btf, type_id: int, what: str) -> T.Struct:
    t = btf.resolve(type_id)
    if not isinstance(t, T.Struct) or isinstance(t, T.Union):
        raise ObjectError(f"{what} is not a struct in the object's BTF")
    return t


def _bits(btf: Btf, m: T.Member) -> tuple[int, int]:
    return m.bit_offset, m.bitfield_size or 8 * btf.size_of(m.type)


def layout_from_btf(btf: Btf | None, value_type_id: int | None) -> SpecLayout:
    """The layout of the specs map's value type (libbpf 1.1's without BTF)."""
    if btf is None or not value_type_id:
        return LIBBPF_1_1
    what = "__bpf_usdt_specs' value (struct __bpf_usdt_spec)"
    spec = _struct(btf, value_type_id, what)
    members = {m.name: m for m in spec.members}
    for need in ("args", "usdt_cookie", "arg_cnt"):
        if need not in members:
            raise ObjectError(f"{what} has no member {need!r}: not libbpf's usdt.bpf.h?")
    args = btf.resolve(members["args"].type)
    if not isinstance(args, T.Array):
        raise ObjectError(f"{what}: member 'args' is not an array")
    arg = _struct(btf, args.type, "struct __bpf_usdt_arg_spec")
    fields = {m.name: _bits(btf, m) for m in arg.members if m.name}
    for need in ("val_off", "arg_type", "reg_off", "arg_signed", "arg_bitshift"):
        if need not in fields:
            raise ObjectError(f"struct __bpf_usdt_arg_spec has no member {need!r}")
    return SpecLayout(
        size=spec.size,
        args_offset=members["args"].bit_offset // 8,
        arg_size=arg.size,
        max_args=args.nelems,
        arg_fields=fields,
        cookie=_bits(btf, members["usdt_cookie"]),
        arg_cnt=_bits(btf, members["arg_cnt"]),
    )


def _put(acc: int, value: int, where: tuple[int, int]) -> int:
    offset, bits = where
    mask = (1 << bits) - 1
    return acc | ((value & mask) << offset)


def encode_spec(args: tuple[ArgSpec, ...], cookie: int, layout: SpecLayout, where: str) -> bytes:
    """``struct __bpf_usdt_spec`` for ``args`` and the user's ``cookie`` (little endian)."""
    if len(args) > layout.max_args:
        raise ObjectError(
            f"{where}: {len(args)} USDT arguments, but the program's usdt.bpf.h takes at "
            f"most {layout.max_args}"
        )
    acc = 0
    f = layout.arg_fields
    for i, a in enumerate(args):
        one = _put(0, a.val_off, f["val_off"])
        one = _put(one, a.kind, f["arg_type"])
        one = _put(one, a.reg_off, f["reg_off"])
        one = _put(one, int(a.signed), f["arg_signed"])
        one = _put(one, a.bitshift, f["arg_bitshift"])
        if a.kind == ARG_SIB:
            if "idx_reg_off" not in f or "scale_bitshift" not in f:
                raise ObjectError(
                    f"{where}: USDT argument #{i} {a.text!r} uses base+index*scale, which "
                    "the program's usdt.bpf.h (libbpf before 1.6) cannot read; build the "
                    "program against a newer libbpf or the binary without that form"
                )
            one = _put(one, a.index_reg_off, f["idx_reg_off"])
            one = _put(one, a.scale.bit_length() - 1, f["scale_bitshift"])
        acc |= one << (8 * (layout.args_offset + i * layout.arg_size))
    acc = _put(acc, cookie, layout.cookie)
    acc = _put(acc, len(args), layout.arg_cnt)
    return acc.to_bytes(layout.size, "little")
