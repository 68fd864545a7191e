"""Python AST to IR: type checking and code shapes the verifier accepts.

One :class:`Lowerer` per program function.  Values are typed as they are lowered
(:class:`Val`); integers are kept wrapped to their width after every operation (see
:mod:`bpfkit.lang.types` for the semantics).  Map accesses become helper calls with the
NULL check the verifier needs; packet reads get their bounds check.  Every error is a
:class:`~bpfkit.errors.CompileError` at the file:line:column of the construct.

The lowering is layered, each layer a base class of :class:`Lowerer`:
:mod:`~bpfkit.lang.lower_base` (state, plumbing, moves), :mod:`~bpfkit.lang.lower_expr`
(expressions, conditions, stores), :mod:`~bpfkit.lang.lower_calls` (maps, calls, packets),
:mod:`~bpfkit.lang.lower_stmt` (statements, assignments); the values are in
:mod:`~bpfkit.lang.values` and the builtins in :mod:`~bpfkit.lang.lower_builtins`.
"""

from __future__ import annotations

import ast

from bpfkit.lang import ir
from bpfkit.lang.lower_base import BPF_ANY, BPF_F_CURRENT_CPU, BPF_NOEXIST, by_id_name
from bpfkit.lang.lower_builtins import BUILTINS
from bpfkit.lang.lower_stmt import StmtLowerer
from bpfkit.lang.values import Bytes, Globals, Int, KPtr, Local, Mem, Obj, Ptr, Val

__all__ = [
    "BPF_ANY",
    "BPF_F_CURRENT_CPU",
    "BPF_NOEXIST",
    "Bytes",
    "Globals",
    "Int",
    "KPtr",
    "Local",
    "Lowerer",
    "Mem",
    "Obj",
    "Ptr",
    "Val",
    "by_id_name",
]


class Lowerer(StmtLowerer):
    """Lowers one function's body (see the module docstring)."""

    builtins = BUILTINS

    def lower(self) -> ir.Function:
        body = self.node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # docstring
        self.block(body)
        if not self.fn.insns or not isinstance(self.fn.insns[-1], ir.Ret):
            self.add(ir.Ret(0))
        return self.fn
