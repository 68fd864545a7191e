"""A whole BTF as a C header, as ``bpftool btf dump file FILE format c`` writes it (the
``vmlinux.h`` of BPF programs): libbpf's ``btf_dump`` rules as Debian 12's bpftool has
them (the libbpf of Linux 6.1 with its stable fixes: ``(void)`` for empty argument lists,
but no ``mode(byte)``/``mode(word)`` on odd-sized enums), followed so that the text is
byte for byte bpftool's.

- Order: each type is put after what it needs (a depth-first walk from every type in id
  order): a struct or union embedded by value must be defined first, one reached only
  through a pointer may be forward-declared (``struct x;``); anonymous types are written
  inline, so what they embed comes first too.  Enums and forward declarations are
  top-level when named, or when nothing refers to them.
- Names: a struct, union or enum name seen again gets ``___2``, ``___3``... in the order
  the names are first written; typedef names and enumerators share a second namespace.
- Layout: where natural alignment does not explain a member's offset, explicit padding
  (``long: 64;``, ``int: 0;``...) or ``__attribute__((packed))`` is written.

:func:`c_header` returns the text; :func:`definition` one type's definition by the same
rules (what :func:`bpfkit.btf.cdecl.define` prints for ``btf --find NAME --c``).
"""

from __future__ import annotations

import sys

from bpfkit.btf import types as T
from bpfkit.btf.btf import Btf
from bpfkit.btf.types import Kind
from bpfkit.errors import BtfError

_HEAD = (
    "#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\n"
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
    "#pragma clang attribute push (__attribute__((preserve_access_index)), "
    "apply_to = record)\n#endif\n\n"
)
_TAIL = (
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n"
    "#endif /* __VMLINUX_H__ */\n"
)

_NOT, _BUSY, _DONE = 0, 1, 2  # ordering / emitting states
_EINVAL = -22
_MAX_RESOLVE_DEPTH = 32
_MODS = (Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG)
_LONG_NAMES = {
    "long",
    "long int",
    "int long",
    "unsigned long",
    "long unsigned",
    "unsigned long int",
    "unsigned int long",
    "long unsigned int",
    "long int unsigned",
    "int unsigned long",
    "int long unsigned",
}
# GCC's internal Arm SIMD types, aliased to base types before use.
_MISSING_BASE_TYPES = {
    "__Poly8_t": "unsigned char",
    "__Poly16_t": "unsigned short",
    "__Poly64_t": "unsigned long long",
    "__Poly128_t": "unsigned __int128",
}


def c_header(btf: Btf) -> str:
    """Every type of ``btf`` as C, in bpftool's ``format c`` layout (header guard and
    ``preserve_access_index`` pragma included).  BtfError on a type cycle no forward
    declaration can break (where bpftool stops too)."""
    dumper = _Dumper(btf)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000 + 4 * len(btf.types)))
    try:
        for type_id in range(1, len(btf.types)):
            dumper.dump_type(type_id)
    finally:
        sys.setrecursionlimit(limit)
    return _HEAD + "".join(dumper.out) + _TAIL


def _pfx(lvl: int) -> str:
    return "\t" * min(lvl, 13)


def _roundup(x: int, y: int) -> int:
    return (x + y - 1) // y * y


def definition(btf: Btf, type_id: int) -> str | None:
    """The C definition of one struct, union, enum, typedef or forward declaration as
    :func:`c_header` writes it (padding members and ``__attribute__((packed))`` included,
    anonymous member types inline), without the final ``;``, with names as the BTF has them
    (the ``___2`` suffixes belong to a whole header); None for other kinds."""
    global _plain
    if _plain is None or _plain[0] is not btf:
        _plain = (btf, _Dumper(btf, plain_names=True))
    dumper = _plain[1]
    t = btf.type(type_id)
    dumper.out = []
    try:
        if isinstance(t, T.Struct):
            dumper._struct_def(type_id, t, 0)
        elif isinstance(t, T.Enum):
            dumper._enum_def(type_id, t, 0)
        elif isinstance(t, T.Typedef):
            dumper._typedef_def(type_id, t, 0)
        elif isinstance(t, T.Fwd):
            dumper._fwd_def(type_id, t)
        else:
            return None
    except RecursionError:
        raise BtfError(f"{btf.what}: type {type_id} contains itself") from None
    return "".join(dumper.out)


