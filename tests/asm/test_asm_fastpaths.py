"""The LLVM-syntax assembler's fast paths give what its full path gives.

The line loop takes short cuts for speed (bench/asm.py): an exact-text cache of encoded
lines, encoders per line shape, bare ``name:`` labels defined inline, fixups whose
location is kept as a tuple until an error needs it, the cyclic garbage collector paused
during an assembly.  Each short cut is checked here against the result of the careful
path or against llvm-mc-19.
"""

from __future__ import annotations

import gc
import subprocess
from pathlib import Path

import pytest

from bpfkit.asm.assemble import assemble
from bpfkit.cli.main import main
from bpfkit.errors import AsmError

# Every line twice or more, in forms that reach the text cache, the shape encoders and
# the inline label path; the comments and statement separators must not change anything.
SOURCE = """\
\t.text
\t.globl\tprog
\t.type\tprog,@function
prog:
\tr1 = 1
\tr1 = 1 # a comment after a cached line
\tr1 = 1 // another
\tr1 = 2
\tr2 = *(u32 *)(r1 + 4)
\tr2 = *(u32 *)(r1 + 8)
\tif r1 > 5 goto LBB0_2
\tif r1 > 6 goto LBB0_2 # comment
LBB0_1:
\tr1 = 1; r1 = 3
LBB0_2: r0 = 0
  LBB0_3:
\tcall 1
\tcall 2
\tcall sub
\tr1 = map ll
\tr1 = map ll
\texit
.Lfunc_end0:
\t.size\tprog, .Lfunc_end0-prog
sub:
\tr0 = 0
\texit
\t.section\t.maps,"aw",@progbits
map:
\t.zero\t8
"""


@pytest.mark.requires("llvm19")
def test_repeated_and_commented_lines_match_llvm_mc(tmp_path: Path) -> None:
    src = tmp_path / "fast.s"
    src.write_text(SOURCE)
    out = tmp_path / "ref.o"
    subprocess.run(
        ["llvm-mc-19", "-triple", "bpfel", "-filetype=obj", str(src), "-o", str(out)],
        check=True,
        capture_output=True,
    )
    assert assemble(SOURCE, str(src)) == out.read_bytes()


def test_cached_line_equals_its_first_encoding() -> None:
    once = assemble("\tr0 = 7\n\tr0 = 8\n\texit\n")
    again = assemble("\tr0 = 7\n\tr0 = 7 # same\n\tr0 = 8\n\texit\n")
    # The second text has one more instruction slot, equal to the first one.
    assert len(again) == len(once) + 8
    assert assemble("\tr0 = 7\n\tr0 = 7\n\tr0 = 8\n\texit\n") == again


def test_fast_path_fixup_error_points_at_the_symbol() -> None:
    # The second jump has the shape of the first: its fixup comes from the fast path.
    text = "f:\n\tgoto L1\nL1:\n\tr0 = 1\n\tgoto   nowhere\n\texit\n"
    with pytest.raises(AsmError) as e:
        assemble(text, "t.s")
    assert e.value.line == 5
    assert e.value.column == 9  # tab, "goto", three spaces: the name starts at column 9
    assert "undefined label 'nowhere'" in str(e.value)


def test_inline_label_redefinition_is_an_error_at_its_column() -> None:
    with pytest.raises(AsmError) as e:
        assemble("a:\n\tr0 = 0\n   a:\n\texit\n", "t.s")
    assert (e.value.line, e.value.column) == (3, 4)
    assert "symbol 'a' is already defined" in str(e.value)


@pytest.mark.parametrize("enabled", [True, False])
def test_collector_state_is_restored_and_no_cycles_are_left(enabled: bool) -> None:
    text = SOURCE
    assemble(text)  # warm up: first-use imports and caches
    was = gc.isenabled()
    try:
        if enabled:
            gc.enable()
        else:
            gc.disable()
        gc.collect()
        assemble(text)
        assert gc.isenabled() is enabled
        assert gc.collect() == 0  # everything went by reference counting
        with pytest.raises(AsmError):
            assemble("\tbogus r0\n")
        assert gc.isenabled() is enabled
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()


def test_cli_leaves_no_temporary_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "p.s"
    src.write_text("\tr0 = 0\n\texit\n")
    out = tmp_path / "p.o"
    assert main(["asm", str(src), "-o", str(out)]) == 0
    assert out.read_bytes() == assemble("\tr0 = 0\n\texit\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.o", "p.s"]
    assert f"wrote {out}" in capsys.readouterr().out
