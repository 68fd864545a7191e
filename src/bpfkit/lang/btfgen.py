"""The ``.BTF`` and ``.BTF.ext`` a compiled Python program carries (uapi ``linux/btf.h``).

``.BTF`` describes the maps as libbpf's ``__uint``/``__type`` macros do (a struct of
pointer members per map, its ``VAR``, ``DATASEC .maps``), each program as a ``FUNC``
(``int name(void *ctx)``), the maps' key and value types and the local view of kernel
structs used through CO-RE.  ``.BTF.ext`` holds func_info, line_info (the Python file and
line, so verifier errors and ``bpfkit explain`` show Python source) and CO-RE relocations.

Types are :mod:`bpfkit.btf.types` objects written by the one BTF encoder
(:func:`bpfkit.btf.encode.encode_btf`); the strings ``.BTF.ext`` refers to are put in the
string section first, so their offsets hold after encoding.
"""

from __future__ import annotations

import struct

from bpfkit.btf import types as T
from bpfkit.btf.encode import encode_btf
from bpfkit.lang.types import ArrayType, IntType, StructType, Type

MAGIC = 0xEB9F
FUNC_GLOBAL = 1
VAR_GLOBAL = 1


class BtfBuilder:
    """The types of one object, numbered from 1, and the strings .BTF.ext needs."""

    def __init__(self) -> None:
        self.types: list[T.Type] = []
        self.strings = bytearray(b"\0")
        self._names: dict[str, int] = {"": 0}
        self._cache: dict[object, int] = {}

    def name(self, text: str) -> int:
        """The string-table offset of ``text`` (for .BTF.ext records)."""
        if text not in self._names:
            self._names[text] = len(self.strings)
            self.strings += text.encode() + b"\0"
        return self._names[text]

    def add(self, t: T.Type, key: object = None) -> int:
        """Add ``t`` (its id is set here); with ``key``, equal keys share one type."""
        if key is not None and key in self._cache:
            return self._cache[key]
        type_id = len(self.types) + 1
        self.types.append(_with_id(t, type_id))
        if key is not None:
            self._cache[key] = type_id
        return type_id

    def reserve(self) -> int:
        """An id for a type given later with :meth:`fill` (self-referencing structs)."""
        return self.add(T.Void(0, ""))

    def fill(self, type_id: int, t: T.Type) -> None:
        self.types[type_id - 1] = _with_id(t, type_id)

    def int_type(self, name: str, size: int, signed: bool) -> int:
        enc = T.INT_SIGNED if signed else 0
        return self.add(T.Int(0, name, size, enc, 0, size * 8), ("int", name))

    def ptr(self, target: int) -> int:
        return self.add(T.Ptr(0, "", target), ("ptr", target))

    def array(self, elem: int, count: int) -> int:
        index = self.int_type("__ARRAY_SIZE_TYPE__", 4, False)
        return self.add(T.Array(0, "", elem, index, count), ("array", elem, count))

    def struct_type(
        self, name: str, members: list[tuple[str, int, int]], size: int, key: object = None
    ) -> int:
        """``members``: (name, type id, bit offset)."""
        ms = tuple(T.Member(n, t, bits) for n, t, bits in members)
        return self.add(T.Struct(0, name, size, ms), key)

    def func_proto(self, ret: int, params: list[tuple[str, int]]) -> int:
        ps = tuple(T.Param(n, t) for n, t in params)
        return self.add(T.FuncProto(0, "", ret, ps))

    def func(self, name: str, proto: int) -> int:
        return self.add(T.Func(0, name, proto, FUNC_GLOBAL))

    def var(self, name: str, type_id: int) -> int:
        return self.add(T.Var(0, name, type_id, VAR_GLOBAL))

    def datasec(self, name: str, entries: list[tuple[int, int, int]], size: int) -> int:
        vs = tuple(T.VarSecinfo(v, off, n) for v, off, n in entries)
        return self.add(T.Datasec(0, name, size, vs))

    # --- bpfkit.lang types -------------------------------------------------------------

    def of(self, t: Type) -> int:
        """The id of a lang type (ints are named ``__u32``, ``__s64``, ... as in C)."""
        if isinstance(t, IntType):
            cname = f"__{'s' if t.signed else 'u'}{t.bits}"
            return self.int_type(cname, t.size, t.signed)
        if isinstance(t, ArrayType):
            if isinstance(t.elem, IntType) and t.elem.size == 1:
                elem = self.int_type("char" if t.elem.signed else "unsigned char", 1, t.elem.signed)
            else:
                elem = self.of(t.elem)
            return self.array(elem, t.count)
        if isinstance(t, StructType):
            key = ("struct", id(t))
            if key in self._cache:
                return self._cache[key]
            members = [(f.name, self.of(f.type), f.offset * 8) for f in t.fields.values()]
            return self.struct_type(t.name, members, t.size, key)
        raise TypeError(f"no BTF for {t!r}")

    def blob(self) -> bytes:
        """The ``.BTF`` section (types after the strings .BTF.ext refers to)."""
        return encode_btf(self.types, strings=bytes(self.strings))


def _with_id(t: T.Type, type_id: int) -> T.Type:
    import dataclasses

    return dataclasses.replace(t, id=type_id)


def ext_blob(
    func_info: dict[str, list[tuple[int, int]]],
    line_info: dict[str, list[tuple[int, int, int, int]]],
    core: dict[str, list[tuple[int, int, int, int]]],
    btf: BtfBuilder,
) -> bytes:
    """``.BTF.ext``: func_info (insn byte offset, FUNC id), line_info (offset, file name
    offset, line text offset, line << 10 | column) and CO-RE relocations (offset, type id,
    access string offset, kind), each keyed by section name."""

    def block(recs: dict[str, list[tuple[int, ...]]], size: int, fmt: str) -> bytes:
        out = struct.pack("<I", size)
        for sec, rows in recs.items():
            if not rows:
                continue
            out += struct.pack("<2I", btf.name(sec), len(rows))
            for r in rows:
                out += struct.pack(fmt, *r)
        return out

    fi = block(func_info, 8, "<2I")  # type: ignore[arg-type]
    li = block(line_info, 16, "<4I")  # type: ignore[arg-type]
    cr = block(core, 16, "<4I")  # type: ignore[arg-type]
    hdr_len = 32
    header = struct.pack(
        "<HBBI6I", MAGIC, 1, 0, hdr_len, 0, len(fi), len(fi), len(li), len(fi) + len(li), len(cr)
    )
    return header + fi + li + cr


def directives(section: str, blob: bytes) -> str:
    """``blob`` as an assembler section of ``.byte`` lines."""
    lines = [f'\t.section\t{section},"",@progbits']
    for i in range(0, len(blob), 32):
        lines.append("\t.byte\t" + ",".join(str(b) for b in blob[i : i + 32]))
    return "\n".join(lines) + "\n"