_plain: tuple[Btf, _Dumper] | None = None  # definition()'s dumper for the last BTF it saw


class _Dumper:
    def __init__(self, btf: Btf, *, plain_names: bool = False) -> None:
        self.plain_names = plain_names  # one definition alone: no ___2 suffixes
        self.types = btf.types
        n = len(self.types)
        self.order = bytearray(n)
        self.emit = bytearray(n)
        self.fwd_emitted = bytearray(n)
        self.referenced = bytearray(n)
        self.names: dict[int, str] = {}
        self.type_names: dict[str, int] = {}
        self.ident_names: dict[str, int] = {}
        self.out: list[str] = []
        self.queue: list[int] = []
        self.ptr_sz = self._pointer_size()
        self.order[0] = _DONE
        self.emit[0] = _DONE
        if not plain_names:  # only ordering a whole header needs it
            self._mark_referenced()

    def _pointer_size(self) -> int:
        for t in self.types:
            if isinstance(t, T.Int) and t.name in _LONG_NAMES and t.size in (4, 8):
                return t.size
        return 8

    def _mark_referenced(self) -> None:
        ref = self.referenced
        for t in self.types[1:]:
            if isinstance(t, T.Ref | T.Func | T.Var | T.DeclTag):
                ref[t.type] = 1
            elif isinstance(t, T.Array):
                ref[t.index_type] = 1
                ref[t.type] = 1
            elif isinstance(t, T.Struct):
                for m in t.members:
                    ref[m.type] = 1
            elif isinstance(t, T.FuncProto):
                for p in t.params:
                    ref[p.type] = 1
            elif isinstance(t, T.Datasec):
                for v in t.vars:
                    ref[v.type] = 1

    # --- ordering -------------------------------------------------------------------

    def dump_type(self, type_id: int) -> None:
        self.queue = []
        if self._order(type_id, False) < 0:
            raise BtfError(f"unsatisfiable type cycle at type id {type_id}")
        for qid in self.queue:
            self._emit(qid, 0)

    def _order(self, type_id: int, through_ptr: bool) -> int:
        """1: a strong link (must be defined before), 0: weak (a forward declaration
        does), <0: an error."""
        state = self.order[type_id]
        if state == _DONE:
            return 1
        t = self.types[type_id]
        k = t.KIND
        if state == _BUSY:
            if k in (Kind.STRUCT, Kind.UNION) and through_ptr and t.name:
                return 0
            return -40  # ELOOP
        if k in (Kind.INT, Kind.FLOAT):
            self.order[type_id] = _DONE
            return 0
        if k == Kind.PTR:
            assert isinstance(t, T.Ptr)
            err = self._order(t.type, True)
            self.order[type_id] = _DONE
            return err
        if k == Kind.ARRAY:
            assert isinstance(t, T.Array)
            return self._order(t.type, False)
        if k in (Kind.STRUCT, Kind.UNION):
            assert isinstance(t, T.Struct)
            if through_ptr and t.name:
                return 0
            self.order[type_id] = _BUSY
            for m in t.members:
                err = self._order(m.type, False)
                if err < 0:
                    return err
            if t.name:
                self.queue.append(type_id)
            self.order[type_id] = _DONE
            return 1
        if k in (Kind.ENUM, Kind.ENUM64, Kind.FWD):
            if t.name or not self.referenced[type_id]:
                self.queue.append(type_id)
            self.order[type_id] = _DONE
            return 1
        if k == Kind.TYPEDEF:
            assert isinstance(t, T.Typedef)
            strong = self._order(t.type, through_ptr)
            if strong < 0:
                return strong
            if through_ptr and not strong:
                return 0
            self.queue.append(type_id)
            self.order[type_id] = _DONE
            return 1
        if k in _MODS:
            assert isinstance(t, T.Ref)
            return self._order(t.type, through_ptr)
        if k == Kind.FUNC_PROTO:
            assert isinstance(t, T.FuncProto)
            err = self._order(t.return_type, through_ptr)
            if err < 0:
                return err
            is_strong = err > 0
            for p in t.params:
                err = self._order(p.type, through_ptr)
                if err < 0:
                    return err
                if err > 0:
                    is_strong = True
            return 1 if is_strong else 0
        if k in (Kind.FUNC, Kind.VAR, Kind.DATASEC, Kind.DECL_TAG):
            self.order[type_id] = _DONE
            return 0
        return _EINVAL

    # --- emitting -------------------------------------------------------------------

    def _emit(self, type_id: int, cont_id: int) -> None:
        state = self.emit[type_id]
        if state == _DONE:
            return
        t = self.types[type_id]
        k = t.KIND
        out = self.out
        if state == _BUSY:
            if self.fwd_emitted[type_id]:
                return
            if k in (Kind.STRUCT, Kind.UNION):
                if type_id == cont_id or not t.name:
                    return
                self._struct_fwd(type_id, t)
                out.append(";\n\n")
                self.fwd_emitted[type_id] = 1
            elif k == Kind.TYPEDEF:
                assert isinstance(t, T.Typedef)
                if t.name != "__builtin_va_list":
                    self._typedef_def(type_id, t, 0)
                    out.append(";\n\n")
                self.fwd_emitted[type_id] = 1
            return
        top_level = cont_id == 0
        if k == Kind.INT:
            name = self._type_name(type_id)
            if name in _MISSING_BASE_TYPES:
                out.append(f"typedef {_MISSING_BASE_TYPES[name]} {name};\n\n")
            self.emit[type_id] = _DONE
        elif k in (Kind.ENUM, Kind.ENUM64):
            assert isinstance(t, T.Enum)
            if top_level:
                self._enum_def(type_id, t, 0)
                out.append(";\n\n")
            self.emit[type_id] = _DONE
        elif k == Kind.PTR or k in _MODS:
            assert isinstance(t, T.Ref)
            self._emit(t.type, cont_id)
        elif k == Kind.ARRAY:
            assert isinstance(t, T.Array)
            self._emit(t.type, cont_id)
        elif k == Kind.FWD:
            assert isinstance(t, T.Fwd)
            self._fwd_def(type_id, t)
            out.append(";\n\n")
            self.emit[type_id] = _DONE
        elif k == Kind.TYPEDEF:
            assert isinstance(t, T.Typedef)
            self.emit[type_id] = _BUSY
            self._emit(t.type, type_id)
            if not self.fwd_emitted[type_id] and t.name != "__builtin_va_list":
                self._typedef_def(type_id, t, 0)
                out.append(";\n\n")
            self.emit[type_id] = _DONE
        elif k in (Kind.STRUCT, Kind.UNION):
            assert isinstance(t, T.Struct)
            self.emit[type_id] = _BUSY
            if top_level or not t.name:
                new_cont = cont_id if not t.name else type_id
                for m in t.members:
                    self._emit(m.type, new_cont)
            elif not self.fwd_emitted[type_id] and type_id != cont_id:
                self._struct_fwd(type_id, t)
                out.append(";\n\n")
                self.fwd_emitted[type_id] = 1
            if top_level:
                self._struct_def(type_id, t, 0)
                out.append(";\n\n")
                self.emit[type_id] = _DONE
            else:
                self.emit[type_id] = _NOT
        elif k == Kind.FUNC_PROTO:
            assert isinstance(t, T.FuncProto)
            self._emit(t.return_type, cont_id)
            for p in t.params:
                self._emit(p.type, cont_id)

    # --- names ----------------------------------------------------------------------

    def _resolve(self, type_id: int, table: dict[str, int]) -> str:
        t = self.types[type_id]
        if not t.name:
            return ""
        name = self.names.get(type_id)
        if name is not None:
            return name
        plain = self.plain_names or t.KIND == Kind.FWD
        if plain or (t.KIND == Kind.ENUM and not t.values):  # type: ignore[attr-defined]
            self.names[type_id] = t.name
            return t.name
        count = table.get(t.name, 0) + 1
        table[t.name] = count
        name = f"{t.name}___{count}" if count > 1 else t.name
        self.names[type_id] = name
        return name

    def _type_name(self, type_id: int) -> str:
        return self._resolve(type_id, self.type_names)

    def _ident_name(self, type_id: int) -> str:
        return self._resolve(type_id, self.ident_names)

    def _name_dups(self, table: dict[str, int], name: str) -> int:
        if self.plain_names:
            return 1
        count = table.get(name, 0) + 1
        table[name] = count
        return count

    # --- sizes and alignment (libbpf's btf__resolve_size, btf__align_of) -------------

    def _align_of(self, type_id: int) -> int:
        t = self.types[type_id]
        k = t.KIND
        if k in (Kind.INT, Kind.ENUM, Kind.ENUM64, Kind.FLOAT):
            return min(self.ptr_sz, int(t.size))  # type: ignore[attr-defined]
        if k == Kind.PTR:
            return self.ptr_sz
        if k == Kind.TYPEDEF or k in _MODS:
            return self._align_of(t.type)  # type: ignore[attr-defined]
        if k == Kind.ARRAY:
            return self._align_of(t.type)  # type: ignore[attr-defined]
        if k in (Kind.STRUCT, Kind.UNION):
            assert isinstance(t, T.Struct)
            max_align = 1
            for m in t.members:
                align = self._align_of(m.type)
                if align <= 0:
                    return align
                max_align = max(max_align, align)
                if m.bitfield_size == 0 and m.bit_offset % (8 * align):
                    return 1
            return 1 if t.size % max_align else max_align
        return _EINVAL

    def _resolve_size(self, type_id: int) -> int:
        nelems = 1
        for _ in range(_MAX_RESOLVE_DEPTH):
            if type_id == 0:
                return _EINVAL
            t = self.types[type_id]
            k = t.KIND
            if k in (
                Kind.INT,
                Kind.STRUCT,
                Kind.UNION,
                Kind.ENUM,
                Kind.ENUM64,
                Kind.DATASEC,
                Kind.FLOAT,
            ):
                return nelems * int(t.size)  # type: ignore[attr-defined]
            if k == Kind.PTR:
                return nelems * self.ptr_sz
            if k in (Kind.TYPEDEF, Kind.VAR, Kind.DECL_TAG) or k in _MODS:
                type_id = t.type  # type: ignore[attr-defined]
            elif k == Kind.ARRAY:
                assert isinstance(t, T.Array)
                nelems *= t.nelems
                type_id = t.type
            else:
                return _EINVAL
        return _EINVAL

    def _packed(self, t: T.Struct) -> bool:
        max_align = 1
        for m in t.members:
            align = self._align_of(m.type)
            if align and m.bitfield_size == 0 and m.bit_offset % (8 * align):
                return True
            max_align = max(align, max_align)
        return bool(t.size % max_align)

    # --- definitions ----------------------------------------------------------------

    def _padding(
        self, cur_off: int, next_off: int, next_align: int, in_bitfield: bool, lvl: int
    ) -> None:
        if cur_off >= next_off:
            return
        pads = (("long", self.ptr_sz * 8), ("int", 32), ("short", 16), ("char", 8))
        out = self.out
        pad_type, pad_bits, new_off = "", 0, 0
        for pad_type, pad_bits in pads:  # noqa: B007 - the type found is used below
            new_off = _roundup(cur_off, pad_bits)
            if new_off <= next_off:
                break
        if cur_off < new_off <= next_off:
            if (
                in_bitfield
                or (new_off == next_off and _roundup(cur_off, next_align * 8) != new_off)
                or (new_off != next_off and next_off - new_off <= new_off - cur_off)
            ):
                bits = new_off - cur_off if in_bitfield else 0
                out.append(f"\n{_pfx(lvl)}{pad_type}: {bits};")
            cur_off = new_off
        while cur_off != next_off:
            bits = min(next_off - cur_off, pad_bits)
            if bits == pad_bits:
                out.append(f"\n{_pfx(lvl)}{pad_type}: {pad_bits};")
                cur_off += bits
                continue
            for pad_type, pad_bits in reversed(pads):
                if pad_bits < bits:
                    continue
                out.append(f"\n{_pfx(lvl)}{pad_type}: {bits};")
                cur_off += bits
                break

    def _struct_fwd(self, type_id: int, t: T.Type) -> None:
        word = "union" if t.KIND == Kind.UNION else "struct"
        name = self._type_name(type_id)
        self.out.append(f"{word}{' ' if t.name else ''}{name}")

    def _struct_def(self, type_id: int, t: T.Struct, lvl: int) -> None:
        out = self.out
        is_struct = t.KIND == Kind.STRUCT
        align = self._align_of(type_id)
        packed = self._packed(t) if is_struct else False
        word = "struct" if is_struct else "union"
        out.append(f"{word}{' ' if t.name else ''}{self._type_name(type_id)} {{")
        off = 0
        prev_bitfield = False
        for m in t.members:
            m_sz = m.bitfield_size
            m_off = m.bit_offset
            m_align = 1 if packed else self._align_of(m.type)
            self._padding(off, m_off, m_align, prev_bitfield and m_sz != 0, lvl + 1)
            out.append(f"\n{_pfx(lvl + 1)}")
            self._type_decl(m.type, m.name, lvl + 1)
            if m_sz:
                out.append(f": {m_sz}")
                off = m_off + m_sz
                prev_bitfield = True
            else:
                off = m_off + max(0, self._resolve_size(m.type)) * 8
                prev_bitfield = False
            out.append(";")
        if is_struct:
            self._padding(off, t.size * 8, align, False, lvl + 1)
        if t.members or t.size:
            out.append(f"\n{_pfx(lvl)}}}")
        else:
            out.append("}")
        if packed:
            out.append(" __attribute__((packed))")

    def _enum_def(self, type_id: int, t: T.Enum, lvl: int) -> None:
        out = self.out
        out.append(f"enum{' ' if t.name else ''}{self._type_name(type_id)}")
        if not t.values:
            return
        out.append(" {")
        wide = t.KIND == Kind.ENUM64
        bits = 64 if wide else 32
        mask = (1 << bits) - 1
        suffix = ("LL" if t.signed else "ULL") if wide else ""
        for v in t.values:
            raw = v.value & mask
            shown = raw - (1 << bits) if t.signed and raw >> (bits - 1) else raw
            dups = self._name_dups(self.ident_names, v.name)
            name = f"{v.name}___{dups}" if dups > 1 else v.name
            out.append(f"\n{_pfx(lvl + 1)}{name} = {shown}{suffix},")
        out.append(f"\n{_pfx(lvl)}}}")

    def _fwd_def(self, type_id: int, t: T.Fwd) -> None:
        name = self._type_name(type_id)
        self.out.append(f"{'union' if t.union else 'struct'} {name}")

    def _typedef_def(self, type_id: int, t: T.Typedef, lvl: int) -> None:
        name = self._ident_name(type_id)
        if t.type == 0 and name == "__gnuc_va_list":
            self.out.append("typedef __builtin_va_list __gnuc_va_list")
            return
        self.out.append("typedef ")
        self._type_decl(t.type, name, lvl)

    # --- declarations (libbpf's decl stack) -----------------------------------------

    def _type_decl(self, type_id: int, fname: str, lvl: int) -> None:
        stack: list[int] = []
        types = self.types
        while True:
            stack.append(type_id)
            if type_id == 0:
                break
            t = types[type_id]
            k = t.KIND
            if k == Kind.PTR or k in _MODS:
                type_id = t.type  # type: ignore[attr-defined]
            elif k == Kind.FUNC_PROTO:
                type_id = t.return_type  # type: ignore[attr-defined]
            elif k == Kind.ARRAY:
                type_id = t.type  # type: ignore[attr-defined]
            else:
                break
        self._chain(stack, fname, lvl)

    def _emit_mods(self, decls: list[int]) -> None:
        words = {Kind.VOLATILE: "volatile ", Kind.CONST: "const ", Kind.RESTRICT: "restrict "}
        while decls:
            word = words.get(self.types[decls[-1]].KIND)
            if word is None:
                return
            self.out.append(word)
            decls.pop()

    def _drop_mods(self, decls: list[int]) -> None:
        while decls and self.types[decls[-1]].KIND in _MODS:
            decls.pop()

    def _name(self, fname: str, last_was_ptr: bool) -> None:
        self.out.append((" " if fname and not last_was_ptr else "") + fname)

    def _chain(self, decls: list[int], fname: str, lvl: int) -> None:
        out = self.out
        last_was_ptr = True
        while decls:
            type_id = decls.pop()
            if type_id == 0:
                self._emit_mods(decls)
                out.append("void")
                last_was_ptr = False
                continue
            t = self.types[type_id]
            k = t.KIND
            if k in (Kind.INT, Kind.FLOAT):
                self._emit_mods(decls)
                out.append(t.name)
            elif k in (Kind.STRUCT, Kind.UNION):
                assert isinstance(t, T.Struct)
                self._emit_mods(decls)
                if not t.name:
                    self._struct_def(type_id, t, lvl)
                else:
                    self._struct_fwd(type_id, t)
            elif k in (Kind.ENUM, Kind.ENUM64):
                assert isinstance(t, T.Enum)
                self._emit_mods(decls)
                if not t.name:
                    self._enum_def(type_id, t, lvl)
                else:
                    out.append(f"enum {self._type_name(type_id)}")
            elif k == Kind.FWD:
                assert isinstance(t, T.Fwd)
                self._emit_mods(decls)
                self._fwd_def(type_id, t)
            elif k == Kind.TYPEDEF:
                self._emit_mods(decls)
                out.append(self._ident_name(type_id))
            elif k == Kind.PTR:
                out.append("*" if last_was_ptr else " *")
            elif k == Kind.VOLATILE:
                out.append(" volatile")
            elif k == Kind.CONST:
                out.append(" const")
            elif k == Kind.RESTRICT:
                out.append(" restrict")
            elif k == Kind.TYPE_TAG:
                self._emit_mods(decls)
                out.append(f' __attribute__((btf_type_tag("{t.name}")))')
            elif k == Kind.ARRAY:
                assert isinstance(t, T.Array)
                self._drop_mods(decls)
                if not decls:
                    self._name(fname, last_was_ptr)
                    out.append(f"[{t.nelems}]")
                    return
                multidim = self.types[decls[-1]].KIND == Kind.ARRAY
                if fname and not last_was_ptr:
                    out.append(" ")
                if not multidim:
                    out.append("(")
                self._chain(decls, fname, lvl)
                if not multidim:
                    out.append(")")
                out.append(f"[{t.nelems}]")
                return
            elif k == Kind.FUNC_PROTO:
                assert isinstance(t, T.FuncProto)
                self._drop_mods(decls)
                if decls:
                    out.append(" (")
                    self._chain(decls, fname, lvl)
                    out.append(")")
                else:
                    self._name(fname, last_was_ptr)
                out.append("(")
                params = t.params
                if not params or (len(params) == 1 and params[0].type == 0):
                    out.append("void)")  # no arguments (or clang's single void one)
                    return
                for i, p in enumerate(params):
                    if i:
                        out.append(", ")
                    if i == len(params) - 1 and p.type == 0:
                        out.append("...")
                        break
                    self._type_decl(p.type, p.name, lvl)
                out.append(")")
                return
            else:
                return
            last_was_ptr = k == Kind.PTR
        self._name(fname, last_was_ptr)
