"""The lowering's state and plumbing (:mod:`bpfkit.lang.lower`): one function's IR being
built (registers, labels, stack slots), errors at the construct's file:line:column, moves
between memory and registers, and the small leaves the others share (helper calls, strings,
map and struct names).  :class:`LowererBase` is the first of the lowering's layers (then
:class:`~bpfkit.lang.lower_expr.ExprLowerer`, :class:`~bpfkit.lang.lower_calls.CallLowerer`,
:class:`~bpfkit.lang.lower_stmt.StmtLowerer`, :class:`~bpfkit.lang.lower.Lowerer`)."""

from __future__ import annotations

import ast
from typing import NoReturn

from bpfkit.errors import CompileError
from bpfkit.lang import ir
from bpfkit.lang.ctx import Context
from bpfkit.lang.decl import MapDecl
from bpfkit.lang.ir import Arg, FrameAddr, Slot, VReg
from bpfkit.lang.types import IntType, StructType, bpf_type
from bpfkit.lang.values import Globals, Int, Local, Mem
from bpfkit.uapi import UpdateFlag
from bpfkit.uapi.helpers import by_name

BPF_ANY, BPF_NOEXIST = int(UpdateFlag.BPF_ANY), int(UpdateFlag.BPF_NOEXIST)
BPF_F_CURRENT_CPU = 0xFFFFFFFF


def by_id_name(name: str) -> int:
    h = by_name(name)
    assert h is not None, name
    return h.id


class LowererBase:
    """One function's lowering: its state and plumbing."""

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

    # --- plumbing ----------------------------------------------------------------------------

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

    # --- memory ------------------------------------------------------------------------------

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

    # --- names, helper calls -----------------------------------------------------------------

    def map_name(self, m: MapDecl) -> str:
        for k, v in self.g.maps.items():
            if v is m:
                return k
        raise AssertionError("map not registered")

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
