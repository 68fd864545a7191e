"""Bad assembler input: one clear AsmError at file:line:column showing the text; the CLI exits 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfkit.asm.assemble import assemble, assemble_file
from bpfkit.cli.main import main
from bpfkit.errors import AsmError
from helpers import TESTS

FAR = "\tgoto far\n" + "\tr0 = 0\n" * 40000 + "far:\n\texit\n"


@pytest.mark.parametrize(
    ("src", "line", "column", "message"),
    [
        ("\tr0 = 0\n\tfrob r1\n", 2, 2, "unknown instruction 'frob'"),
        ("\tr12 = 1\n", 1, 2, "bad register 'r12'"),
        ("\tr1 = w11\n", 1, 7, "bad register 'w11'"),
        ("\tr1 = 0x100000000\n", 1, 7, "immediate 4294967296 out of range (32 bits)"),
        ("\tcall -2147483649\n", 1, 7, "out of range (32 bits)"),
        ("\tr1 = 0x10000000000000000 ll\n", 1, 7, "out of range (64 bits)"),
        ("\tr1 = *(u64 *)(r10 - 40000)\n", 1, 20, "not a 16-bit signed integer"),
        ("\tgoto 40000\n", 1, 7, "16-bit signed integer"),
        ("\tgoto nowhere\n", 1, 7, "jump to undefined label 'nowhere'"),
        ("\tif r1 > 2 goto nowhere\n", 1, 17, "undefined label 'nowhere'"),
        (FAR, 1, 7, "jump target out of range"),
        ("\t.data\nd:\n\t.text\n\tgoto d\n", 4, 7, "label in another section 'd'"),
        ("\tr1 = r2 + 1\n", 1, 2, "invalid instruction"),
        ("\tr1 = -r2\n", 1, 8, "must be the same"),
        ("\tr1 = 1 +\n", 1, 10, "expected an expression"),
        ("a:\na:\n", 2, 1, "symbol 'a' is already defined"),
        ("\t.frobnicate 3\n", 1, 2, "unknown directive '.frobnicate'"),
        ("\t.p2align x\n", 1, 11, "expected a constant expression"),
        ("\t.p2align 3, 1, 2, 4\n\t.p2align 0x41\n", 2, 11, "power of 2"),
        ("\t.section\n", 1, 10, "expected a section name"),
        ('\t.section .x,"q"\n', 1, 14, "unsupported section flag 'q'"),
        ('\t.section .x,"a",@bogus\n', 1, 18, "unknown section type '@bogus'"),
        ("\t.byte 300\n", 1, 8, "does not fit in 1 byte"),
        ("\t.short sym\n", 1, 9, "cannot name a symbol"),
        ('\t.ascii "abc\n', 1, 9, "expected a string"),
        ('\t.ascii "a\\qb"\n', 1, 9, "invalid escape"),
        ("\t.type f, @gadget\n", 1, 11, "unsupported symbol type"),
        ("\t.size f, .Lend - f\n\t.text\nf:\n", 1, 11, "difference across sections"),
        ("\t.loc 1 2 3\n", 1, 2, "unassigned file number 1"),
        ("\t.file 1\n", 1, 8, "expected '.file N"),
        ('\t.file 1 "a.c"\n\t.loc 1 2 3 frob\n', 2, 2, "unsupported .loc option 'frob'"),
        ("\t.cfi_sections .bogus\n", 1, 2, "expected '.cfi_sections"),
        ("\t.cfi_startproc\n\texit\n", 1, 2, "missing .cfi_endproc"),
        ("\t.cfi_def_cfa_offset 8\n", 1, 2, "unsupported CFI directive"),
        ("\t.bss\n\tr0 = 1\n", 2, 2, "NOBITS"),
        ("\t.bss\n\t.byte 1\n", 2, 8, "non-zero data in a NOBITS section"),
    ],
)
def test_llvm_syntax_errors(src: str, line: int, column: int, message: str) -> None:
    with pytest.raises(AsmError) as info:
        assemble(src, "bad.s")
    e = info.value
    assert message in e.message
    assert (e.file, e.line, e.column) == ("bad.s", line, column)
    assert e.text == src.splitlines()[line - 1]
    assert str(e).startswith(f"bad.s:{line}:{column}: error: ")
    assert e.text in str(e)


def test_missing_file_is_an_asm_error(tmp_path: Path) -> None:
    with pytest.raises(AsmError, match="cannot read"):
        assemble_file(tmp_path / "nope.s")


def test_cli_reports_error_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "bad.s"
    src.write_text("\tr0 = 0\n\tr0 = *(u64 *)(r1 + x)\n\texit\n")
    out = tmp_path / "bad.o"
    assert main(["asm", str(src), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{src}:2:19: error:" in err  # at the "+", as llvm-mc says
    assert "Traceback" not in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [src]  # no temporary file left behind


def test_cli_writes_object_and_mnemonic_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "ok.s"
    src.write_text("\tr0 = 1\n\texit\n")
    assert main(["asm", str(src), "-o", str(tmp_path / "ok.o")]) == 0
    assert (tmp_path / "ok.o").read_bytes()[:4] == b"\x7fELF"
    mn = tmp_path / "ok.txt"
    mn.write_text("mov %r0, 1\nexit\n")
    assert main(["asm", "--mnemonic", str(mn), "-o", str(tmp_path / "ok.bin")]) == 0
    assert (tmp_path / "ok.bin").read_bytes() == bytes.fromhex("b7000000010000009500000000000000")
    assert "wrote" in capsys.readouterr().out


_FIXTURE_LINES = [
    line
    for name in ("directives.s", "every_row.s", "spellings.s")
    for line in (TESTS / "data" / "asm" / name).read_text().splitlines()
]
_NOISE = list("rw0123456789 ,.+-*/()[]=<>&|^%!~:;#\"'\\x@$_\t") + [
    "goto",
    "ll",
    "lock",
    "call",
    ".section",
    ".long",
    ".loc",
    ".file 1",
    "u32",
    "r10",
    "0x",
]


@st.composite
def _mutated_source(draw: st.DrawFn) -> str:
    out = []
    for _ in range(draw(st.integers(1, 6))):
        line = draw(st.sampled_from(_FIXTURE_LINES))
        cut = draw(st.integers(0, len(line)))
        how = draw(st.integers(0, 3))
        if how == 0:
            line = line[:cut] + draw(st.sampled_from(_NOISE)) + line[cut:]
        elif how == 1:
            line = line[:cut] + line[cut + 1 :]
        elif how == 2:
            line = "".join(draw(st.lists(st.sampled_from(_NOISE), min_size=1, max_size=10)))
        out.append(line)
    return "\n".join(out) + "\n"


@settings(max_examples=300, deadline=None)
@given(_mutated_source(), st.booleans())
def test_mangled_input_gives_an_asm_error_or_an_object(src: str, big_endian: bool) -> None:
    """Whatever the input, the assembler returns an object or raises one AsmError (no bug)."""
    try:
        obj = assemble(src, "fuzz.s", big_endian=big_endian)
    except AsmError as e:
        assert "internal assembler error" not in e.message, (src, e)
        assert e.file == "fuzz.s"
    else:
        assert obj[:4] == b"\x7fELF"
