"""The README's Python examples run as written, with the public names only
(``from bpfkit import ...``), and print what their comments say."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from helpers import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
_SAYS = re.compile(r"^print\(.*\)\s+#\s*(.+)$")


def _run(code: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_examples_use_the_public_names() -> None:
    import bpfkit

    assert len(BLOCKS) == 3
    for block in BLOCKS:
        imports = [ln for ln in block.splitlines() if re.match(r"\s*(from|import) ", ln)]
        assert imports and all(ln.startswith("from bpfkit import ") for ln in imports), imports
        for line in imports:
            for name in line.removeprefix("from bpfkit import ").split(","):
                assert name.strip() in bpfkit.__all__


def test_the_example_without_a_kernel_prints_what_it_says() -> None:
    block = BLOCKS[0]
    said = [m[1] for ln in block.splitlines() if (m := _SAYS.match(ln))]
    assert len(said) == 4
    out = _run(block).splitlines()
    assert out == said


@pytest.mark.requires("bpf", "tracepoint")
def test_the_kernel_example_prints_hello_lines() -> None:
    stop = threading.Event()

    def clones() -> None:  # the program runs on clone(): make some
        while not stop.is_set():
            # Python spawns with vfork/clone3, not clone(); a shell forks with clone().
            subprocess.run(["sh", "-c", "true & wait"], check=False)
            stop.wait(0.05)

    t = threading.Thread(target=clones, daemon=True)
    t.start()
    try:
        out = _run(BLOCKS[1])
    finally:
        stop.set()
        t.join()
    lines = out.splitlines()
    assert len(lines) == 3 and all(ln.endswith("hello from rust") for ln in lines), out


@pytest.mark.requires("clang19")
def test_the_typed_maps_example_prints_what_it_says(tmp_path: Path) -> None:
    block = BLOCKS[2]
    said = [m[1] for ln in block.splitlines() if (m := _SAYS.match(ln))]
    assert said == ["XDP_PASS", "first IDLE", "XDP_DROP [128]"]
    said += ["xdp 1", "xdp 2"]  # the callback's lines: two runs submitted a record each
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # build() writes flows.o here
    assert _run(block, cwd=tmp_path).splitlines() == said


def test_import_bpfkit_is_cheap_and_every_public_name_resolves() -> None:
    code = (
        "import sys, bpfkit\n"
        "print(sorted(m for m in sys.modules if m.startswith('bpfkit')), 'typing' in sys.modules)\n"
        "print(all(getattr(bpfkit, n) is not None for n in bpfkit.__all__))\n"
    )
    first, second = _run(code).splitlines()
    assert first == "['bpfkit', 'bpfkit.errors'] False"
    assert second == "True"
