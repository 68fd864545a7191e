"""Expressions in the lowering (:mod:`bpfkit.lang.lower`): typed values, integer
arithmetic wrapped to its width, names, attributes (the context's fields, structs, kernel
structs), subscripts and array indexing, conditions as branches, and stores of a value into
memory."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from bpfkit.lang import ir
from bpfkit.lang.ctx import CtxField
from bpfkit.lang.decl import MapDecl
from bpfkit.lang.ir import VReg
from bpfkit.lang.lower_base import LowererBase
from bpfkit.lang.types import INT_TYPES, ArrayType, IntType, StructType, Type, bpf_type, i64, u64
from bpfkit.lang.values import Bytes, Int, KPtr, Mem, Obj, Ptr, Val, lit
from bpfkit.uapi.helpers import by_name

_CMP = {
    ast.Eq: ("eq", "eq"),
    ast.NotEq: ("ne", "ne"),
    ast.Gt: ("gt", "sgt"),
    ast.GtE: ("ge", "sge"),
    ast.Lt: ("lt", "slt"),
    ast.LtE: ("le", "sle"),
}


_BINOP = {
    ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.FloorDiv: "div", ast.Mod: "mod",
    ast.BitOr: "or", ast.BitAnd: "and", ast.BitXor: "xor", ast.LShift: "lsh",
    ast.RShift: "rsh",
}  # fmt: skip


class ExprLowerer(LowererBase):
    """Expressions, conditions and stores."""

    # Defined by the layers above (bpfkit.lang.lower_calls, bpfkit.lang.lower).
    call: Callable[[ast.Call], Val | None]
    map_read: Callable[[MapDecl, ast.expr, ast.expr | None, ast.AST], Val]
    lookup: Callable[[MapDecl, ast.expr], VReg]
    builtins: dict[str, Callable[[Any, ast.Call], Any]]  # bpfkit.lang.lower_builtins

    # --- stores ------------------------------------------------------------------------------

    def store_to(self, dst: Mem, value: ast.expr, where: ast.AST) -> None:
        """``dst = value`` for memory of any type."""
        t = dst.type
        if isinstance(t, IntType):
            iv = self.int_val(value, t)
            self.store_int(dst, iv.v)
            return
        if isinstance(t, StructType) and self.is_struct_ctor(value):
            st = self.struct_ctor_type(value)
            if st is not t:
                self.fail(value, f"a {st.name} cannot be stored in a {t.name}")
            assert isinstance(value, ast.Call)
            names = list(t.fields)
            if len(value.args) > len(names):
                self.fail(value, f"{t.name} has {len(names)} fields")
            given = list(zip(names, value.args, strict=False)) + [
                (k.arg or "", k.value) for k in value.keywords
            ]
            for fname, fexpr in given:
                f = t.fields.get(fname)
                if f is None:
                    self.fail(
                        fexpr, f"{t.name} has no field {fname!r} (fields: {', '.join(names)})"
                    )
                self.store_to(Mem(dst.base, dst.off + f.offset, f.type), fexpr, fexpr)
            return
        if isinstance(t, ArrayType):
            if isinstance(value, ast.Constant) and isinstance(value.value, bytes):
                data = value.value
                if len(data) > t.size:
                    self.fail(value, f"{len(data)} bytes do not fit in {t.name}")
                for i, b in enumerate(data.ljust(min(t.size, len(data) + 1), b"\0")):
                    self.store_int(Mem(dst.base, dst.off + i, t.elem), b)
                return
            src = self.expr(value)
            if isinstance(src, Mem) and src.type == t:
                self.copy(dst, src)
                return
            if isinstance(src, Obj) and src.kind == "comm":
                self.call_helper("bpf_get_current_comm", [self.addr(dst), t.size], value)
                return
            self.fail(value, f"cannot store {self.tname(src)} in {t.name}")
        src = self.expr(value)
        if isinstance(src, Mem) and src.type is t:
            self.copy(dst, src)
            return
        self.fail(where, f"cannot store {self.tname(src)} in {t.name}")

    # --- conditions --------------------------------------------------------------------------

    def cond(self, e: ast.expr, yes: str, no: str) -> None:
        """Jump to ``yes`` if ``e`` is true, else to ``no``."""
        if isinstance(e, ast.BoolOp):
            for i, part in enumerate(e.values):
                last = i == len(e.values) - 1
                nxt = self.label("bool")
                if isinstance(e.op, ast.And):
                    self.cond(part, nxt if not last else yes, no)
                else:
                    self.cond(part, yes, nxt if not last else no)
                if not last:
                    self.add(ir.Label(nxt))
            return
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
            self.cond(e.operand, no, yes)
            return
        if isinstance(e, ast.Compare):
            self.compare(e, yes, no)
            return
        c = self.const_int(e)
        if c is not None:
            self.add(ir.Jmp(yes if c else no))
            return
        v = self.expr(e)
        if isinstance(v, (Ptr, KPtr)):
            reg: VReg | int = v.v
        else:
            reg = self.to_int(v, e).v
        self.add(ir.Br("ne", reg, 0, yes))
        self.add(ir.Jmp(no))

    def compare(self, e: ast.Compare, yes: str, no: str) -> None:
        left_node = e.left
        left: Val | None = None
        for i, (op, right_node) in enumerate(zip(e.ops, e.comparators, strict=True)):
            last = i == len(e.ops) - 1
            nxt = yes if last else self.label("cmp")
            if isinstance(op, (ast.In, ast.NotIn)):
                m = self.expr(right_node)
                if not (isinstance(m, Obj) and m.kind == "map"):
                    self.fail(right_node, "'in' tests membership of a map: key in m")
                p = self.lookup(m.obj, left_node)
                br = "ne" if isinstance(op, ast.In) else "eq"
                self.add(ir.Br(br, p, 0, nxt))
                self.add(ir.Jmp(no))
            elif isinstance(op, (ast.Is, ast.IsNot)):
                if not (isinstance(right_node, ast.Constant) and right_node.value is None):
                    self.fail(right_node, "'is' compares with None only (p is None)")
                lv = left or self.expr(left_node)
                if not isinstance(lv, (Ptr, KPtr)):
                    self.fail(left_node, "only pointers (a map's .get) can be None")
                self.add(ir.Br("eq" if isinstance(op, ast.Is) else "ne", lv.v, 0, nxt))
                self.add(ir.Jmp(no))
            else:
                a, b = self.int_pair(left_node, right_node, left)
                t = a.type or b.type or i64
                uop, sop = _CMP[type(op)]
                bop = sop if t.signed else uop
                av, bv = a.v, b.v
                if isinstance(av, int):
                    av, bv = bv, av
                    bop = {"gt": "lt", "lt": "gt", "ge": "le", "le": "ge", "sgt": "slt",
                           "slt": "sgt", "sge": "sle", "sle": "sge"}.get(bop, bop)  # fmt: skip
                if isinstance(av, int):
                    tmp = self.vreg()
                    self.add(ir.Mov(tmp, av))
                    av = tmp
                self.add(ir.Br(bop, av, bv, nxt))
                self.add(ir.Jmp(no))
                left = b
            if not last:
                self.add(ir.Label(nxt))
            left_node = right_node

    # --- expressions -------------------------------------------------------------------------

    def tname(self, v: Val) -> str:
        if isinstance(v, Int):
            return v.type.name if v.type else "an int literal"
        if isinstance(v, Mem):
            return v.type.name
        if isinstance(v, Ptr):
            return f"a pointer to {v.type.name} (or None)"
        if isinstance(v, KPtr):
            return f"struct {v.struct} *"
        if isinstance(v, Bytes):
            return "bytes"
        if isinstance(v, Obj):
            return f"the {v.kind} {getattr(v.obj, '__name__', '')}".rstrip()
        return type(v).__name__

    def type_of(self, node: ast.expr) -> Type:
        try:
            obj = eval(compile(ast.Expression(node), self.file, "eval"), dict(self.g.namespace))  # noqa: S307
        except Exception as e:  # noqa: BLE001 - any failure is the user's annotation
            self.fail(node, f"cannot evaluate the type annotation: {e}")
        if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "const":
            obj = obj[1]
        t = bpf_type(obj)
        if t is None:
            self.fail(
                node, f"{ast.unparse(node)} is not a BPF type (u8..u64, i8..i64, T[N], a @struct)"
            )
        return t

    def const_int(self, e: ast.expr) -> int | None:
        """The value of a constant integer expression, or None."""
        if isinstance(e, ast.Constant) and isinstance(e.value, (bool, int)):
            return int(e.value)
        if isinstance(e, ast.Name) and e.id not in self.locals and e.id in self.g.consts:
            return self.g.consts[e.id]
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, (ast.USub, ast.Invert)):
            c = self.const_int(e.operand)
            if c is not None:
                return -c if isinstance(e.op, ast.USub) else ~c
        if isinstance(e, ast.BinOp) and type(e.op) in (ast.Add, ast.Sub, ast.Mult, ast.LShift,
                                                         ast.BitOr, ast.BitAnd):  # fmt: skip
            a, b = self.const_int(e.left), self.const_int(e.right)
            if a is not None and b is not None:
                if isinstance(e.op, ast.LShift) and not 0 <= b < 64:
                    return None
                ops: dict[type, Callable[[int, int], int]] = {
                    ast.Add: lambda x, y: x + y, ast.Sub: lambda x, y: x - y,
                    ast.Mult: lambda x, y: x * y, ast.LShift: lambda x, y: x << y,
                    ast.BitOr: lambda x, y: x | y, ast.BitAnd: lambda x, y: x & y,
                }  # fmt: skip
                return ops[type(e.op)](a, b)
        return None

    def int_val(self, e: ast.expr, want: IntType | None) -> Int:
        """``e`` as an integer of type ``want`` (literals are range-checked)."""
        if isinstance(e, ast.IfExp):
            return self.ifexp(e, want)
        c = self.const_int(e)
        if c is not None and want is not None:
            if not want.min <= c <= want.max and not (
                c < 0 and not want.signed and c >= -(1 << (want.bits - 1))
            ):
                self.fail(
                    e,
                    f"{c} does not fit in {want.name} ({want.min}..{want.max}); wrap it explicitly with {want.name}(...)",
                )
            return Int(want.wrap(c), want)
        v = self.to_int(self.expr(e), e)
        if v.type is None:
            t = want or i64
            return Int(t.wrap(lit(v.v)), t)
        if want is not None and v.type is not want:
            self.fail(
                e,
                f"this is {v.type.name} where {want.name} is expected: convert it with {want.name}(...)",
            )
        return v

    def to_int(self, v: Val, where: ast.AST) -> Int:
        if isinstance(v, Int):
            return v
        if isinstance(v, Mem) and isinstance(v.type, IntType):
            return self.read_mem(v)
        self.fail(where, f"expected an integer, got {self.tname(v)}")

    def read_mem(self, m: Mem) -> Int:
        t = m.type
        assert isinstance(t, IntType)
        v = self.vreg()
        self.add(ir.Load(v, self.base_of(m), m.off, t.size))
        if t.signed and t.size < 8:
            self.add(ir.Ext(v, v, f"s{t.bits}"))
        return Int(v, t)

    def int_pair(self, ln: ast.expr, rn: ast.expr, left: Val | None = None) -> tuple[Int, Int]:
        """Two operands of a binary operation, of one type (literals adopt the other's)."""
        lc, rc = (None if left is not None else self.const_int(ln)), self.const_int(rn)
        if lc is not None and rc is not None:
            return Int(lc, None), Int(rc, None)
        if lc is not None:
            b = self.to_int(self.expr(rn), rn)
            return self.int_val(ln, b.type), b
        a = left if isinstance(left, Int) else self.to_int(left or self.expr(ln), ln)
        if rc is not None:
            return a, self.int_val(rn, a.type)
        b = self.to_int(self.expr(rn), rn)
        if a.type is not None and b.type is not None and a.type is not b.type:
            self.fail(
                rn,
                f"{a.type.name} and {b.type.name} mixed: convert one side, e.g. {a.type.name}(...)",
            )
        if a.type is None and b.type is not None:
            a = Int(b.type.wrap(lit(a.v)), b.type)
        if b.type is None and a.type is not None:
            b = Int(a.type.wrap(lit(b.v)), a.type)
        return a, b

    def expr(self, e: ast.expr, void_ok: bool = False) -> Val:  # noqa: C901
        c = self.const_int(e)
        if c is not None:
            return Int(c, None)
        if isinstance(e, ast.Name):
            return self.name(e)
        if isinstance(e, ast.Constant):
            if isinstance(e.value, bytes):
                return Bytes(e.value)
            if isinstance(e.value, str):
                return Bytes(e.value.encode())
            self.fail(
                e, f"{type(e.value).__name__} constants are not supported (use ints or bytes)"
            )
        if isinstance(e, ast.BinOp):
            op = _BINOP.get(type(e.op))
            if op is None:
                hint = " (use // for integer division)" if isinstance(e.op, ast.Div) else ""
                self.fail(e, f"operator {type(e.op).__name__} is not supported{hint}")
            a, b = self.int_pair(e.left, e.right)
            return self.binop(op, a, b, e)
        if isinstance(e, ast.UnaryOp):
            if isinstance(e.op, ast.Not):
                return self.bool_value(e)
            v = self.to_int(self.expr(e.operand), e.operand)
            if isinstance(e.op, ast.UAdd):
                return v
            t = v.type or i64
            dst = self.vreg()
            if isinstance(e.op, ast.USub):
                self.add(ir.Neg(dst, v.v, t.size <= 4))
            else:
                self.add(ir.Alu("xor", dst, v.v, -1, t.size <= 4))
            self.wrap(dst, t)
            return Int(dst, t)
        if isinstance(e, (ast.Compare, ast.BoolOp)):
            return self.bool_value(e)
        if isinstance(e, ast.IfExp):
            return self.ifexp(e, None)
        if isinstance(e, ast.Call):
            res = self.call(e)
            if res is None:
                if not void_ok:
                    self.fail(e, "this call returns nothing")
                return Int(0, None)
            return res
        if isinstance(e, ast.Attribute):
            return self.attribute(e)
        if isinstance(e, ast.Subscript):
            return self.subscript(e)
        if isinstance(e, ast.JoinedStr):
            self.fail(e, "f-strings work inside print(...) only")
        self.fail(e, f"{type(e).__name__} expressions are not supported in BPF programs")

    def ifexp(self, e: ast.IfExp, want: IntType | None) -> Int:
        """``a if c else b``: both sides of one type (``want``, or the first typed side)."""
        yes, no, end = self.label("ift"), self.label("iff"), self.label("ife")
        self.cond(e.test, yes, no)
        dst = self.vreg()
        self.add(ir.Label(yes))
        a = (
            self.int_val(e.body, want)
            if want is not None
            else self.to_int(self.expr(e.body), e.body)
        )
        t = want or a.type
        if t is None:
            bc = self.const_int(e.orelse)
            if bc is None:
                t = self.to_int(self.expr(e.orelse), e.orelse).type
        t = t or i64
        a = Int(t.wrap(lit(a.v)), t) if a.type is None else a
        self.add(ir.Mov(dst, a.v))
        self.add(ir.Jmp(end))
        self.add(ir.Label(no))
        b = self.int_val(e.orelse, t)
        self.add(ir.Mov(dst, b.v))
        self.add(ir.Label(end))
        return Int(dst, t)

    def bool_value(self, e: ast.expr) -> Int:
        yes, no, end = self.label("bt"), self.label("bf"), self.label("be")
        dst = self.vreg()
        self.cond(e, yes, no)
        self.add(ir.Label(yes))
        self.add(ir.Mov(dst, 1))
        self.add(ir.Jmp(end))
        self.add(ir.Label(no))
        self.add(ir.Mov(dst, 0))
        self.add(ir.Label(end))
        return Int(dst, INT_TYPES["u8"])

    def binop(self, op: str, a: Int, b: Int, e: ast.AST, dst: VReg | None = None) -> Int:
        t = a.type or b.type
        if t is None:  # two literals (not folded: // % >> ^)
            x, y = lit(a.v), lit(b.v)
            r = {"div": lambda: int(x / y) if y else 0, "mod": lambda: x - y * int(x / y) if y else x,
                 "rsh": lambda: x >> y, "xor": lambda: x ^ y}.get(op, lambda: 0)()  # fmt: skip
            return Int(r, None)
        if op == "div" and t.signed:
            op = "sdiv"
        elif op == "mod" and t.signed:
            op = "smod"
        elif op == "rsh" and t.signed:
            op = "arsh"
        out = dst or self.vreg()
        self.arith(op, out, b.v, t, a.v)
        return Int(out, t)

    def arith(self, op: str, out: VReg, b: VReg | int, t: IntType, a: VReg | int) -> None:
        """``out = a op b`` at type ``t``'s width, wrapped."""
        w32 = t.size <= 4
        if w32 and isinstance(b, int):
            b = (b & 0xFFFFFFFF) - ((b & 0x80000000) << 1)
        if op in ("lsh", "rsh", "arsh") and isinstance(b, int):
            b &= 31 if w32 else 63
        if op in ("sdiv", "smod") and t.size < 4:
            # Sign-extended 8/16-bit operands: a 32-bit signed division is C's.
            pass
        self.add(ir.Alu(op, out, a, b, w32))
        self.wrap(out, t)

    def wrap(self, v: VReg, t: IntType) -> None:
        if t.size == 8:
            return
        if t.size == 4 and not t.signed:
            return  # 32-bit ALU zero-extends
        self.add(ir.Ext(v, v, f"{'s' if t.signed else 'u'}{t.bits}"))

    def name(self, e: ast.Name) -> Val:
        n = e.id
        if n in self.locals:
            return self.locals[n].val
        if n == self.ctx_name:
            return Obj(None, "ctx")
        if n in self.g.maps:
            return Obj(self.g.maps[n], "map")
        if n in self.g.data:
            sym, t, const = self.g.data[n]
            return Mem(ir.DataRef(sym), 0, t, const)
        obj = self.g.namespace.get(n)
        if n in self.builtins and (obj is None or getattr(obj, "__bpf_helper__", None) == n):
            return Obj(n, "builtin")
        if obj is not None:
            bt = bpf_type(obj)
            if bt is not None:
                return Obj(bt, "type")
            if getattr(obj, "__bpf_helper__", None) is not None or (
                n.startswith("bpf_") and by_name(n) is not None
            ):
                return Obj(by_name(n), "helper")
            if isinstance(obj, MapDecl):
                self.fail(e, f"map {n} is not a module-level variable of this file")
            if n in self.builtins:
                return Obj(n, "builtin")
            if callable(obj) and not isinstance(obj, type):
                self.fail(
                    e,
                    f"{n} is a Python function: BPF programs cannot call Python functions "
                    "(calls between BPF functions are not supported yet); inline it",
                )
        elif n.startswith("bpf_") and by_name(n) is not None:
            return Obj(by_name(n), "helper")
        self.fail(
            e,
            f"unknown name {n!r}: BPF programs see their locals, module-level maps, "
            "globals and int constants, the types and the bpf_* helpers",
        )

    # --- attributes, subscripts --------------------------------------------------------------

    def ctx_field(self, name: str, node: ast.AST) -> CtxField:
        f = self.ctxdesc.fields.get(name)
        if f is None:
            self.fail(
                node, f"{self.ctxdesc.name} has no field {name!r} (fields: {self.ctxdesc.names()})"
            )
        return f

    def attribute(self, e: ast.Attribute) -> Val:
        base = self.expr(e.value)
        if isinstance(base, Obj) and base.kind == "ctx":
            f = self.ctx_field(e.attr, e)
            if f.special:
                v = self.vreg()
                self.add(ir.Load(v, self.ctx_reg, f.offset, 4))
                return Int(v, u64)
            return Mem(self.ctx_reg, f.offset, f.type, const=True)
        if isinstance(base, Mem) and isinstance(base.type, StructType):
            sf = base.type.fields.get(e.attr)
            if sf is None:
                self.fail(
                    e,
                    f"{base.type.name} has no field {e.attr!r} (fields: {', '.join(base.type.fields)})",
                )
            return Mem(base.base, base.off + sf.offset, sf.type, base.const)
        if isinstance(base, Ptr) and isinstance(base.type, StructType):
            pf = base.type.fields.get(e.attr)
            if pf is None:
                self.fail(e, f"{base.type.name} has no field {e.attr!r}")
            return Mem(base.v, pf.offset, pf.type)
        if isinstance(base, KPtr):
            if self.g.core is None:
                self.fail(
                    e, "kernel struct access needs the kernel's BTF (/sys/kernel/btf/vmlinux)"
                )
            got: Val = self.g.core.field(self, base, e.attr, e)
            return got
        if isinstance(base, Obj) and base.kind == "map":
            return Obj((base.obj, e.attr), "method")
        self.fail(e, f"{self.tname(base)} has no attribute {e.attr!r}")

    def lvalue(self, e: ast.expr) -> Mem:
        v = self.expr(e)
        if not isinstance(v, Mem):
            self.fail(e, "cannot assign to this")
        if v.const:
            self.fail(e, "this is read-only (the context or a Const global)")
        return v

    def subscript(self, e: ast.Subscript) -> Val:
        base = self.expr(e.value)
        if isinstance(base, Obj) and base.kind == "map":
            return self.map_read(base.obj, e.slice, None, e)
        if isinstance(base, Obj) and base.kind == "type":
            self.fail(e, "array types go in annotations: buf: u8[16]")
        if isinstance(base, Mem) and isinstance(base.type, ArrayType):
            return self.index(base, e.slice)
        self.fail(e, f"{self.tname(base)} cannot be indexed")

    def index(self, arr: Mem, idx_node: ast.expr) -> Mem:
        """``arr[i]``: a constant index is checked here; a variable one is clamped to the
        array (an index past the end reads and writes the last element: the verifier needs
        a bounded offset, and Python's IndexError has no BPF equivalent)."""
        t = arr.type
        assert isinstance(t, ArrayType)
        c = self.const_int(idx_node)
        if c is not None:
            if not 0 <= c < t.count:
                self.fail(idx_node, f"index {c} is out of range for {t.name}")
            return Mem(arr.base, arr.off + c * t.elem.size, t.elem, arr.const)
        iv = self.to_int(self.expr(idx_node), idx_node)
        if isinstance(arr.base, ir.DataRef) or arr.const:
            self.fail(idx_node, "variable indexes work on local arrays and map values")
        idx = self.vreg()
        self.add(ir.Mov(idx, iv.v))
        ok = self.label("idx")
        self.add(ir.Br("lt", idx, t.count, ok))  # unsigned: negatives are huge
        self.add(ir.Mov(idx, t.count - 1))
        self.add(ir.Label(ok))
        if t.elem.size > 1:
            self.add(ir.Alu("mul", idx, idx, t.elem.size))
        ptr = self.vreg()
        base = self.addr(Mem(arr.base, arr.off, t))
        self.add(ir.Mov(ptr, base))
        self.add(ir.Alu("add", ptr, ptr, idx))
        return Mem(ptr, 0, t.elem)
