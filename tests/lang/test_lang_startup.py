"""From ``python prog.py`` to attached: what a second run of an example imports.

The first run of a program file compiles it and prepares it for the kernel; a second run
(the compile cache and the prepared object warm, :mod:`bpfkit.lang.cache`) reads both back
and attaches.  Each check runs an example twice as a whole process with a private cache
and ``-X importtime``, and asserts that the second run imported none of what the first
needed only to compile or prepare: the compiler, the assembler, the ELF reader (and
pyelftools), the BTF parser, CO-RE, the kernel's description, the helper table, the
trace machinery.  What the start-up costs in time is measured by bench/lang_attach.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

# Modules a cached run of an example must not import (prefixes: the package and below).
HEAVY = (
    "elftools",
    "bpfkit.lang.lower",
    "bpfkit.lang.emit",
    "bpfkit.lang.ctx",
    "bpfkit.asm",
    "bpfkit.obj.reader",
    "bpfkit.obj.core_relocate",
    "bpfkit.obj.externs",
    "bpfkit.btf",
    "bpfkit.kernel.target",
    "bpfkit.uapi.helpers",
    "bpfkit.events.printk",
    "bpfkit.events.trace_pipe",
    "bpfkit.obj.printk_tags",
)
# A tracepoint program with CO-RE and a ring buffer; a hash map histogram; XDP (loaded
# without a session); a uprobe pair (its symbol's place in libc read from the cache too).
TOOLS = ("execsnoop", "syslat", "xdpcount", "funclatency")


def _imported(tool: str, cache: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "BPFKIT_NO_CACHE"}
    env["BPFKIT_CACHE_DIR"] = str(cache)
    env["PYTHONPATH"] = str(ROOT / "src")
    argv = [sys.executable, "-X", "importtime", f"examples/python/{tool}.py", "--duration", "0"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), "the example printed nothing"
    return re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", done.stderr, re.M)


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


@pytest.mark.requires("bpf", "tracepoint", "kernel-btf")
@pytest.mark.parametrize("tool", TOOLS)
def test_a_cached_run_imports_neither_compiler_nor_preparation(tool: str, tmp_path: Path) -> None:
    first = _imported(tool, tmp_path / "cache")
    # The first run did compile and prepare (so the check below can fail) ...
    assert "bpfkit.lang.lower" in first
    assert "bpfkit.obj.relocate" in first
    second = _imported(tool, tmp_path / "cache")
    # ... the second imports none of it.
    assert _heavy(second) == []
    assert "bpfkit.kernel.session" in second or tool == "xdpcount"  # it did load


@pytest.mark.requires("bpf", "tracepoint", "kernel-btf")
def test_a_prepared_object_is_another_boots_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prepared entry is found by the boot too: with another boot id it is not used
    (and it is used with this one)."""
    from bpfkit import cachedir
    from bpfkit.lang import cache
    from bpfkit.lang.runtime import Program

    monkeypatch.setenv("BPFKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BPFKIT_NO_CACHE", raising=False)
    path = str(ROOT / "examples" / "python" / "syscount.py")
    prog = Program.from_file(path)
    with prog.load():
        pass
    key = prog.compiled.key
    assert key is not None
    options = repr(("session", None))
    assert cache.load_prepared(key, prog.compiled.path, options) is not None
    assert cache.load_prepared(key, prog.compiled.path, repr(("session", "x"))) is None
    boot = tmp_path / "boot_id"
    boot.write_text("00000000-0000-0000-0000-000000000000\n")
    monkeypatch.setattr(cachedir, "BOOT_ID", str(boot))
    assert cache.load_prepared(key, prog.compiled.path, options) is None
