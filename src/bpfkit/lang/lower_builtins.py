"""The builtins of BPF programs written in Python (``print``, ``htons``, ``min``, ``comm``,
``pid``, ``ktime_ns``, ``kernel``, ``sizeof``, ...), each lowered to IR by a function of
the lowerer and the call (:mod:`bpfkit.lang.lower`)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from bpfkit.lang import ir
from bpfkit.lang.ir import Arg, FrameAddr, VReg
from bpfkit.lang.lower_base import by_id_name
from bpfkit.lang.lower_expr import ExprLowerer
from bpfkit.lang.types import INT_TYPES, ArrayType, i64, u64
from bpfkit.lang.values import Bytes, Int, KPtr, Mem, Obj, Val


def _print(lw: ExprLowerer, e: ast.Call) -> None:
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


def _swap(bits: int, signed: bool = False) -> Callable[[ExprLowerer, ast.Call], Val]:
    def fn(lw: ExprLowerer, e: ast.Call) -> Val:
        if len(e.args) != 1:
            lw.fail(e, "takes one value")
        t = INT_TYPES[f"u{bits}"]
        v = lw.int_val(e.args[0], t)
        dst = lw.vreg()
        lw.add(ir.Swap(dst, v.v, bits))
        return Int(dst, t)

    return fn


def _minmax(is_min: bool) -> Callable[[ExprLowerer, ast.Call], Val]:
    def fn(lw: ExprLowerer, e: ast.Call) -> Val:
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


def _comm(lw: ExprLowerer, e: ast.Call) -> Val:
    """comm() -> u8[16] holding the current task's name (bpf_get_current_comm)."""
    t = ArrayType(INT_TYPES["u8"], 16)
    slot = lw.slot(16, 8)
    lw.zero(slot)
    lw.call_helper("bpf_get_current_comm", [FrameAddr(slot), 16], e)
    return Mem(slot, 0, t)


def _pid(shift: int, mask: bool) -> Callable[[ExprLowerer, ast.Call], Val]:
    def fn(lw: ExprLowerer, e: ast.Call) -> Val:
        r = lw.call_helper("bpf_get_current_pid_tgid", [], e)
        dst = lw.vreg()
        if shift:
            lw.add(ir.Alu("rsh", dst, r, 32))
        else:
            lw.add(ir.Ext(dst, r, "u32"))
        return Int(dst, INT_TYPES["u32"])

    return fn


def _low32(lw: ExprLowerer, r: VReg) -> VReg:
    dst = lw.vreg()
    lw.add(ir.Ext(dst, r, "u32"))
    return dst


def _ktime(lw: ExprLowerer, e: ast.Call) -> Val:
    return Int(lw.call_helper("bpf_ktime_get_ns", [], e), u64)


def _kptr(lw: ExprLowerer, e: ast.Call) -> Val:
    """kernel("task_struct", address): a typed kernel pointer for CO-RE field reads."""
    if (
        len(e.args) != 2
        or not isinstance(e.args[0], ast.Constant)
        or not isinstance(e.args[0].value, str)
    ):
        lw.fail(e, 'kernel("struct_name", address) names a kernel struct and an address')
    v = lw.int_val(e.args[1], u64)
    return KPtr(v.v, e.args[0].value)


def _current_task(lw: ExprLowerer, e: ast.Call) -> Val:
    return KPtr(lw.call_helper("bpf_get_current_task", [], e), "task_struct")


def _sizeof(lw: ExprLowerer, e: ast.Call) -> Val:
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


BUILTINS: dict[str, Callable[[ExprLowerer, ast.Call], Any]] = {
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
