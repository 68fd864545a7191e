"""Dropping the .rodata constants rustc leaves unused (and only those)."""

from __future__ import annotations

from bpfkit.toolchain.tidy import drop_unused_rodata

PROGRAM = """\t.section\tsocket,"ax",@progbits
\t.globl\tf
\t.type\tf,@function
f:
{body}
\texit
.Lfunc_end0:
\t.size\tf, .Lfunc_end0-f

\t.type\t.Lanon.x.0,@object
\t.section\t.rodata.str1.1,"aMS",@progbits,1
.Lanon.x.0:
\t.asciz\t"hello from rust\\n"
\t.size\t.Lanon.x.0, 17

\t.type\t.Lanon.x.1,@object
\t.section\t.rodata.cst8,"aM",@progbits,8
.Lanon.x.1:
\t.quad\t1
\t.size\t.Lanon.x.1, 8

\t.type\tNAMED,@object
\t.section\t.rodata.named,"a",@progbits
\t.globl\tNAMED
NAMED:
\t.long\t7
\t.size\tNAMED, 4
"""


def test_unreferenced_local_constants_go() -> None:
    text = PROGRAM.format(body="\tr0 = 0")
    out = drop_unused_rodata(text)
    assert ".rodata.str1.1" not in out and ".Lanon.x.0" not in out
    assert ".rodata.cst8" not in out and ".Lanon.x.1" not in out
    # A global symbol may be used from elsewhere: kept.
    assert "NAMED:" in out and ".rodata.named" in out
    assert "f:\n" in out and "\texit\n" in out


def test_referenced_constants_stay() -> None:
    text = PROGRAM.format(body="\tr3 = .Lanon.x.1 ll\n\tr0 = 0")
    out = drop_unused_rodata(text)
    assert ".Lanon.x.1:" in out and "\t.size\t.Lanon.x.1, 8" in out
    assert ".Lanon.x.0" not in out  # still unused


def test_text_it_does_not_follow_is_left_alone() -> None:
    text = PROGRAM.format(body="\t.pushsection .foo\n\t.popsection\n\tr0 = 0")
    assert drop_unused_rodata(text) == text
