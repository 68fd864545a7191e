"""Every helper of the helper table is callable from bpfkit.lang by name, with its
prototype checked: a call of each with arguments of the right kinds compiles to that
helper's call instruction; wrong argument counts and kinds are compile errors."""

from __future__ import annotations

from typing import Any

import pytest

from bpfkit.errors import CompileError
from bpfkit.lang.compiler import compile_source
from bpfkit.uapi.helpers import HELPERS, by_name

# An argument of each kind: a map, the context, memory (a local array), a size, flags, an
# integer, a callback (a BPF function of the file).
ARG = {
    "map": "m",
    "ctx": "ctx",
    "ptr": "buf",
    "size": "8",
    "flags": "0",
    "scalar": "1",
    "func": "cb",
}
CALL = 0x85


def _compile(src: str, name: str = "helpers.py") -> Any:
    ns: dict[str, Any] = {}
    exec(compile(src, name, "exec"), ns)
    return compile_source(src, ns, name)


def test_every_helper_compiles_to_its_call() -> None:
    lines = ["from bpfkit.lang import *", "m = HashMap[u32, u64](max_entries=4)", "",
             "def cb(a: u64, b: u64) -> i64:", "    return 0", ""]  # fmt: skip
    helpers = [h for h in HELPERS if h.id != 0]
    for h in helpers:
        args = ", ".join(ARG[a.kind] for a in h.args)
        lines += [f'@kprobe("f{h.id}")', f"def call_{h.id}(ctx) -> i32:",
                  "    buf: u8[8] = b''", f"    {h.name}({args})", "    return 0", ""]  # fmt: skip
    spec = _compile("\n".join(lines)).spec
    calls = {
        p.name: [i.imm for i in p.insns if i.opcode == CALL and i.src == 0] for p in spec.programs
    }
    assert len(calls) == len(helpers) + 1 == 212  # and the callback, in .text
    for h in helpers:
        assert calls[f"call_{h.id}"] == [h.id], h.name
    with_callbacks = [h for h in helpers if any(a.kind == "func" for a in h.args)]
    assert len(with_callbacks) == 5
    for h in with_callbacks:  # the callback's address: lddw with a relocation to cb
        prog = next(p for p in spec.programs if p.name == f"call_{h.id}")
        assert any(r.symbol in ("cb", ".text") for r in prog.relocations), h.name


def test_sizes_may_be_implied_by_the_memory_before_them() -> None:
    src = (
        "from bpfkit.lang import *\n@kprobe('x')\ndef f(ctx) -> i32:\n"
        "    name: u8[16] = b''\n    bpf_get_current_comm(name)\n    return 0\n"
    )
    prog = _compile(src).spec.programs[0]
    i = [n for n, x in enumerate(prog.insns) if x.opcode == CALL][0]
    sizes = [x.imm for x in prog.insns[:i] if x.opcode == 0xB7 and x.dst == 2]  # r2 = imm
    assert sizes == [16]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("bpf_map_lookup_elem(m)", "bpf_map_lookup_elem takes 2 arguments, 1 given"),
        ("bpf_map_lookup_elem(1, buf)", "argument map must be a map"),
        ("bpf_skb_pull_data(1, 2)", "argument skb is the program's context"),
        ("bpf_no_such_helper()", "unknown name 'bpf_no_such_helper'"),
    ],
)
def test_prototypes_are_checked(call: str, message: str) -> None:
    src = (
        "from bpfkit.lang import *\nm = HashMap[u32, u64](max_entries=4)\n"
        f"@kprobe('x')\ndef f(ctx) -> i32:\n    buf: u8[8] = b''\n    {call}\n    return 0\n"
    )
    with pytest.raises(CompileError) as e:
        _compile(src, "proto.py")
    assert message in str(e.value) and e.value.line == 6
    assert by_name("bpf_map_lookup_elem") is not None
