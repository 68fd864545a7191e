"""Every row of the ISA table appears in the shared test corpus (tests/corpus/obj)."""

from __future__ import annotations

from bpfkit.isa.table import OPS, lookup
from bpfkit.obj.reader import read_object
from helpers import TESTS

CORPUS = sorted((TESTS / "corpus" / "obj").glob("*.o"))


def test_every_row_is_in_the_corpus() -> None:
    seen: set[int] = set()
    for path in CORPUS:
        for prog in read_object(str(path)).programs:
            for insn in prog.insns:
                op = lookup(insn)
                if op is not None:
                    seen.add(id(op))
    missing = [f"{op.mnemonic} ({op.key})" for op in OPS if id(op) not in seen]
    assert not missing, f"rows missing from tests/corpus: {missing}"
