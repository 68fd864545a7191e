"""Mutated objects through the object reader and the commands dump, explain, btf, vm and
load: each case ends with output (status 0) or one bpfkit error (status 1), never a
traceback or another status.  A few hundred cases per command per run here (mutations of
the ELF header, section headers, symbols, relocations, .BTF, .BTF.ext and map
definitions: tests/mutate.py); scripts/fuzz_objects.py runs 100,000.

BPFKIT_FUZZ_SEED picks other cases (the default is fixed, so a failure reproduces)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import mutate

CASES = 200  # per command
CHUNK = 100  # cases per test item (xdist spreads them)
SEED = int(os.environ.get("BPFKIT_FUZZ_SEED", "2026"))


def _chunks(command: str) -> list[tuple[str, int]]:
    return [(command, k) for k in range(0, CASES, CHUNK)]


PARAMS = [c for cmd in ("read", "dump", "explain", "btf", "vm") for c in _chunks(cmd)]


def _run(command: str, start: int, tmp_path: Path) -> None:
    seeds = [p.read_bytes() for p in mutate.SEEDS]
    rng = random.Random(f"{SEED}-{command}-{start}")
    path = tmp_path / "case.o"
    outcomes = []
    for i in range(CHUNK):
        data, note = mutate.mutate(rng.choice(seeds), rng)
        path.write_bytes(data)
        outcome = mutate.run_case(command, path)
        if outcome.kind == "crash":
            (tmp_path / "crash.o").write_bytes(data)
            pytest.fail(
                f"case {start + i} ({note}): bpfkit {command} crashed (kept as "
                f"{tmp_path / 'crash.o'}):\n{outcome.detail}"
            )
        outcomes.append(outcome.kind)
    assert "ok" in outcomes and "refused" in outcomes  # the mutations reach both ends


@pytest.mark.parametrize(("command", "start"), PARAMS)
def test_mutated_objects(command: str, start: int, tmp_path: Path) -> None:
    _run(command, start, tmp_path)


@pytest.mark.requires("bpf")
@pytest.mark.parametrize(("command", "start"), _chunks("load"))
def test_mutated_objects_load(command: str, start: int, tmp_path: Path) -> None:
    _run(command, start, tmp_path)
