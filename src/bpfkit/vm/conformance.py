"""The BPF conformance suite's test files, and running one in the VM.

A file is a list of sections opened by ``-- NAME`` lines; ``#`` starts a comment.
``asm`` holds the program in the suite's mnemonic syntax, ``raw`` (if present) the same
program as 64-bit instruction slots (numbers, or eight hex bytes a line), ``mem`` the initial memory as hex bytes, ``result``
the expected r0 and ``error`` an expected error message.  The runtime calls the program
with r1 = the memory's address and r2 = its length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bpfkit.asm.assemble import assemble_mnemonic
from bpfkit.errors import BpfkitError, VmError
from bpfkit.isa.insn import Insn, decode_all
from bpfkit.vm.machine import Vm


@dataclass(frozen=True)
class ConformanceTest:
    """One ``.data`` file of the suite."""

    name: str
    asm: str
    raw: tuple[int, ...] | None
    mem: bytes
    result: int | None
    error: str | None

    def program(self) -> list[Insn]:
        """The instructions: from ``raw`` when present, else assembled from ``asm``."""
        if self.raw is not None:
            data = b"".join(v.to_bytes(8, "little") for v in self.raw)
            return decode_all(data)
        return assemble_mnemonic(self.asm, self.name)


def _strip(line: str) -> str:
    return line.split("#", 1)[0].strip()


def parse(text: str, name: str = "<test>") -> ConformanceTest:
    """Parse the text of a ``.data`` file."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        m = re.match(r"^--\s*(.*?)\s*$", line)
        if m:
            current = sections.setdefault(m.group(1), [])
            continue
        if current is not None:
            current.append(line)
    asm = "\n".join(sections.get("asm", []))
    raw = None
    if "raw" in sections:
        raw = _raw(sections["raw"])
    mem = bytes(int(t, 16) for t in _tokens(sections.get("mem", [])))
    result = None
    res = _tokens(sections.get("result", []))
    if res:
        result = int(res[0], 0) & 0xFFFF_FFFF_FFFF_FFFF
    error = None
    if "error" in sections:
        error = " ".join(_strip(x) for x in sections["error"] if _strip(x))
    return ConformanceTest(name, asm, raw, mem, result, error)


def _raw(lines: list[str]) -> tuple[int, ...]:
    """Instruction slots of a ``raw`` section: one 64-bit number a line (``0x...``), or
    the slot's eight bytes as hex pairs (``07 10 00 00 01 00 00 00``)."""
    slots: list[int] = []
    for line in lines:
        tokens = _strip(line).split()
        if len(tokens) == 8 and all(len(t) == 2 for t in tokens):
            slots.append(int.from_bytes(bytes(int(t, 16) for t in tokens), "little"))
        else:
            slots += [int(t, 0) & 0xFFFF_FFFF_FFFF_FFFF for t in tokens]
    return tuple(slots)


def _tokens(lines: list[str]) -> list[str]:
    return [t for line in lines for t in _strip(line).split()]


def load(path: str | Path) -> ConformanceTest:
    """Read and parse one ``.data`` file."""
    p = Path(path)
    return parse(p.read_text(), p.name)


@dataclass(frozen=True)
class Outcome:
    """What running a test gave, and whether it is what the file expects."""

    test: ConformanceTest
    passed: bool
    r0: int | None
    error: str | None

    def __str__(self) -> str:
        got = f"r0={self.r0:#x}" if self.r0 is not None else f"error: {self.error}"
        want = (
            f"r0={self.test.result:#x}"
            if self.test.result is not None
            else f"error {self.test.error}"
        )
        return f"{self.test.name}: {'ok' if self.passed else 'FAIL'} ({got}; expected {want})"


def run_test(test: ConformanceTest, *, budget: int = 1_000_000) -> Outcome:
    """Run ``test`` in the VM and compare with its expectation."""
    try:
        insns = test.program()
        r0 = Vm(insns, ctx=test.mem if test.mem else None, budget=budget).run().r0
    except BpfkitError as e:
        passed = test.error is not None and isinstance(e, (VmError, BpfkitError))
        return Outcome(test, passed, None, str(e))
    passed = test.error is None and test.result == r0
    return Outcome(test, passed, r0, None)
