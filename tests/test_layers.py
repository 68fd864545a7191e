"""The layering of docs/design.md, enforced: its package table is read here (so the two cannot
drift), every package has a line and every line a package, lower layers never import higher
ones, and only the packages marked OS touch ctypes, mmap, select or fcntl."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "bpfkit"
DESIGN = ROOT / "docs" / "design.md"
HEADER = "| package | layer | OS | anywhere | what it owns |"
ROW = re.compile(
    r"^\|\s*`(\w+)(/|\.py)`\s*\|\s*L(\d)\s*\|\s*(yes|)\s*\|\s*(yes|)\s*\|\s*(.+?)\s*\|$"
)
# Only the packages marked OS may import these.
OS_MODULES = {"ctypes", "mmap", "select", "fcntl"}
# What a package that must run anywhere may not import.
KERNEL_SIDE = {"kernel", "syscalls", "events"}


def _table(text: str) -> dict[str, tuple[int, bool, bool, str, str]]:
    """name -> (layer, OS, anywhere, "/" or ".py", what it owns), from the table under HEADER."""
    lines = text.splitlines()
    assert HEADER in lines, f"docs/design.md has no package table ({HEADER})"
    rows: dict[str, tuple[int, bool, bool, str, str]] = {}
    for line in lines[lines.index(HEADER) + 2 :]:
        if not line.startswith("|"):
            break
        m = ROW.match(line)
        assert m, f"docs/design.md: a table line not in the table's format: {line}"
        name, kind, layer, os_ok, anywhere, owns = m.groups()
        assert name not in rows, f"docs/design.md: {name} has two lines"
        rows[name] = (int(layer), os_ok == "yes", anywhere == "yes", kind, owns)
    return rows


TABLE = _table(DESIGN.read_text())
LAYERS = {name: row[0] for name, row in TABLE.items()}
OS_ALLOWED = {name for name, row in TABLE.items() if row[1]}
PORTABLE = {name for name, row in TABLE.items() if row[2]}
# Single modules of "anywhere" packages allowed ctypes, and why (docs/design.md): the VM's
# compiling engine calls the native code llvmlite made through ctypes -- no syscall, no
# kernel, and the VM runs without it (engine="auto" falls back to the interpreter); the x86
# disassembler calls LLVM's C disassembler library, as bpftool does, never the kernel.
CTYPES_ALLOWED = {"vm/jit.py", "disasm/x86.py"}


def _part(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_the_table_reads_its_own_format() -> None:
    text = f"x\n{HEADER}\n|---|\n| `a/` | L2 | | yes | `b.py`, c |\n| `d.py` | L0 | yes | | e |\n\n"
    assert _table(text) == {
        "a": (2, False, True, "/", "`b.py`, c"),
        "d": (0, True, False, ".py", "e"),
    }
    assert LAYERS["errors"] == 0 and LAYERS["cli"] == 6 and "kernel" in OS_ALLOWED
    assert "obj" in PORTABLE and "kernel" not in PORTABLE


def test_every_package_has_a_line_and_every_line_a_package() -> None:
    here = {
        p.name.removesuffix(".py"): "/" if p.is_dir() else ".py"
        for p in SRC.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py")
    }
    here = {k: v for k, v in here.items() if k not in ("__init__", "__main__")}
    missing = sorted(set(here) - set(TABLE))
    assert not missing, f"add a line to docs/design.md's package table for: {missing}"
    gone = sorted(set(TABLE) - set(here))
    assert not gone, f"docs/design.md describes packages that do not exist: {gone}"
    for name, kind in here.items():
        assert TABLE[name][3] == kind, f"docs/design.md: write {name}{kind}"


def test_the_modules_the_table_names_exist() -> None:
    bad = []
    for name, (_, _, _, kind, owns) in TABLE.items():
        if kind != "/":
            continue
        for module in re.findall(r"`(\w+\.py|\w+/)`", owns):
            if not (SRC / name / module).exists():
                bad.append(f"{name}/{module}")
    assert not bad, f"docs/design.md names modules that do not exist: {bad}"


def test_lower_layers_do_not_import_higher_ones() -> None:
    bad = []
    for path in SRC.rglob("*.py"):
        part = _part(path)
        if part not in LAYERS:
            continue
        for name in _imports(path):
            bits = name.split(".")
            if bits[0] != "bpfkit" or len(bits) < 2:
                continue
            target = bits[1]
            if target in LAYERS and LAYERS[target] > LAYERS[part]:
                bad.append(f"{path.relative_to(SRC)} imports {name}")
            if part in PORTABLE and target in KERNEL_SIDE:
                bad.append(f"{path.relative_to(SRC)} (runs anywhere) imports {name}")
    assert not bad, "\n".join(bad)


def test_only_the_os_packages_touch_the_os() -> None:
    bad = []
    for path in SRC.rglob("*.py"):
        part = _part(path)
        if part in OS_ALLOWED:
            continue
        for name in _imports(path):
            if name == "ctypes" and str(path.relative_to(SRC)) in CTYPES_ALLOWED:
                continue
            if name.split(".")[0] in OS_MODULES:
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert not bad, "\n".join(bad)
