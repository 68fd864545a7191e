"""Which trace lines an object's programs can print: printk formats found statically."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpfkit.events.printk import format_regex, line_matcher, printk_formats
from bpfkit.isa.insn import Insn
from bpfkit.obj.reader import read_object
from bpfkit.obj.spec import ObjectSpec, ProgramSpec
from helpers import ROOT, clang_bpf

HELLO = ROOT / "examples" / "hello" / "hello.o"


def _spec(*progs: ProgramSpec) -> ObjectSpec:
    return ObjectSpec("t.o", False, progs, (), (), "GPL", None, (), (), {})


def _prog(insns: list[Insn]) -> ProgramSpec:
    return ProgramSpec("p", "tracepoint/a/b", 1, 0, tuple(insns), (), False)


def _stack_string(text: bytes, at: int) -> list[Insn]:
    """Stores writing ``text`` at r10+at, 4 bytes at a time (st [r10+off], imm)."""
    out = []
    padded = text + bytes(-len(text) % 4)
    for i in range(0, len(padded), 4):
        word = int.from_bytes(padded[i : i + 4], "little")
        out.append(Insn(0x62, 10, 0, at + i, word - (1 << 32) if word >= 1 << 31 else word))
    return out


def test_the_seeds_hello_builds_its_string_on_the_stack() -> None:
    assert printk_formats(read_object(str(HELLO))) == ["hello from rust\n"]


def test_stack_string_through_copied_frame_pointer() -> None:
    insns = _stack_string(b"hi %d!\0", -16) + [
        Insn(0xBF, 1, 10),  # r1 = r10
        Insn(0x07, 1, 0, 0, -16),  # r1 += -16
        Insn(0xB7, 2, 0, 0, 7),  # r2 = 7
        Insn(0x85, 0, 0, 0, 6),  # call bpf_trace_printk
        Insn(0xB7, 0),
        Insn(0x95),
    ]
    assert printk_formats(_spec(_prog(insns))) == ["hi %d!"]


def test_unknown_format_keeps_every_line() -> None:
    insns = [Insn(0x79, 1, 1, 0, 0), Insn(0xB7, 2, 0, 0, 8), Insn(0x85, 0, 0, 0, 6), Insn(0x95)]
    assert printk_formats(_spec(_prog(insns))) is None
    assert line_matcher(None) is None


def test_a_program_that_never_prints_shows_no_lines() -> None:
    spec = _spec(_prog([Insn(0xB7, 0), Insn(0x95)]))
    assert printk_formats(spec) == []
    matcher = line_matcher([])
    assert matcher is not None and not matcher("anything")


@pytest.mark.parametrize(
    ("fmt", "yes", "no"),
    [
        ("pkt %d sum %d\n", "pkt 1 sum 570", "pkt x"),
        ("hello from rust\n", "hello from rust", "hello from rust!"),
        ("100%% done %s", "100% done ok", "100%% done ok"),
        ("ip %pI4 port %u len %llx", "ip 10.0.0.1 port 80 len 1f", "ip 10.0.0.1"),
        ("a.b*c (%c)", "a.b*c (x)", "aXb*c (x)"),
    ],
)
def test_format_regex(fmt: str, yes: str, no: str) -> None:
    assert format_regex(fmt).fullmatch(yes)
    assert not format_regex(fmt).fullmatch(no)


@pytest.mark.requires("clang19")
def test_c_bpf_printk_formats_in_rodata(tmp_path: Path) -> None:
    assert shutil.which("clang-19")
    src = tmp_path / "p.c"
    src.write_text(
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
        'SEC("tracepoint/syscalls/sys_enter_getppid") int a(void *ctx) {\n'
        '  bpf_printk("first %d", 1);\n'
        '  bpf_printk("second %s and %d", "x", 2);\n'
        "  return 0; }\n"
        'char LICENSE[] SEC("license") = "GPL";\n'
    )
    obj = tmp_path / "p.o"
    clang_bpf(src, obj)
    assert printk_formats(read_object(str(obj))) == ["first %d", "second %s and %d"]


_literal = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="%"),
    max_size=8,
)
_conv = st.sampled_from(["%d", "%u", "%llx", "%s", "%pI4", "%5d", "%-3s", "%c", "%%"])


@given(parts=st.lists(st.tuples(_literal, _conv, st.text(max_size=6)), max_size=5), tail=_literal)
def test_printed_text_matches_its_format(parts: list[tuple[str, str, str]], tail: str) -> None:
    """Whatever a conversion prints (here: any text), the line matches the format."""
    fmt = "".join(lit + conv for lit, conv, _ in parts) + tail
    printed = "".join(lit + ("%" if conv == "%%" else val) for lit, conv, val in parts) + tail
    assert format_regex(fmt).fullmatch(printed.rstrip("\n"))
