"""The BPF conformance suite's test files, and running one in the VM.

A file is a list of sections opened by ``-- NAME`` lines; ``#`` starts a comment.
``asm`` holds the program in the suite's mnemonic syntax (newer files also name maps of
a ``map`` section, ``lddw r1, map_by_fd(name)``, and helpers, ``call bpf_map_lookup_elem``), ``raw`` (if present) the same
program as 64-bit instruction slots (numbers, or eight hex bytes a line), ``mem`` the initial memory as hex bytes, ``result``
the expected r0 and ``error`` an expected error message.  The runtime calls the program
with r1 = the memory's address and r2 = its length.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bpfkit.asm.assemble import assemble_mnemonic
from bpfkit.errors import AsmError, BpfkitError, VmError
from bpfkit.isa.insn import Insn, decode_all
from bpfkit.obj.spec import MapSpec
from bpfkit.uapi.helpers import by_name
from bpfkit.vm.maps import VmMap, map_from_spec
from bpfkit.vm.vm import Vm


@dataclass(frozen=True)
class MapDef:
    """A line of a ``map`` section: ``name type key_size value_size max_entries``."""

    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int


@dataclass(frozen=True)
class ConformanceTest:
    """One ``.data`` file of the suite."""

    name: str
    asm: str
    raw: tuple[int, ...] | None
    mem: bytes
    result: int | None
    error: str | None
    maps: tuple[MapDef, ...] = ()

    def program(self) -> list[Insn]:
        """The instructions: from ``raw`` when present, else assembled from ``asm``."""
        if self.raw is not None:
            data = b"".join(v.to_bytes(8, "little") for v in self.raw)
            return decode_all(data)
        return assemble_mnemonic(_expand(self.asm, self.maps), self.name)

    def vm_maps(self) -> dict[int, VmMap]:
        """VM maps for the ``map`` section, by the index ``map_by_fd(name)`` becomes."""
        return {
            i: map_from_spec(
                MapSpec(m.name, "maps", 0, m.type, m.key_size, m.value_size, m.max_entries)
            )
            for i, m in enumerate(self.maps)
        }


_KEYWORDS = {"local", "helper", "runtime", "kfunc"}


def _expand(asm: str, maps: tuple[MapDef, ...]) -> str:
    """Rewrite the suite's newer forms into ones the assembler takes: ``map_by_fd(m)`` /
    ``map_val(m)`` as ``N, map_fd`` / ``N, map_value`` (N = the map's index) and
    ``call bpf_name`` as ``call ID`` (the helper table's id)."""
    index = {m.name: i for i, m in enumerate(maps)}

    def map_ref(kind: str) -> Callable[[re.Match[str]], str]:
        def sub(mt: re.Match[str]) -> str:
            name = mt.group(1)
            if name not in index:
                raise AsmError(f"map {name!r} is not in the test's map section")
            return f"{index[name]}, {kind}"

        return sub

    def call(mt: re.Match[str]) -> str:
        name = mt.group(2)
        if name in _KEYWORDS or name.startswith("%") or name[0].isdigit() or name[0] == "-":
            return mt.group(0)
        helper = by_name(name)
        if helper is None:
            raise AsmError(f"unknown helper {name!r}")
        return f"{mt.group(1)}{helper.id}"

    asm = re.sub(r"map_by_fd\(\s*(\w+)\s*\)", map_ref("map_fd"), asm)
    asm = re.sub(r"map_val\(\s*(\w+)\s*\)", map_ref("map_value"), asm)
    return re.sub(r"^(\s*call\s+)(\S+)", call, asm, flags=re.M)


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
    maps = tuple(
        MapDef(t[0], *(int(x, 0) for x in t[1:5]))
        for t in (_strip(line).split() for line in sections.get("map", []))
        if len(t) >= 5
    )
    error = None
    if "error" in sections:
        error = " ".join(_strip(x) for x in sections["error"] if _strip(x))
    return ConformanceTest(name, asm, raw, mem, result, error, maps)


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


def run_test(test: ConformanceTest, *, budget: int = 1_000_000, engine: str = "interp") -> Outcome:
    """Run ``test`` in the VM (with ``engine``) and compare with its expectation."""
    try:
        insns = test.program()
        maps = test.vm_maps()
        vm = Vm(insns, ctx=test.mem or None, maps=maps, budget=budget, engine=engine)
        r0 = vm.run().r0
    except BpfkitError as e:
        passed = test.error is not None and isinstance(e, (VmError, BpfkitError))
        return Outcome(test, passed, None, str(e))
    passed = test.error is None and test.result == r0
    return Outcome(test, passed, r0, None)
