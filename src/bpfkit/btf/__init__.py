"""BTF: the BPF Type Format of ``.BTF``, ``.BTF.ext`` and /sys/kernel/btf/vmlinux.

API::

    parse_btf(data, *, big_endian=False, base=None) -> Btf
        btf.types            list of types, index = type id (types[0] is void)
        btf.type(id)         one type (frozen dataclasses of bpfkit.btf.types: Int, Ptr,
                             Array, Struct, Union, Enum, Enum64, Fwd, Typedef, Volatile,
                             Const, Restrict, Func, FuncProto, Var, Datasec, Float,
                             DeclTag, TypeTag)
        btf.find(name, kind=None) / btf.find_all(name, kind=None)
                             by name; kind is a Kind or "struct", "union", "enum", ...
        btf.resolve(id)      skip typedefs and const/volatile/restrict/type tags
        btf.size_of(id)      size in bytes (arrays multiply, pointers are 8)
        btf.format(id, name="")  C-like text: "struct foo", "unsigned int", "char[16]"
    parse_btf_ext(data, *, big_endian=False, btf=None) -> BtfExt
        func_info / line_info / core_relos: records by section name (names need ``btf``)
    load_vmlinux(path="/sys/kernel/btf/vmlinux") -> Btf   the running kernel's types (cached)
    read_vmlinux(path=...) -> bytes                      its bytes (for name indexes)
    bpfkit.btf.parse.name_index(data, kinds) -> {(kind, name): id}   names without parsing
    bpfkit.btf.encode.encode_btf(types, ...) -> bytes   writing BTF (the one encoder)
    decode_value(btf, type_id, data, *, big_endian=None) -> Any
        bytes of a typed value (map key/value, global) as ints, strs, lists and dicts
    bpfkit.btf.dump.dump_raw(btf) -> str    the text of `bpftool btf dump file X`
    bpfkit.btf.cdecl.define(btf, id) -> str  C definition ("struct point {...};"), bpftool style

Errors are :class:`bpfkit.errors.BtfError`, saying what is malformed and where.
"""

from __future__ import annotations

import functools

from bpfkit.btf.btf import Btf, parse_btf
from bpfkit.btf.ext import BtfExt, CoreRelo, FuncInfo, LineInfo, parse_btf_ext
from bpfkit.btf.types import Kind
from bpfkit.btf.values import decode_value
from bpfkit.errors import BtfError

VMLINUX = "/sys/kernel/btf/vmlinux"


def read_vmlinux(path: str = VMLINUX) -> bytes:
    """The bytes of the running kernel's BTF (or of the BTF file at ``path``)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise BtfError(
            f"{path}: cannot read kernel BTF ({e.strerror or e}); the kernel needs "
            "CONFIG_DEBUG_INFO_BTF=y"
        ) from e


@functools.cache
def load_vmlinux(path: str = VMLINUX) -> Btf:
    """The running kernel's BTF (or the base BTF file at ``path``).

    Read once per path and process and shared, so treat it as read-only.  Types are
    decoded when first asked for (:class:`bpfkit.btf.lazy.LazyBtf`): decoding all of a
    distribution kernel's takes about a second, a CO-RE relocation needs a few dozen.
    """
    from bpfkit.btf.lazy import LazyBtf

    return LazyBtf(read_vmlinux(path), path)


__all__ = [
    "Btf",
    "BtfExt",
    "CoreRelo",
    "FuncInfo",
    "Kind",
    "LineInfo",
    "decode_value",
    "load_vmlinux",
    "read_vmlinux",
    "parse_btf",
    "parse_btf_ext",
]
