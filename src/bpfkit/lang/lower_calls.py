"""Calls and maps in the lowering (:mod:`bpfkit.lang.lower`): map reads, updates and
methods as helper calls with the NULL check the verifier needs, calls of BPF functions,
builtins, helpers (their arguments checked and converted) and struct constructors, and
packet loads with their bounds check."""

from __future__ import annotations

import ast

from bpfkit.lang import ir
from bpfkit.lang.decl import MapDecl, PerfEventArray, ProgArray, RingBuf
from bpfkit.lang.ir import Arg, FrameAddr, VReg
from bpfkit.lang.lower_base import BPF_ANY, BPF_F_CURRENT_CPU, BPF_NOEXIST, by_id_name
from bpfkit.lang.lower_expr import ExprLowerer
from bpfkit.lang.types import INT_TYPES, ArrayType, IntType, StructType, Type, i64, u64
from bpfkit.lang.values import Bytes, Int, KPtr, Mem, Obj, Ptr, Val
from bpfkit.uapi import MapType
from bpfkit.uapi.helpers import Helper

_RET_TYPES = {"long": i64, "int": INT_TYPES["i32"], "__s64": i64, "__u64": u64,
              "__u32": INT_TYPES["u32"]}  # fmt: skip


class CallLowerer(ExprLowerer):
    """Maps, calls and packet loads."""

    # --- maps --------------------------------------------------------------------------------

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

    # --- calls -------------------------------------------------------------------------------

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
                out: Val | None = self.builtins[f.obj](self, e)
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

    # --- packets -----------------------------------------------------------------------------

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
