"""Kernel struct access with CO-RE: ``task.real_parent.tgid`` on a kernel pointer.

Each field access becomes ``offset = <imm>`` carrying a FIELD_BYTE_OFFSET relocation,
then ``bpf_probe_read_kernel`` of the field's bytes at ``pointer + offset``.  The
immediate is this build machine's offset (from /sys/kernel/btf/vmlinux); the loader
rewrites it for the kernel the object runs on (:mod:`bpfkit.obj.core_relocate`).

The object's BTF holds a *local* view of each struct used: only the members accessed,
at their build-time offsets, pointers to other structs as pointers to their local views,
integers as integers and char arrays as arrays, as CO-RE matching needs (by name).
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from bpfkit.btf import types as T
from bpfkit.lang import btfgen, ir
from bpfkit.lang.types import INT_TYPES, ArrayType, u8

if TYPE_CHECKING:
    from bpfkit.btf.btf import Btf
    from bpfkit.lang.lower import Lowerer, Val


class Core:
    """The structs and members a program uses, and their relocations."""

    def __init__(self) -> None:
        self._btf: Btf | None = None
        self.structs: dict[str, list[tuple[str, T.Member]]] = {}
        self.keys: list[str] = []
        self._ids: dict[str, int] = {}

    def vmlinux(self, lw: Lowerer, node: ast.AST) -> Btf:
        if self._btf is None:
            from bpfkit.btf import load_vmlinux
            from bpfkit.errors import BpfkitError

            try:
                self._btf = load_vmlinux()
            except (OSError, BpfkitError) as e:
                lw.fail(node, f"kernel struct access needs the kernel's BTF: {e}")
        return self._btf

    def key(self, name: str) -> int:
        if name not in self.keys:
            self.keys.append(name)
            self.structs[name] = []
        return self.keys.index(name)

    def field(self, lw: Lowerer, base: Any, attr: str, node: ast.AST) -> Val:
        from bpfkit.lang.lower import Int, KPtr, Mem

        btf = self.vmlinux(lw, node)
        cands = [t for t in btf.find_all(base.struct, "struct") if isinstance(t, T.Struct)]
        if not cands:
            lw.fail(node, f"the kernel has no struct {base.struct}")
        st = cands[0]
        member = st.member(attr)
        if member is None:
            names = ", ".join(m.name for m in st.members if m.name)[:300]
            lw.fail(node, f"struct {base.struct} has no member {attr!r} (members: {names} ...)")
        assert member is not None
        if member.bit_offset % 8 or member.bitfield_size:
            lw.fail(node, f"{base.struct}.{attr} is a bitfield: not supported")
        key = self.key(base.struct)
        used = self.structs[base.struct]
        if attr not in [n for n, _ in used]:
            used.append((attr, member))
        idx = [n for n, _ in used].index(attr)
        off = lw.vreg()
        lw.add(ir.CoreImm(off, member.bit_offset // 8, key, f"0:{idx}"))
        addr = lw.vreg()
        lw.add(ir.Alu("add", addr, base.v, off))
        mt = btf.resolve(member.type)
        size = btf.size_of(member.type)
        probe = _helper_id("bpf_probe_read_kernel")
        if isinstance(mt, T.Array):
            elem = btf.resolve(mt.type)
            if isinstance(elem, T.Int) and elem.size == 1:
                slot = lw.slot(mt.nelems, 8)
                lw.zero(slot)
                lw.add(ir.Call(lw.vreg(), probe, [ir.FrameAddr(slot), mt.nelems, addr]))
                return Mem(slot, 0, ArrayType(u8, mt.nelems))
            lw.fail(
                node,
                f"{base.struct}.{attr} is an array of {btf.format(mt.type)}: only char arrays are read",
            )
        if not isinstance(mt, (T.Int, T.Ptr, T.Enum)) or size not in (1, 2, 4, 8):
            lw.fail(
                node,
                f"{base.struct}.{attr} is {btf.format(member.type)}: read integers, "
                "pointers and char arrays of kernel structs",
            )
        slot = lw.slot(8, 8, temp=True)
        lw.add(ir.Store(slot, 0, 8, 0))
        lw.add(ir.Call(lw.vreg(), probe, [ir.FrameAddr(slot), size, addr]))
        val = lw.vreg()
        lw.add(ir.Load(val, slot, 0, size))
        if isinstance(mt, T.Ptr):
            target = btf.resolve(mt.type)
            if isinstance(target, T.Struct) and not isinstance(target, T.Union) and target.name:
                return KPtr(val, target.name)
            return Int(val, INT_TYPES["u64"])
        signed = isinstance(mt, T.Int) and mt.signed
        t = INT_TYPES[f"{'i' if signed else 'u'}{size * 8}"]
        if signed and size < 8:
            lw.add(ir.Ext(val, val, f"s{size * 8}"))
        return Int(val, t)

    def local_id(self, out: btfgen.BtfBuilder, key: int) -> int:
        """The id in ``out`` of the local view of struct ``keys[key]``."""
        return self._struct_id(out, self.keys[key])

    def _struct_id(self, out: btfgen.BtfBuilder, name: str) -> int:
        if name in self._ids:
            return self._ids[name]
        assert self._btf is not None
        sid = out.reserve()
        self._ids[name] = sid
        members = []
        for mname, m in self.structs.get(name, []):
            members.append((mname, self._member_type(out, m.type), m.bit_offset))
        st = self._btf.find(name, "struct")
        size = self._btf.size_of(st.id)
        ms = tuple(T.Member(mname, tid, bits) for mname, tid, bits in members)
        out.fill(sid, T.Struct(0, name, size, ms))
        return sid

    def _member_type(self, out: btfgen.BtfBuilder, type_id: int) -> int:
        assert self._btf is not None
        t = self._btf.resolve(type_id)
        if isinstance(t, T.Ptr):
            target = self._btf.resolve(t.type)
            if isinstance(target, T.Struct) and not isinstance(target, T.Union) and target.name:
                return out.ptr(self._struct_id(out, target.name))
            return out.ptr(0)
        if isinstance(t, T.Array):
            elem = self._btf.resolve(t.type)
            esize = getattr(elem, "size", 1) or 1
            return out.array(
                out.int_type("char", 1, True)
                if esize == 1
                else out.int_type(f"__u{esize * 8}", esize, False),
                t.nelems,
            )
        size = self._btf.size_of(type_id)
        signed = isinstance(t, T.Int) and t.signed
        return out.int_type(t.name or f"__u{size * 8}", size, signed)


def _helper_id(name: str) -> int:
    from bpfkit.uapi.helpers import by_name

    h = by_name(name)
    assert h is not None
    return h.id
