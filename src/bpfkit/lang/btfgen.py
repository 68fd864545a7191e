"""The ``.BTF`` and ``.BTF.ext`` a compiled Python program carries (uapi ``linux/btf.h``).

``.BTF`` describes the maps as libbpf's ``__uint``/``__type`` macros do (a struct of
pointer members per map, its ``VAR``, ``DATASEC .maps``), the global data sections, each
program as a ``FUNC`` (``int name(void *ctx)``), and the local view of kernel structs used
through CO-RE.  ``.BTF.ext`` holds func_info, line_info (the Python file and line, so
verifier errors and ``bpfkit explain`` show Python source) and CO-RE relocations.

Written here until btf/ has the one BTF encoder; both are plain byte layouts of the uapi.
"""

from __future__ import annotations

import struct

from bpfkit.lang.types import ArrayType, IntType, StructType, Type

MAGIC = 0xEB9F
KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT = 1, 2, 3, 4
KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC = 12, 13, 14, 15
FUNC_GLOBAL = 1
VAR_GLOBAL = 1


class BtfBuilder:
    """A BTF blob being built (little-endian: this machine's order)."""

    def __init__(self) -> None:
        self.types: list[bytes] = []
        self.strings = bytearray(b"\0")
        self._names: dict[str, int] = {"": 0}
        self._cache: dict[object, int] = {}

    def name(self, text: str) -> int:
        """The string-table offset of ``text`` (added once)."""
        if text not in self._names:
            self._names[text] = len(self.strings)
            self.strings += text.encode() + b"\0"
        return self._names[text]

    def _add(self, data: bytes, key: object = None) -> int:
        if key is not None and key in self._cache:
            return self._cache[key]
        self.types.append(data)
        if key is not None:
            self._cache[key] = len(self.types)
        return len(self.types)

    def _head(self, name: str, kind: int, vlen: int, size_or_type: int, kflag: int = 0) -> bytes:
        info = kflag << 31 | kind << 24 | vlen
        return struct.pack("<3I", self.name(name), info, size_or_type)

    def reserve(self) -> int:
        """An id for a type whose bytes :meth:`fill` gives later (self-referencing structs)."""
        self.types.append(b"")
        return len(self.types)

    def fill(self, type_id: int, data: bytes) -> None:
        self.types[type_id - 1] = data

    def head(self, name: str, kind: int, vlen: int, size_or_type: int) -> bytes:
        """A ``struct btf_type`` header."""
        return self._head(name, kind, vlen, size_or_type)

    def int_type(self, name: str, size: int, signed: bool) -> int:
        enc = (1 if signed else 0) << 24 | size * 8
        return self._add(
            self._head(name, KIND_INT, 0, size) + struct.pack("<I", enc), ("int", name)
        )

    def ptr(self, target: int) -> int:
        return self._add(self._head("", KIND_PTR, 0, target), ("ptr", target))

    def array(self, elem: int, count: int) -> int:
        index = self.int_type("__ARRAY_SIZE_TYPE__", 4, False)
        data = self._head("", KIND_ARRAY, 0, 0) + struct.pack("<3I", elem, index, count)
        return self._add(data, ("array", elem, count))

    def struct_type(
        self, name: str, members: list[tuple[str, int, int]], size: int, key: object = None
    ) -> int:
        """``members``: (name, type id, bit offset)."""
        data = self._head(name, KIND_STRUCT, len(members), size)
        for mname, mtype, bits in members:
            data += struct.pack("<3I", self.name(mname), mtype, bits)
        return self._add(data, key)

    def func_proto(self, ret: int, params: list[tuple[str, int]]) -> int:
        data = self._head("", KIND_FUNC_PROTO, len(params), ret)
        for pname, ptype in params:
            data += struct.pack("<2I", self.name(pname), ptype)
        return self._add(data)

    def func(self, name: str, proto: int) -> int:
        return self._add(self._head(name, KIND_FUNC, FUNC_GLOBAL, proto))

    def var(self, name: str, type_id: int) -> int:
        return self._add(self._head(name, KIND_VAR, 0, type_id) + struct.pack("<I", VAR_GLOBAL))

    def datasec(self, name: str, entries: list[tuple[int, int, int]], size: int) -> int:
        data = self._head(name, KIND_DATASEC, len(entries), size)
        for var_id, offset, vsize in entries:
            data += struct.pack("<3I", var_id, offset, vsize)
        return self._add(data)

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
        type_data = b"".join(self.types)
        header = struct.pack(
            "<HBBIIIII", MAGIC, 1, 0, 24, 0, len(type_data), len(type_data), len(self.strings)
        )
        return header + type_data + bytes(self.strings)


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
