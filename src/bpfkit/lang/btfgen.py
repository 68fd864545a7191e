"""The ``.BTF`` and ``.BTF.ext`` a compiled Python program carries (uapi ``linux/btf.h``).

``.BTF`` describes the maps as libbpf's ``__uint``/``__type`` macros do (a struct of
pointer members per map, its ``VAR``, ``DATASEC .maps``), the global data sections, each
program as a ``FUNC`` (``int name(void *ctx)``), and the local view of kernel structs used
through CO-RE.  ``.BTF.ext`` holds func_info, line_info (the Python file and line, so
verifier errors and ``bpfkit explain`` show Python source) and CO-RE relocations.

The types are built here; the bytes are written by bpfkit's one BTF encoder
(:mod:`bpfkit.btf.encode`).
"""

from __future__ import annotations

from bpfkit.btf import types as T
from bpfkit.btf.encode import BtfBuilder as _Encoder
from bpfkit.btf.encode import encode_btf_ext
from bpfkit.btf.ext import CoreRelo, FuncInfo, LineInfo
from bpfkit.lang.types import ArrayType, IntType, StructType, Type


class BtfBuilder:
    """A BTF blob being built (little-endian: this machine's order)."""

    def __init__(self) -> None:
        self.out = _Encoder()
        self._cache: dict[object, int] = {}

    def name(self, text: str) -> int:
        """The string-table offset of ``text`` (added once)."""
        return self.out.name(text)

    def reserve(self) -> int:
        """An id for a type that :meth:`fill` gives later (self-referencing structs)."""
        return self.out.reserve()

    def fill(self, type_id: int, t: T.Type) -> None:
        self.out.fill(type_id, t)

    def int_type(self, name: str, size: int, signed: bool) -> int:
        return self.out.add(T.Int(0, name, size, T.INT_SIGNED if signed else 0, 0, size * 8))

    def ptr(self, target: int) -> int:
        return self.out.add(T.Ptr(0, "", target))

    def array(self, elem: int, count: int) -> int:
        index = self.int_type("__ARRAY_SIZE_TYPE__", 4, False)
        return self.out.add(T.Array(0, "", elem, index, count))

    def struct_type(
        self, name: str, members: list[tuple[str, int, int]], size: int, key: object = None
    ) -> int:
        """``members``: (name, type id, bit offset)."""
        if key is not None and key in self._cache:
            return self._cache[key]
        layout = tuple(T.Member(mname, mtype, bits) for mname, mtype, bits in members)
        got = self.out.add(T.Struct(0, name, size, layout), share=False)
        if key is not None:
            self._cache[key] = got
        return got

    def func_proto(self, ret: int, params: list[tuple[str, int]]) -> int:
        proto = T.FuncProto(0, "", ret, tuple(T.Param(n, t) for n, t in params))
        return self.out.add(proto, share=False)

    def func(self, name: str, proto: int, linkage: int = T.Linkage.GLOBAL) -> int:
        return self.out.add(T.Func(0, name, proto, linkage), share=False)

    def var(self, name: str, type_id: int) -> int:
        return self.out.add(T.Var(0, name, type_id, T.Linkage.GLOBAL), share=False)

    def datasec(self, name: str, entries: list[tuple[int, int, int]], size: int) -> int:
        secinfo = tuple(T.VarSecinfo(v, off, n) for v, off, n in entries)
        return self.out.add(T.Datasec(0, name, size, secinfo), share=False)

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
        return self.out.encode()


def ext_blob(
    func_info: dict[str, list[tuple[int, int]]],
    line_info: dict[str, list[tuple[int, int, int, int]]],
    core: dict[str, list[tuple[int, int, int, int]]],
    btf: BtfBuilder,
) -> bytes:
    """``.BTF.ext``: func_info (insn byte offset, FUNC id), line_info (offset, file name
    offset, line text offset, line << 10 | column) and CO-RE relocations (offset, type id,
    access string offset, kind), each keyed by section name."""
    return encode_btf_ext(
        {s: [FuncInfo(*r) for r in rows] for s, rows in func_info.items()},
        {
            s: [LineInfo(off, name, text, pos >> 10, pos & 0x3FF) for off, name, text, pos in rows]
            for s, rows in line_info.items()
        },
        {s: [CoreRelo(*r) for r in rows] for s, rows in core.items()},
        btf.name,
    )


def directives(section: str, blob: bytes) -> str:
    """``blob`` as an assembler section of ``.byte`` lines."""
    lines = [f'\t.section\t{section},"",@progbits']
    for i in range(0, len(blob), 32):
        lines.append("\t.byte\t" + ",".join(str(b) for b in blob[i : i + 32]))
    return "\n".join(lines) + "\n"
