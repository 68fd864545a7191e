"""Record a trimmed copy of this kernel's BTF (and a little of its description) for the
no-root tests of bpfkit.obj.prepare (tests/obj/test_prepare.py).

    python3 scripts/record_kernel_btf.py [OUT_DIR]     # default tests/data/kernel

Writes OUT_DIR/vmlinux.btf: the named types below with what they reference, where a
pointer to a struct or union not asked for becomes a pointer to a forward declaration
and an embedded one an empty struct of the same name and size (offsets and sizes stay
the kernel's; only the asked-for types have members).  Written with bpfkit's own encoder.
OUT_DIR/kernel.json: the kernel version, machine, a few CONFIG_* values and kallsyms
addresses the tests resolve externs with.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from bpfkit.btf import load_vmlinux
from bpfkit.btf import types as T
from bpfkit.btf.btf import Btf
from bpfkit.btf.encode import BtfBuilder
from bpfkit.kernel.features import kernel_version
from bpfkit.kernel.symbols import kallsyms
from bpfkit.kernel.target import kernel_config

# (kind, name): what tests/kernel/load_progs/*.c and tests/obj/test_prepare.py use.
WANTED = [
    ("struct", "task_struct"),  # CO-RE (core.c)
    ("enum", "pid_type"),
    ("func", "bpf_iter_num_new"),  # kfuncs (externs.c)
    ("func", "bpf_iter_num_next"),
    ("func", "bpf_iter_num_destroy"),
    ("typedef", "btf_trace_sched_switch"),  # tp_btf/sched_switch (btf_targets.c)
    ("func", "bpf_iter_task"),  # iter/task
    ("var", "bpf_prog_active"),  # a typed ksym
    ("struct", "tcp_congestion_ops"),  # struct_ops
]
CONFIG = ["CONFIG_HZ", "CONFIG_BPF_SYSCALL"]
KALLSYMS = ["_stext", "bpf_prog_put"]  # this kernel lists functions only


Node = tuple[str, int]  # ("type", kernel id) or ("fwd", kernel id of the struct)


def _refs(t: T.Type) -> list[int]:
    """Type ids ``t`` refers to."""
    if isinstance(t, T.Struct):
        return [m.type for m in t.members]
    if isinstance(t, T.Ref | T.Func | T.Var | T.DeclTag):
        return [t.type]
    if isinstance(t, T.Array):
        return [t.type, t.index_type]
    if isinstance(t, T.FuncProto):
        return [t.return_type, *(p.type for p in t.params)]
    return []


def trim(kernel: Btf, roots: list[int]) -> BtfBuilder:
    """The types of ``roots`` and what they need (see the module docstring)."""
    wanted = set(roots)
    order: list[Node] = []
    seen: set[Node] = set()

    def node_for(tid: int, through_pointer: bool) -> Node:
        t = kernel.type(tid)
        if through_pointer and isinstance(t, T.Struct) and t.name and tid not in wanted:
            return ("fwd", tid)
        return ("type", tid)

    def children(node: Node) -> list[Node]:
        kind, tid = node
        t = kernel.type(tid)
        if kind == "fwd" or (isinstance(t, T.Struct) and tid not in wanted):
            return []
        return [node_for(r, isinstance(t, T.Ptr)) for r in _refs(t) if r]

    work = [("type", r) for r in roots]
    while work:
        node = work.pop(0)
        if node in seen:
            continue
        seen.add(node)
        order.append(node)
        work += children(node)
    new_id = {node: i + 1 for i, node in enumerate(order)}

    def ref(tid: int, through_pointer: bool = False) -> int:
        return new_id[node_for(tid, through_pointer)] if tid else 0

    out = BtfBuilder()
    for kind, tid in order:
        t = kernel.type(tid)
        new: T.Type
        if kind == "fwd":
            assert isinstance(t, T.Struct)
            new = T.Fwd(0, t.name, isinstance(t, T.Union))
        elif isinstance(t, T.Struct) and tid not in wanted:
            new = replace(t, members=())  # embedded: name and size only
        elif isinstance(t, T.Struct):
            new = replace(t, members=tuple(replace(m, type=ref(m.type)) for m in t.members))
        elif isinstance(t, T.Ptr):
            new = replace(t, type=ref(t.type, through_pointer=True))
        elif isinstance(t, T.Ref | T.Func | T.Var | T.DeclTag):
            new = replace(t, type=ref(t.type))
        elif isinstance(t, T.Array):
            new = replace(t, type=ref(t.type), index_type=ref(t.index_type))
        elif isinstance(t, T.FuncProto):
            params = tuple(replace(p, type=ref(p.type)) for p in t.params)
            new = replace(t, return_type=ref(t.return_type), params=params)
        else:
            new = t
        assert out.add(new, share=False) == new_id[(kind, tid)]
    return out


def main() -> None:
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/kernel")
    kernel = load_vmlinux()
    out = trim(kernel, [kernel.find(name, kind).id for kind, name in WANTED])
    out_dir.mkdir(parents=True, exist_ok=True)
    blob = out.encode()
    (out_dir / "vmlinux.btf").write_bytes(blob)
    config = kernel_config()
    symbols = kallsyms().addresses
    desc = {
        "version": list(kernel_version()),
        "machine": os.uname().machine,
        "config": {k: config[k] for k in CONFIG if k in config},
        "kallsyms": {k: symbols[k] for k in KALLSYMS if k in symbols},
        "wanted": [f"{k} {n}" for k, n in WANTED],
    }
    (out_dir / "kernel.json").write_text(json.dumps(desc, indent=1) + "\n")
    print(f"{out_dir}/vmlinux.btf: {len(out.types)} types, {len(blob)} bytes")


if __name__ == "__main__":
    main()
