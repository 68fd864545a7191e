"""Statements in the lowering (:mod:`bpfkit.lang.lower`): returns, ``if``, ``while`` and
``for ... in range`` loops, assignments (typed locals, memory, map entries), augmented
assignments and ``del``."""

from __future__ import annotations

import ast

from bpfkit.lang import ir
from bpfkit.lang.decl import MapDecl
from bpfkit.lang.ir import VReg
from bpfkit.lang.lower_base import BPF_ANY
from bpfkit.lang.lower_calls import CallLowerer
from bpfkit.lang.lower_expr import _BINOP
from bpfkit.lang.types import ArrayType, IntType, StructType, Type, i64
from bpfkit.lang.values import Int, KPtr, Local, Mem, Obj, Ptr, lit

_NEGATE = {
    "eq": "ne", "ne": "eq", "gt": "le", "ge": "lt", "lt": "ge", "le": "gt",
    "sgt": "sle", "sge": "slt", "slt": "sge", "sle": "sgt",
}  # fmt: skip


class StmtLowerer(CallLowerer):
    """Statements and assignments."""

    # --- statements --------------------------------------------------------------------------

    def block(self, stmts: list[ast.stmt]) -> None:
        for s in stmts:
            self.temp_cursor = 0
            self.add(ir.Loc(s.lineno, s.col_offset + 1))
            self.stmt(s)

    def stmt(self, s: ast.stmt) -> None:  # noqa: C901 - one case per statement kind
        if isinstance(s, ast.Return):
            self.ret(s)
        elif isinstance(s, ast.Assign):
            if len(s.targets) != 1:
                self.fail(s, "assign one target at a time (a = b, not a = b = c)")
            self.assign(s.targets[0], s.value, None)
        elif isinstance(s, ast.AnnAssign):
            t = self.type_of(s.annotation)
            self.assign(s.target, s.value, t)
        elif isinstance(s, ast.AugAssign):
            self.augassign(s)
        elif isinstance(s, ast.If):
            self.if_(s)
        elif isinstance(s, ast.While):
            self.while_(s)
        elif isinstance(s, ast.For):
            self.for_(s)
        elif isinstance(s, ast.Break):
            if not self.loops:
                self.fail(s, "break outside a loop")
            self.add(ir.Jmp(self.loops[-1][1]))
        elif isinstance(s, ast.Continue):
            if not self.loops:
                self.fail(s, "continue outside a loop")
            self.add(ir.Jmp(self.loops[-1][0]))
        elif isinstance(s, ast.Expr):
            if isinstance(s.value, ast.Constant) and isinstance(s.value.value, str):
                return  # a string statement (comment)
            self.expr(s.value, void_ok=True)
        elif isinstance(s, (ast.Pass, ast.Global)):
            pass  # `global x` is optional: module-level globals are always what x names
        elif isinstance(s, ast.Delete):
            for tgt in s.targets:
                self.delete(tgt)
        else:
            self.fail(
                s,
                f"{type(s).__name__} statements are not supported in BPF programs "
                "(use if/for/while/return, assignments and calls)",
            )

    def ret(self, s: ast.Return) -> None:
        if s.value is None or self.ret_type is None:
            if s.value is not None:
                self.fail(s, "this function returns nothing (annotate its return type)")
            self.add(ir.Ret(0))
            return
        v = self.int_val(s.value, self.ret_type)
        self.add(ir.Ret(v.v))

    def if_(self, s: ast.If) -> None:
        then, other, end = self.label("then"), self.label("else"), self.label("endif")
        self.cond(s.test, then, other)
        self.add(ir.Label(then))
        self.block(s.body)
        if s.orelse:
            self.add(ir.Jmp(end))
        self.add(ir.Label(other))
        if s.orelse:
            self.block(s.orelse)
            self.add(ir.Label(end))

    def while_(self, s: ast.While) -> None:
        if s.orelse:
            self.fail(s, "while ... else is not supported")
        head, body, end = self.label("while"), self.label("body"), self.label("wend")
        self.add(ir.Label(head))
        self.cond(s.test, body, end)
        self.add(ir.Label(body))
        self.loops.append((head, end))
        self.block(s.body)
        self.loops.pop()
        self.add(ir.Jmp(head))
        self.add(ir.Label(end))

    def for_(self, s: ast.For) -> None:
        it = s.iter
        if s.orelse:
            self.fail(s, "for ... else is not supported")
        if not (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Name)
            and it.func.id == "range"
            and 1 <= len(it.args) <= 3
            and not it.keywords
        ):
            self.fail(it, "BPF loops are bounded: iterate over range(N) with a constant N")
        if not isinstance(s.target, ast.Name):
            self.fail(s.target, "the loop variable must be a name")
        consts = [self.const_int(a) for a in it.args]
        if any(c is None for c in consts):
            self.fail(it, "range() bounds must be constants (module-level ints or literals)")
        nums = [int(c) for c in consts if c is not None]
        start, stop, step = (0, nums[0], 1) if len(nums) == 1 else (nums + [1])[:3]
        if step == 0:
            self.fail(it, "range() step must not be zero")
        t = self.declared_type(s.target.id) or i64
        var = self.set_int_local(s.target, t)
        self.add(ir.Mov(var, t.wrap(start)))
        head, body, step_l, end = (self.label(x) for x in ("for", "fbody", "fstep", "fend"))
        self.add(ir.Label(head))
        op = ("slt" if t.signed else "lt") if step > 0 else ("sgt" if t.signed else "gt")
        self.add(ir.Br(_NEGATE[op], var, t.wrap(stop), end))
        self.add(ir.Label(body))
        self.loops.append((step_l, end))
        self.block(s.body)
        self.loops.pop()
        self.add(ir.Label(step_l))
        self.arith("add", var, step, t, var)
        self.add(ir.Jmp(head))
        self.add(ir.Label(end))

    def declared_type(self, name: str) -> IntType | None:
        loc = self.locals.get(name)
        if loc is not None and isinstance(loc.val, Int):
            return loc.val.type
        return None

    def set_int_local(self, target: ast.Name, t: IntType) -> VReg:
        loc = self.locals.get(target.id)
        if loc is not None:
            if not isinstance(loc.val, Int) or loc.val.type is not t:
                self.fail(
                    target, f"{target.id} is {self.tname(loc.val)}; it cannot become {t.name}"
                )
            assert isinstance(loc.val.v, VReg)
            return loc.val.v
        v = self.vreg(target.id)
        self.locals[target.id] = Local(Int(v, t))
        return v

    # --- assignment --------------------------------------------------------------------------

    def assign(self, target: ast.expr, value: ast.expr | None, ann: Type | None) -> None:
        if isinstance(target, ast.Name):
            self.assign_name(target, value, ann)
        elif isinstance(target, ast.Subscript):
            if value is None:
                self.fail(target, "nothing to assign")
            self.store_subscript(target, value)
        elif isinstance(target, ast.Attribute):
            if value is None:
                self.fail(target, "nothing to assign")
            dst = self.lvalue(target)
            self.store_to(dst, value, target)
        else:
            self.fail(target, "assign to a name, a map or array element, or a struct field")

    def assign_name(self, target: ast.Name, value: ast.expr | None, ann: Type | None) -> None:
        name = target.id
        loc = self.locals.get(name)
        if loc is None and name in self.g.data and ann is None and value is not None:
            glob = self.name(target)
            assert isinstance(glob, Mem)
            if glob.const:
                self.fail(target, f"{name} is a Const global: programs only read it")
            self.store_to(glob, value, target)
            return
        if loc is not None and ann is not None:
            self.fail(
                target, f"{name} is already declared; annotate it once, where it is first set"
            )
        if isinstance(ann, (ArrayType, StructType)) or (
            loc is not None and isinstance(loc.val, Mem)
        ):
            if loc is None:
                assert ann is not None
                slot = self.slot(ann.size, ann.align)
                self.zero(slot)
                mem = Mem(slot, 0, ann)
                self.locals[name] = Local(mem)
                if value is not None:
                    self.store_to(mem, value, target)
            else:
                assert isinstance(loc.val, Mem)
                if value is None:
                    self.fail(target, "nothing to assign")
                self.store_to(loc.val, value, target)
            return
        if value is None:
            if isinstance(ann, IntType):
                v = self.vreg(name)
                self.add(ir.Mov(v, 0))
                self.locals[name] = Local(Int(v, ann))
                return
            self.fail(target, f"declare {name} with a value: {name}: T = ...")
        if loc is None and ann is None and self.is_struct_ctor(value):
            st = self.struct_ctor_type(value)
            slot = self.slot(st.size, st.align)
            self.zero(slot)
            mem = Mem(slot, 0, st)
            self.locals[name] = Local(mem)
            self.store_to(mem, value, target)
            return
        want = ann if isinstance(ann, IntType) else None
        if loc is not None:
            if isinstance(loc.val, Int):
                want = loc.val.type
            elif isinstance(loc.val, (Ptr, KPtr)):
                val = self.expr(value)
                if type(val) is not type(loc.val):
                    self.fail(value, f"{name} is {self.tname(loc.val)}, not {self.tname(val)}")
                assert isinstance(val, (Ptr, KPtr)) and isinstance(loc.val.v, VReg)
                self.add(ir.Mov(loc.val.v, val.v))
                return
        if want is None:
            val = self.expr(value)
            if isinstance(val, (Ptr, KPtr)):
                v = self.vreg(name)
                self.add(ir.Mov(v, val.v))
                self.locals[name] = Local(
                    Ptr(v, val.type) if isinstance(val, Ptr) else KPtr(v, val.struct)
                )
                return
            if isinstance(val, Mem) and isinstance(val.type, (StructType, ArrayType)):
                slot = self.slot(val.type.size, val.type.align)
                mem = Mem(slot, 0, val.type)
                self.copy(mem, val)
                self.locals[name] = Local(mem)
                return
            iv = self.to_int(val, value)
            t: IntType = iv.type or i64
            if iv.type is None:
                iv = Int(t.wrap(lit(iv.v)), t)
        else:
            iv = self.int_val(value, want)
            t = want
        dst = self.set_int_local(target, t)
        self.add(ir.Mov(dst, iv.v))

    def store_subscript(self, target: ast.Subscript, value: ast.expr) -> None:
        base = self.expr(target.value)
        if isinstance(base, Obj) and base.kind == "map":
            m: MapDecl = base.obj
            key = self.key_arg(m, target.slice)
            val = self.value_arg(m, value)
            self.add(ir.Call(None, 2, [ir.MapRef(self.map_name(m)), key, val, BPF_ANY]))
            return
        dst = self.lvalue(target)
        self.store_to(dst, value, target)

    def augassign(self, s: ast.AugAssign) -> None:
        op = _BINOP.get(type(s.op))
        if op is None:
            self.fail(s, f"{type(s.op).__name__}= is not supported")
        target = s.target
        if isinstance(target, ast.Subscript):
            obj = self.expr(target.value)
            if isinstance(obj, Obj) and obj.kind == "map":
                self.map_aug(obj.obj, target, op, s.value)
                return
        if isinstance(target, ast.Name) and not (
            target.id not in self.locals and target.id in self.g.data
        ):
            loc = self.locals.get(target.id)
            if loc is None or not isinstance(loc.val, Int):
                self.fail(target, f"{target.id} is not an integer variable")
            assert isinstance(loc.val.v, VReg) and loc.val.type is not None
            rhs = self.int_val(s.value, loc.val.type)
            self.binop(op, loc.val, rhs, s, dst=loc.val.v)
            return
        dst = self.lvalue(target)
        if not isinstance(dst.type, IntType):
            self.fail(target, f"{op}= needs an integer, not {dst.type.name}")
        cur = self.read_mem(dst)
        rhs = self.int_val(s.value, dst.type)
        res = self.binop(op, cur, rhs, s)
        self.store_int(dst, res.v)

    def delete(self, t: ast.expr) -> None:
        if isinstance(t, ast.Subscript):
            obj = self.expr(t.value)
            if isinstance(obj, Obj) and obj.kind == "map":
                m: MapDecl = obj.obj
                key = self.key_arg(m, t.slice)
                self.add(ir.Call(None, 3, [ir.MapRef(self.map_name(m)), key]))
                return
        self.fail(t, "del works on map entries: del m[key]")
