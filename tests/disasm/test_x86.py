"""x86-64 disassembly (bpfkit.disasm.x86, LLVM's C API as bpftool calls it) against
llvm-mc-19 on the same bytes, and bpftool's line-info lookup and prototype text (no root)."""

from __future__ import annotations

import re

import pytest

from bpfkit.btf import parse_btf
from bpfkit.btf import types as T
from bpfkit.btf.cdecl import type_only
from bpfkit.btf.encode import encode_btf
from bpfkit.disasm.x86 import disassemble
from bpfkit.kernel.linfo import find_line as _find
from helpers import llvm_mc_x86 as llvm_mc

# What the x86-64 JIT emits: prologue nops, frame set-up, moves, arithmetic, a call, loads
# and stores, a locked add, conditional and unconditional jumps, leave, ret.
CODE = bytes.fromhex(
    "0f1f440000 0f1f00 55 4889e5 4881ec10000000 53 4889fb 31ff 897dfc 4889ee 4883c6fc"
    " 48bf00e0d0aa8188ffff 8b06 4883f801 7306 48c1e003 eb02 31c0 4885c0 7410"
    " f0480fc138 e8a0ffffff 5b c9 c3"
)
BASE = 0xFFFFFFFFC0001000


@pytest.mark.requires("llvm19")
def test_text_is_llvm_mc_and_targets_are_absolute() -> None:
    insns = disassemble(CODE, BASE)
    assert b"".join(i.data for i in insns) == CODE
    theirs = llvm_mc(CODE)
    assert len(theirs) == len(insns)
    for insn, ref in zip(insns, theirs, strict=True):
        m = re.fullmatch(r"(\t\w+\t)0x([0-9a-f]+)", insn.text)
        if m and ref.startswith(m.group(1)) and re.fullmatch(r"-?\d+", ref.split("\t")[2]):
            assert int(m.group(2), 16) == BASE + insn.offset + len(insn.data) + int(
                ref.split("\t")[2]
            )
        else:
            assert insn.text == ref
    assert insns[2].text == "\tpushq\t%rbp" and insns[2].operation == "pushq"
    assert insns[0].operands == ["%rax", "%rax"]
    assert insns[-1].operands == []


@pytest.mark.requires("llvm19")
def test_undecodable_bytes_end_the_listing() -> None:
    insns = disassemble(bytes.fromhex("55 0f0b 06"), 0)  # push, ud2, then no x86-64 insn
    assert [i.text for i in insns[:2]] == ["\tpushq\t%rbp", "\tud2"]
    assert insns[-1].data == b"" and insns[-1].offset == 3


def test_line_lookup_follows_libbpf() -> None:
    # Records at addresses 0, 0, 10: like bpf_prog_linfo__lfind_addr_func, the last one at
    # or before the address, from the record after the last shown.
    lines = ((100, (0, 0, 1, 0)), (100, (1, 0, 2, 0)), (110, (5, 0, 3, 0)))
    assert _find(lines, 100, 0) == (1, 0, 2, 0)
    assert _find(lines, 103, 1) == (1, 0, 2, 0)  # shown again: skip moved by one only
    assert _find(lines, 105, 2) is None
    assert _find(lines, 110, 2) == (5, 0, 3, 0)
    assert _find(lines, 120, 3) is None


def test_prototype_text_is_bpftools() -> None:
    types: list[T.Type] = [
        T.Void(0, ""),
        T.Int(1, "int", 4, 1, 0, 32),
        T.Struct(2, "__sk_buff", 4, ()),
        T.Ptr(3, "", 2),
        T.Ptr(4, "", 0),
        T.Const(5, "", 1),
        T.FuncProto(6, "", 1, (T.Param("skb", 3), T.Param("p", 4), T.Param("", 5))),
        T.Func(7, "prog", 6, 1),
        T.FuncProto(8, "", 0, (T.Param("", 1), T.Param("", 0))),
    ]
    btf = parse_btf(encode_btf(types))
    assert type_only(btf, 7) == "int prog(struct __sk_buff * skb, void * p, const int)"
    assert type_only(btf, 8) == "void (int, ...)"
