"""Python AST to IR: type checking and code shapes the verifier accepts.

One :class:`Lowerer` per program function.  Values are typed as they are lowered
(:class:`Val`); integers are kept wrapped to their width after every operation (see
:mod:`bpfkit.lang.types` for the semantics).  Map accesses become helper calls with the
NULL check the verifier needs; packet reads get their bounds check.  Every error is a
:class:`~bpfkit.errors.CompileError` at the file:line:column of the construct.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from bpfkit.errors import CompileError
from bpfkit.lang import ir
from bpfkit.lang.ctx import Context, CtxField
from bpfkit.lang.decl import MapDecl, PerfEventArray, ProgArray, RingBuf
from bpfkit.lang.ir import Arg, FrameAddr, Slot, VReg
from bpfkit.lang.types import INT_TYPES, ArrayType, IntType, StructType, Type, bpf_type, i64, u64
from bpfkit.uapi import MapType, UpdateFlag
from bpfkit.uapi.helpers import Helper, by_name

BPF_ANY, BPF_NOEXIST = int(UpdateFlag.BPF_ANY), int(UpdateFlag.BPF_NOEXIST)
BPF_F_CURRENT_CPU = 0xFFFFFFFF
_CMP = {
    ast.Eq: ("eq", "eq"),
    ast.NotEq: ("ne", "ne"),
    ast.Gt: ("gt", "sgt"),
    ast.GtE: ("ge", "sge"),
    ast.Lt: ("lt", "slt"),
    ast.LtE: ("le", "sle"),
}
_NEGATE = {
    "eq": "ne", "ne": "eq", "gt": "le", "ge": "lt", "lt": "ge", "le": "gt",
    "sgt": "sle", "sge": "slt", "slt": "sge", "sle": "sgt",
}  # fmt: skip
_BINOP = {
    ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.FloorDiv: "div", ast.Mod: "mod",
    ast.BitOr: "or", ast.BitAnd: "and", ast.BitXor: "xor", ast.LShift: "lsh",
    ast.RShift: "rsh",
}  # fmt: skip
_RET_TYPES = {"long": i64, "int": INT_TYPES["i32"], "__s64": i64, "__u64": u64,
              "__u32": INT_TYPES["u32"]}  # fmt: skip


# --- values ----------------------------------------------------------------------------


@dataclass
class Val:
    """A lowered expression."""


@dataclass
class Int(Val):
    """An integer: a register or a constant; ``type`` None for an untyped literal."""

    v: VReg | int
    type: IntType | None


@dataclass
class Mem(Val):
    """Memory of ``type`` at ``base + off`` (a stack slot, a pointer, or a global)."""

    base: Slot | VReg | ir.DataRef
    off: int
    type: Type
    const: bool = False


@dataclass
class Ptr(Val):
    """A possibly-NULL pointer to a ``type`` (a map lookup's result)."""

    v: VReg
    type: Type


@dataclass
class KPtr(Val):
    """A kernel pointer (an address read with bpf_probe_read_kernel) to struct ``name``."""

    v: VReg | int
    struct: str


@dataclass
class Bytes(Val):
    data: bytes


@dataclass
class Obj(Val):
    """A compile-time object: a map, the context, a helper, a type, a module function."""

    obj: Any
    kind: str  # map, ctx, helper, type, builtin, pyfunc


@dataclass
class Local:
    """A local variable: an int in a register, memory on the stack, or a pointer."""

    val: Val


@dataclass
class Globals:
    """What the module defines that programs use (filled by :mod:`bpfkit.lang.compiler`)."""

    maps: dict[str, MapDecl] = field(default_factory=dict)
    data: dict[str, tuple[str, Type, bool]] = field(
        default_factory=dict
    )  # name->(sym, type, const)
    consts: dict[str, int] = field(default_factory=dict)
    namespace: dict[str, Any] = field(default_factory=dict)
    strings: dict[bytes, str] = field(default_factory=dict)  # rodata strings -> symbol
    data_init: dict[str, tuple[str, bytes, Type]] = field(
        default_factory=dict
    )  # name->(section, bytes, type)
    core: Any = None  # bpfkit.lang.core.Core, for kernel struct access
    funcs: dict[str, tuple[list[IntType], IntType | None]] = field(default_factory=dict)


class Lowerer:
    """Lowers one function's body (see the module docstring)."""

    def __init__(
        self,
        fn_node: ast.FunctionDef,
        name: str,
        section: str,
        ctx: Context,
        g: Globals,
        file: str,
        source_lines: list[str],
        ret_type: IntType | None,
    ) -> None:
        self.node, self.ctxdesc, self.g = fn_node, ctx, g
        self.file, self.src = file, source_lines
        self.fn = ir.Function(name, section)
        self.ret_type = ret_type
        self.nv = 0
        self.nl = 0
        self.locals: dict[str, Local] = {}
        self.loops: list[tuple[str, str]] = []  # (continue label, break label)
        self.temp_cursor = 0
        self.ctx_reg = self.vreg("ctx")
        self.fn.ctx = self.ctx_reg
        self.add(ir.Loc(fn_node.lineno, fn_node.col_offset + 1))
        args = fn_node.args
        params = args.posonlyargs + args.args
        self.ctx_name = ""
        if name in g.funcs:  # a BPF function: typed integer parameters, no context
            self.fn.ctx = None
            for p, t in zip(params, g.funcs[name][0], strict=True):
                v = self.vreg(p.arg)
                self.fn.params.append(v)
                self.locals[p.arg] = Local(Int(v, t))
            return
        if len(params) > 1 or args.vararg or args.kwarg or args.kwonlyargs:
            self.fail(fn_node, "a BPF program takes one parameter, its context: def prog(ctx)")
        self.ctx_name = params[0].arg if params else ""

    # --- plumbing ------------------------------------------------------------------------

    def fail(self, node: ast.AST, msg: str) -> NoReturn:
        line = getattr(node, "lineno", 0)
        col = getattr(node, "col_offset", -1) + 1
        text = self.src[line - 1] if 0 < line <= len(self.src) else ""
        raise CompileError(msg, file=self.file, line=line, column=col, text=text)

    def vreg(self, name: str = "") -> VReg:
        self.nv += 1
        return VReg(self.nv, name)

    def label(self, what: str = "") -> str:
        self.nl += 1
        return f".L{self.fn.name}_{what}{self.nl}"

    def add(self, insn: ir.Insn) -> None:
        self.fn.insns.append(insn)

    def slot(self, size: int, align: int = 8, temp: bool = False) -> Slot:
        size = max(size, 1)
        s = Slot(size, max(align, 1))
        if temp:
            self.temp_cursor = (self.temp_cursor + 7) // 8 * 8
            s.temp_offset = self.temp_cursor
            self.temp_cursor += size
        self.fn.slots.append(s)
        return s

    def zero(self, slot: Slot) -> None:
        for off in range(0, slot.size, 8):
            n = min(8, slot.size - off)
            while n not in (1, 2, 4, 8):
                n -= 1
            self.add(ir.Store(slot, off, 8 if slot.size - off >= 8 else n, 0))
            if slot.size - off < 8:
                rest = off + n
                while rest < slot.size:
                    m = 1
                    for cand in (4, 2, 1):
                        if rest + cand <= slot.size:
                            m = cand
                            break
                    self.add(ir.Store(slot, rest, m, 0))
                    rest += m

    # --- entry ---------------------------------------------------------------------------

    def lower(self) -> ir.Function:
        body = self.node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # docstring
        self.block(body)
        if not self.fn.insns or not isinstance(self.fn.insns[-1], ir.Ret):
            self.add(ir.Ret(0))
        return self.fn

    def block(self, stmts: list[ast.stmt]) -> None:
        for s in stmts:
            self.temp_cursor = 0
            self.add(ir.Loc(s.lineno, s.col_offset + 1))
            self.stmt(s)

    # --- statements ----------------------------------------------------------------------

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

    # --- assignment --------------------------------------------------------------------

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
                iv = Int(t.wrap(_lit(iv.v)), t)
        else:
            iv = self.int_val(value, want)
            t = want
        dst = self.set_int_local(target, t)
        self.add(ir.Mov(dst, iv.v))

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

    def copy(self, dst: Mem, src: Mem) -> None:
        size = src.type.size
        off = 0
        while off < size:
            n = 8 if size - off >= 8 else 4 if size - off >= 4 else 2 if size - off >= 2 else 1
            tmp = self.vreg()
            self.add(ir.Load(tmp, self.base_of(src), src.off + off, n))
            self.add(ir.Store(self.base_of(dst), dst.off + off, n, tmp))
            off += n

    def base_of(self, m: Mem) -> Slot | VReg:
        if isinstance(m.base, ir.DataRef):
            v = self.vreg()
            self.add(ir.Mov(v, m.base))
            return v
        return m.base

    def store_int(self, dst: Mem, v: VReg | int) -> None:
        if dst.const:
            self.fail(self.node, "a Const global cannot be assigned in a BPF program")
        self.add(ir.Store(self.base_of(dst), dst.off, dst.type.size, v))

    def addr(self, m: Mem) -> Arg:
        if isinstance(m.base, Slot):
            return FrameAddr(m.base, m.off)
        base: VReg
        if isinstance(m.base, ir.DataRef):
            base = self.vreg()
            self.add(ir.Mov(base, m.base))
        else:
            base = m.base
        if m.off == 0:
            return base
        v = self.vreg()
        self.add(ir.Alu("add", v, base, m.off))
        return v

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

    # --- conditions ----------------------------------------------------------------------

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

    # --- expressions ---------------------------------------------------------------------

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
            return Int(t.wrap(_lit(v.v)), t)
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
            a = Int(b.type.wrap(_lit(a.v)), b.type)
        if b.type is None and a.type is not None:
            b = Int(a.type.wrap(_lit(b.v)), a.type)
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
        a = Int(t.wrap(_lit(a.v)), t) if a.type is None else a
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
            x, y = _lit(a.v), _lit(b.v)
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
        if n in _BUILTINS and (obj is None or getattr(obj, "__bpf_helper__", None) == n):
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
            if n in _BUILTINS:
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

    # --- attributes, subscripts ----------------------------------------------------------

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

    # --- maps ----------------------------------------------------------------------------

    def map_name(self, m: MapDecl) -> str:
        for k, v in self.g.maps.items():
            if v is m:
                return k
        raise AssertionError("map not registered")

    def temp_of(self, t: Type, value: ast.expr) -> Arg:
        """The address of ``value`` (of type ``t``) in memory: itself, or a stack copy."""
        if isinstance(t, IntType):
            iv = self.int_val(value, t)
            slot = self.slot(t.size, t.align, temp=True)
            self.add(ir.Store(slot, 0, t.size, iv.v))
            return FrameAddr(slot)
        v = self.expr(value)
        if isinstance(v, Mem) and (v.type is t or v.type == t):
            return self.addr(v)
        if isinstance(t, StructType) and self.is_struct_ctor(value):
            slot = self.slot(t.size, t.align, temp=True)
            self.zero(slot)
            self.store_to(Mem(slot, 0, t), value, value)
            return FrameAddr(slot)
        self.fail(value, f"expected {t.name}, got {self.tname(v)}")

    def key_arg(self, m: MapDecl, key: ast.expr) -> Arg:
        if m.key is None:
            self.fail(key, f"{type(m).__name__} has no keys")
        return self.temp_of(m.key, key)

    def value_arg(self, m: MapDecl, value: ast.expr) -> Arg:
        assert m.value is not None
        return self.temp_of(m.value, value)

    def lookup(self, m: MapDecl, key: ast.expr) -> VReg:
        if not m.keyed:
            self.fail(key, f"{type(m).__name__} maps are not read with keys")
        k = self.key_arg(m, key)
        p = self.vreg()
        self.add(ir.Call(p, 1, [ir.MapRef(self.map_name(m)), k]))
        return p

    def map_read(self, m: MapDecl, key: ast.expr, default: ast.expr | None, e: ast.AST) -> Val:
        """``m[key]`` / ``m.get(key, default)``: the value, or 0 (default) when missing."""
        vt = m.value
        if not isinstance(vt, IntType):
            assert vt is not None
            if default is not None:
                self.fail(
                    e,
                    "get(key, default) works for integer values; for structs use "
                    "p = m.get(key) and test p is not None",
                )
            return Ptr(self.lookup(m, key), vt)
        p = self.lookup(m, key)
        out = self.vreg()
        dflt = self.int_val(default, vt) if default is not None else Int(0, vt)
        self.add(ir.Mov(out, dflt.v))
        miss = self.label("miss")
        self.add(ir.Br("eq", p, 0, miss))
        self.add(ir.Load(out, p, 0, vt.size))
        if vt.signed and vt.size < 8:
            self.add(ir.Ext(out, out, f"s{vt.bits}"))
        self.add(ir.Label(miss))
        return Int(out, vt)

    def map_aug(self, m: MapDecl, target: ast.Subscript, op: str, value: ast.expr) -> None:
        """``m[k] op= v``: update in place (atomically for + | & ^ on 4/8-byte values),
        or insert ``0 op v`` when the key is missing."""
        vt = m.value
        if not isinstance(vt, IntType):
            self.fail(target, f"{op}= on a map needs integer values")
        rhs = self.int_val(value, vt)
        p = self.lookup(m, target.slice)
        miss, end = self.label("miss"), self.label("done")
        self.add(ir.Br("eq", p, 0, miss))
        atomic = {"add": "add", "sub": "add", "or": "or", "and": "and", "xor": "xor"}.get(op)
        if atomic and vt.size in (4, 8):
            src: VReg | int = rhs.v
            if op == "sub":
                neg = self.vreg()
                self.add(ir.Neg(neg, rhs.v))
                src = neg
            elif isinstance(src, int):
                tmp = self.vreg()
                self.add(ir.Mov(tmp, src))
                src = tmp
            self.add(ir.Atomic(atomic, p, 0, vt.size, src))
        else:
            cur = self.vreg()
            self.add(ir.Load(cur, p, 0, vt.size))
            if vt.signed and vt.size < 8:
                self.add(ir.Ext(cur, cur, f"s{vt.bits}"))
            res = self.binop(op, Int(cur, vt), rhs, target)
            self.add(ir.Store(p, 0, vt.size, res.v))
        self.add(ir.Jmp(end))
        self.add(ir.Label(miss))
        if m.map_type not in (MapType.ARRAY, MapType.PERCPU_ARRAY):
            first = self.binop(op, Int(0, vt), rhs, target)
            slot = self.slot(vt.size, vt.align, temp=True)
            self.add(ir.Store(slot, 0, vt.size, first.v))
            key = self.key_arg(m, target.slice)
            self.add(
                ir.Call(None, 2, [ir.MapRef(self.map_name(m)), key, FrameAddr(slot), BPF_NOEXIST])
            )
        self.add(ir.Label(end))

    def map_method(self, m: MapDecl, meth: str, e: ast.Call) -> Val | None:
        args = e.args
        ref = ir.MapRef(self.map_name(m))
        if meth == "get" and m.keyed and 1 <= len(args) <= 2:
            return self.map_read(m, args[0], args[1] if len(args) == 2 else None, e)
        if meth in ("lookup",) and m.keyed and len(args) == 1:
            assert m.value is not None
            return Ptr(self.lookup(m, args[0]), m.value)
        if meth in ("update", "insert") and m.keyed and len(args) == 2:
            flags = BPF_ANY if meth == "update" else BPF_NOEXIST
            r = self.vreg()
            self.add(
                ir.Call(r, 2, [ref, self.key_arg(m, args[0]), self.value_arg(m, args[1]), flags])
            )
            return Int(r, i64)
        if meth == "delete" and m.keyed and len(args) == 1:
            r = self.vreg()
            self.add(ir.Call(r, 3, [ref, self.key_arg(m, args[0])]))
            return Int(r, i64)
        if meth == "output" and isinstance(m, (RingBuf, PerfEventArray)) and len(args) == 1:
            v = self.expr(args[0])
            if not isinstance(v, Mem) or not isinstance(v.type, (StructType, ArrayType, IntType)):
                self.fail(args[0], "output() sends a struct (or array) variable")
            r = self.vreg()
            if isinstance(m, RingBuf):
                self.add(
                    ir.Call(
                        r, by_id_name("bpf_ringbuf_output"), [ref, self.addr(v), v.type.size, 0]
                    )
                )
            else:
                self.add(
                    ir.Call(
                        r,
                        by_id_name("bpf_perf_event_output"),
                        [self.ctx_reg, ref, BPF_F_CURRENT_CPU, self.addr(v), v.type.size],
                    )
                )
            return Int(r, i64)
        if meth == "tail_call" and isinstance(m, ProgArray) and len(args) == 2:
            idx = self.int_val(args[1], INT_TYPES["u32"])
            # Returns only when the slot is empty; the verifier gives r0 no value after it.
            self.add(ir.Call(None, by_id_name("bpf_tail_call"), [self.ctx_reg, ref, idx.v]))
            return None
        self.fail(
            e,
            f"{type(m).__name__} has no method {meth}() with {len(args)} arguments "
            "(maps: get(k[, default]), lookup(k), update(k, v), insert(k, v), delete(k); "
            "RingBuf/PerfEventArray: output(record); ProgArray: tail_call(ctx, i))",
        )

    # --- calls ---------------------------------------------------------------------------

    def is_struct_ctor(self, e: ast.expr | None) -> bool:
        if not isinstance(e, ast.Call) or not isinstance(e.func, ast.Name):
            return False
        if e.func.id in self.locals:
            return False
        return isinstance(bpf_type(self.g.namespace.get(e.func.id)), StructType)

    def struct_ctor_type(self, e: ast.expr) -> StructType:
        assert isinstance(e, ast.Call) and isinstance(e.func, ast.Name)
        t = bpf_type(self.g.namespace.get(e.func.id))
        assert isinstance(t, StructType)
        return t

    def call(self, e: ast.Call) -> Val | None:
        if (
            isinstance(e.func, ast.Name)
            and e.func.id in self.g.funcs
            and e.func.id not in self.locals
        ):
            return self.call_function(e.func.id, e)
        if isinstance(e.func, ast.Attribute) and e.func.attr == "load":
            base = self.expr(e.func.value)
            if isinstance(base, Obj) and base.kind == "ctx":
                return self.packet_load(e)
        f = (
            self.expr(e.func)
            if not isinstance(e.func, ast.Name) or e.func.id not in ("print",)
            else Obj("print", "builtin")
        )
        if isinstance(f, Obj):
            if f.kind == "type":
                if isinstance(f.obj, IntType):
                    if len(e.args) != 1 or e.keywords:
                        self.fail(e, f"{f.obj.name}(x) converts one value")
                    return self.convert(e.args[0], f.obj)
                if isinstance(f.obj, StructType):
                    slot = self.slot(f.obj.size, f.obj.align)
                    self.zero(slot)
                    mem = Mem(slot, 0, f.obj)
                    self.store_to(mem, e, e)
                    return mem
            if f.kind == "helper":
                return self.helper_call(f.obj, e)
            if f.kind == "method":
                m, meth = f.obj
                return self.map_method(m, meth, e)
            if f.kind == "builtin":
                out: Val | None = _BUILTINS[f.obj](self, e)
                return out
        self.fail(e, f"{ast.unparse(e.func)} cannot be called in a BPF program")

    def call_function(self, name: str, e: ast.Call) -> Int | None:
        """A call of a BPF function of this file (``call name``; r6-r9 survive it)."""
        ptypes, ret = self.g.funcs[name]
        if e.keywords or len(e.args) != len(ptypes):
            self.fail(e, f"{name}() takes {len(ptypes)} positional arguments")
        if len(ptypes) > 5:
            self.fail(e, f"{name}(): BPF functions take at most 5 arguments")
        args: list[VReg | int] = [self.int_val(a, t).v for a, t in zip(e.args, ptypes, strict=True)]
        dst = self.vreg() if ret is not None else None
        self.add(ir.CallLocal(dst, name, args))
        return Int(dst, ret) if dst is not None and ret is not None else None

    def convert(self, arg: ast.expr, t: IntType) -> Int:
        c = self.const_int(arg)
        if c is not None:
            return Int(t.wrap(c), t)
        v = self.to_int(self.expr(arg), arg)
        if v.type is t:
            return v
        dst = self.vreg()
        src_t = v.type or i64
        if (
            t.size == 8
            or (t.size > src_t.size and t.signed == src_t.signed)
            or (t.size > src_t.size and not src_t.signed)
        ):
            # Widening keeps the value (a sign-extended register is already right for iN->i64;
            # u->u/i widening is a plain copy); only narrowing and sign changes re-wrap.
            self.add(ir.Mov(dst, v.v))
            if t.size == 8 and not t.signed and src_t.signed:
                pass  # i32 -1 -> u64: 0xffff...ffff, what C gives
            if t.size > src_t.size and not t.signed and src_t.signed:
                self.add(ir.Ext(dst, dst, f"u{t.bits}"))
            return Int(dst, t)
        self.add(ir.Ext(dst, v.v, f"{'s' if t.signed else 'u'}{t.bits}"))
        return Int(dst, t)

    def helper_call(self, h: Helper, e: ast.Call) -> Val | None:
        if e.keywords:
            self.fail(e, f"{h.name} takes positional arguments: {h.prototype}")
        params = list(h.args)
        given = list(e.args)
        extra: list[ast.expr] = []
        if h.variadic:
            extra = given[len(params) :]
            given = given[: len(params)]
            if len(extra) > 3:
                self.fail(e, f"{h.name} takes at most 3 values after its format")
        if len(given) != len(params):
            sizes = [i for i, p in enumerate(params) if p.kind == "size"]
            if len(given) == len(params) - len(sizes) and sizes:
                # bpf_get_current_comm(buf): the size of the memory before each size argument.
                it = iter(given)
                filled: list[ast.expr | None] = []
                for p in params:
                    filled.append(None if p.kind == "size" else next(it))
                args = self._helper_args(h, filled, e)
            else:
                self.fail(
                    e, f"{h.name} takes {len(params)} arguments, {len(given)} given: {h.prototype}"
                )
        else:
            args = self._helper_args(h, list(given), e)
        for x in extra:
            v = self.expr(x)
            args.append(self.scalar_arg(v, x))
        # bpf_tail_call leaves r0 unreadable (the verifier's rule) when it returns.
        ret = None if h.ret_kind == "void" or h.name == "bpf_tail_call" else self.vreg()
        if not h.prototype_known and h.id == 0:
            self.fail(e, f"{h.name} is not a callable helper")
        self.add(ir.Call(ret, h.id, args))
        if ret is None:
            return None
        if h.ret_kind == "ptr":
            return Int(ret, u64)
        return Int(ret, _RET_TYPES.get(h.ret, i64))

    def _helper_args(self, h: Helper, given: list[ast.expr | None], e: ast.Call) -> list[Arg]:
        out: list[Arg] = []
        last_size: int | None = None
        for p, node in zip(h.args, given, strict=True):
            if node is None:  # an implied size
                if last_size is None:
                    self.fail(e, f"{h.name}: give the {p.name} argument ({h.prototype})")
                out.append(last_size)
                continue
            if isinstance(node, ast.Name) and node.id in self.g.funcs and p.kind == "func":
                out.append(ir.FuncRef(node.id))
                last_size = None
                continue
            v = self.expr(node)
            last_size = None
            if p.kind == "map":
                if not (isinstance(v, Obj) and v.kind == "map"):
                    self.fail(node, f"{h.name}: argument {p.name} must be a map ({h.prototype})")
                out.append(ir.MapRef(self.map_name(v.obj)))
            elif p.kind == "ctx":
                if isinstance(v, Obj) and v.kind == "ctx":
                    out.append(self.ctx_reg)
                else:
                    self.fail(
                        node,
                        f"{h.name}: argument {p.name} is the program's context ({h.prototype})",
                    )
            elif p.kind == "func" and isinstance(node, ast.Name) and node.id in self.g.funcs:
                out.append(ir.FuncRef(node.id))
            elif p.kind in ("ptr", "func"):
                out.append(self.ptr_arg(v, node, h, p.name))
                if isinstance(v, Mem) and not (isinstance(v.type, IntType) and "unsafe" in p.name):
                    last_size = v.type.size
                elif isinstance(v, Int) and v.type is not None and "unsafe" not in p.name:
                    last_size = v.type.size
                elif isinstance(v, Bytes):
                    last_size = len(v.data) + 1
            else:
                out.append(self.scalar_arg(v, node))
        return out

    def ptr_arg(self, v: Val, node: ast.expr, h: Helper, pname: str) -> Arg:
        """A pointer argument: memory's address; an integer is an address itself for
        ``unsafe_ptr``-like arguments (kernel/user addresses), else it is copied to the
        stack and passed by address (``bpf_map_lookup_elem(m, pid)``)."""
        by_value = "unsafe" in pname or pname in ("ptr", "addr")
        if isinstance(v, Mem) and isinstance(v.type, IntType) and by_value:
            return self.read_mem(v).v
        if isinstance(v, Mem):
            return self.addr(v)
        if isinstance(v, Bytes):
            return ir.DataRef(self.string(v.data))
        if isinstance(v, Obj) and v.kind == "map":
            return ir.MapRef(self.map_name(v.obj))
        if isinstance(v, Obj) and v.kind == "ctx":
            return self.ctx_reg
        if isinstance(v, (Ptr, KPtr)):
            return v.v
        if isinstance(v, Int):
            if by_value or v.type is None:
                return v.v
            slot = self.slot(v.type.size, v.type.align, temp=True)
            self.add(ir.Store(slot, 0, v.type.size, v.v))
            return FrameAddr(slot)
        self.fail(
            node,
            f"{h.name}: argument {pname} must be memory (a local array/struct, bytes, "
            f"a pointer), not {self.tname(v)} ({h.prototype})",
        )

    def scalar_arg(self, v: Val, node: ast.expr) -> Arg:
        if isinstance(v, Int):
            return v.v
        if isinstance(v, Mem) and isinstance(v.type, IntType):
            return self.read_mem(v).v
        if isinstance(v, Mem) and isinstance(v.type, ArrayType):
            return self.addr(v)  # a %s argument of bpf_trace_printk
        if isinstance(v, Bytes):
            return ir.DataRef(self.string(v.data))
        if isinstance(v, (Ptr, KPtr)):
            return v.v
        self.fail(node, f"expected an integer, got {self.tname(v)}")

    def string(self, data: bytes) -> str:
        sym = self.g.strings.get(data)
        if sym is None:
            sym = f".Lstr.{len(self.g.strings)}"
            self.g.strings[data] = sym
        return sym

    def call_helper(self, name: str, args: list[Arg], e: ast.AST) -> VReg:
        h = by_name(name)
        assert h is not None
        r = self.vreg()
        self.add(ir.Call(r, h.id, args))
        return r

    # --- packets -------------------------------------------------------------------------

    def packet_load(self, e: ast.Call) -> Int:
        """``ctx.load(T, offset)``: the packet's bytes at ``offset`` as ``T`` (host order;
        see ntohs/ntohl), 0 when the packet is shorter."""
        if len(e.args) != 2:
            self.fail(e, "ctx.load(T, offset) takes a type and a byte offset")
        t = self.expr(e.args[0])
        if not (isinstance(t, Obj) and t.kind == "type" and isinstance(t.obj, IntType)):
            self.fail(e.args[0], "ctx.load's first argument is an integer type (u8, u16, u32, u64)")
        it: IntType = t.obj
        kind = self.ctxdesc.packet
        if not kind:
            self.fail(e, f"{self.ctxdesc.name} has no packet")
        out = self.vreg()
        self.add(ir.Mov(out, 0))
        end = self.label("pkt")
        off = self.const_int(e.args[1])
        if kind == "skb_load":
            offv = self.int_val(e.args[1], INT_TYPES["u32"])
            slot = self.slot(8, 8, temp=True)
            self.add(ir.Store(slot, 0, 8, 0))
            r = self.vreg()
            self.add(
                ir.Call(
                    r,
                    by_id_name("bpf_skb_load_bytes"),
                    [self.ctx_reg, offv.v, FrameAddr(slot), it.size],
                )
            )
            self.add(ir.Br("ne", r, 0, end))
            self.add(ir.Load(out, slot, 0, it.size))
        else:
            fields = self.ctxdesc.fields
            data, data_end = self.vreg(), self.vreg()
            self.add(ir.Load(data, self.ctx_reg, fields["data"].offset, 4))
            self.add(ir.Load(data_end, self.ctx_reg, fields["data_end"].offset, 4))
            if off is None:
                offv = self.int_val(e.args[1], INT_TYPES["u16"])  # bounded: the verifier's need
                p = self.vreg()
                self.add(ir.Alu("add", p, data, offv.v))
            else:
                if not 0 <= off < 0xFFFF:
                    self.fail(e.args[1], "packet offsets are 0..65534")
                p = self.vreg()
                self.add(ir.Alu("add", p, data, off))
            lim = self.vreg()
            self.add(ir.Alu("add", lim, p, it.size))
            self.add(ir.Br("gt", lim, data_end, end))
            self.add(ir.Load(out, p, 0, it.size))
        if it.signed and it.size < 8:
            self.add(ir.Ext(out, out, f"s{it.bits}"))
        self.add(ir.Label(end))
        return Int(out, it)


def _lit(v: VReg | int) -> int:
    assert isinstance(v, int)
    return v


def by_id_name(name: str) -> int:
    h = by_name(name)
    assert h is not None, name
    return h.id


# --- builtins ----------------------------------------------------------------------------


def _print(lw: Lowerer, e: ast.Call) -> None:
    """print(a, b, ...) / print(f"...") -> bpf_trace_printk (at most 3 values)."""
    fmt = bytearray()
    vals: list[Arg] = []
    sep, end = b" ", b"\n"
    for k in e.keywords:
        if (
            k.arg in ("sep", "end")
            and isinstance(k.value, ast.Constant)
            and isinstance(k.value.value, str)
        ):
            if k.arg == "sep":
                sep = k.value.value.encode()
            else:
                end = k.value.value.encode()
        else:
            lw.fail(k.value, "print() takes sep= and end= (constant strings) only")

    def add_value(node: ast.expr, spec: str) -> None:
        v = lw.expr(node)
        if isinstance(v, Bytes):
            fmt.extend(v.data.replace(b"%", b"%%"))
            return
        if isinstance(v, Mem) and isinstance(v.type, ArrayType):
            fmt.extend(b"%s")
            vals.append(lw.addr(v))
            return
        iv = lw.to_int(v, node)
        t = iv.type or i64
        long = "ll" if t.size == 8 else ""
        conv = {"x": "x", "X": "X", "d": "d" if t.signed else "u", "": "d" if t.signed else "u",
                "o": "o"}.get(spec.lstrip("0123456789"))  # fmt: skip
        if conv is None:
            lw.fail(node, f"format spec {spec!r} is not supported (use d, x, X, o, with a width)")
        width = spec[: len(spec) - len(spec.lstrip("0123456789"))]
        fmt.extend(f"%{width}{long}{conv}".encode())
        vals.append(iv.v)

    for i, a in enumerate(e.args):
        if i:
            fmt.extend(sep)
        if isinstance(a, ast.JoinedStr):
            for part in a.values:
                if isinstance(part, ast.Constant):
                    fmt.extend(str(part.value).encode().replace(b"%", b"%%"))
                elif isinstance(part, ast.FormattedValue):
                    spec = ""
                    if isinstance(part.format_spec, ast.JoinedStr):
                        spec = "".join(
                            str(x.value)
                            for x in part.format_spec.values
                            if isinstance(x, ast.Constant)
                        )
                    add_value(part.value, spec)
        else:
            add_value(a, "")
    fmt.extend(end)
    if len(vals) > 3:
        lw.fail(e, f"print() in BPF shows at most 3 values (bpf_trace_printk), not {len(vals)}")
    sym = lw.string(bytes(fmt))
    lw.add(
        ir.Call(lw.vreg(), by_id_name("bpf_trace_printk"), [ir.DataRef(sym), len(fmt) + 1, *vals])
    )


def _swap(bits: int, signed: bool = False) -> Callable[[Lowerer, ast.Call], Val]:
    def fn(lw: Lowerer, e: ast.Call) -> Val:
        if len(e.args) != 1:
            lw.fail(e, "takes one value")
        t = INT_TYPES[f"u{bits}"]
        v = lw.int_val(e.args[0], t)
        dst = lw.vreg()
        lw.add(ir.Swap(dst, v.v, bits))
        return Int(dst, t)

    return fn


def _minmax(is_min: bool) -> Callable[[Lowerer, ast.Call], Val]:
    def fn(lw: Lowerer, e: ast.Call) -> Val:
        if len(e.args) != 2:
            lw.fail(e, "min/max take two values")
        a, b = lw.int_pair(e.args[0], e.args[1])
        t = a.type or b.type or i64
        dst = lw.vreg()
        keep = lw.label("mm")
        lw.add(ir.Mov(dst, a.v))
        op = ("sle" if t.signed else "le") if is_min else ("sge" if t.signed else "ge")
        lw.add(ir.Br(op, dst, b.v, keep))
        lw.add(ir.Mov(dst, b.v))
        lw.add(ir.Label(keep))
        return Int(dst, t)

    return fn


def _comm(lw: Lowerer, e: ast.Call) -> Val:
    """comm() -> u8[16] holding the current task's name (bpf_get_current_comm)."""
    t = ArrayType(INT_TYPES["u8"], 16)
    slot = lw.slot(16, 8)
    lw.zero(slot)
    lw.call_helper("bpf_get_current_comm", [FrameAddr(slot), 16], e)
    return Mem(slot, 0, t)


def _pid(shift: int, mask: bool) -> Callable[[Lowerer, ast.Call], Val]:
    def fn(lw: Lowerer, e: ast.Call) -> Val:
        r = lw.call_helper("bpf_get_current_pid_tgid", [], e)
        dst = lw.vreg()
        if shift:
            lw.add(ir.Alu("rsh", dst, r, 32))
        else:
            lw.add(ir.Ext(dst, r, "u32"))
        return Int(dst, INT_TYPES["u32"])

    return fn


def _low32(lw: Lowerer, r: VReg) -> VReg:
    dst = lw.vreg()
    lw.add(ir.Ext(dst, r, "u32"))
    return dst


def _ktime(lw: Lowerer, e: ast.Call) -> Val:
    return Int(lw.call_helper("bpf_ktime_get_ns", [], e), u64)


def _kptr(lw: Lowerer, e: ast.Call) -> Val:
    """kernel("task_struct", address): a typed kernel pointer for CO-RE field reads."""
    if (
        len(e.args) != 2
        or not isinstance(e.args[0], ast.Constant)
        or not isinstance(e.args[0].value, str)
    ):
        lw.fail(e, 'kernel("struct_name", address) names a kernel struct and an address')
    v = lw.int_val(e.args[1], u64)
    return KPtr(v.v, e.args[0].value)


def _current_task(lw: Lowerer, e: ast.Call) -> Val:
    return KPtr(lw.call_helper("bpf_get_current_task", [], e), "task_struct")


def _sizeof(lw: Lowerer, e: ast.Call) -> Val:
    if len(e.args) != 1:
        lw.fail(e, "sizeof(x) takes one type or variable")
    v = lw.expr(e.args[0])
    if isinstance(v, Obj) and v.kind == "type":
        return Int(v.obj.size, None)
    if isinstance(v, Mem):
        return Int(v.type.size, None)
    if isinstance(v, Int) and v.type is not None:
        return Int(v.type.size, None)
    lw.fail(e, "sizeof() takes a type or a variable")


_BUILTINS: dict[str, Callable[[Lowerer, ast.Call], Any]] = {
    "print": _print,
    "htons": _swap(16), "ntohs": _swap(16), "htonl": _swap(32), "ntohl": _swap(32),
    "bswap64": _swap(64),
    "min": _minmax(True), "max": _minmax(False),
    "comm": _comm,
    "pid": _pid(32, False), "tid": _pid(0, True),
    "uid": lambda lw, e: Int(_low32(lw, lw.call_helper("bpf_get_current_uid_gid", [], e)), INT_TYPES["u32"]),
    "ktime_ns": _ktime,
    "kernel": _kptr,
    "current_task": _current_task,
    "sizeof": _sizeof,
}  # fmt: skip
