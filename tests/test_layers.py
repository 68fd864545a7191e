"""The layering of docs/design.md, enforced: lower layers never import higher ones, and only
the kernel layer touches ctypes, mmap, select or fcntl."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "bpfkit"

# Layer of each top-level module or package of bpfkit (docs/design.md).
LAYERS = {
    "errors": 0,
    "uapi": 0,
    "text": 0,
    "isa": 1,
    "btf": 1,
    "toolchain": 3,  # drives toolchains, then the assembler (asm, L2)
    "syscalls": 1,
    "obj": 2,
    "asm": 2,
    "disasm": 3,
    "explain": 3,
    "vm": 3,
    "verify": 3,
    "kernel": 4,
    "events": 4,
    "testing": 5,
    "lang": 5,  # the Python compiler (above asm, like toolchain) and its loader (kernel, vm)
    "cli": 6,
}
# Only these may import OS-level modules.
OS_MODULES = {"ctypes", "mmap", "select", "fcntl"}
OS_ALLOWED = {"syscalls", "kernel", "events", "testing", "cli"}
# Layers that must run anywhere (no kernel, no ctypes): STYLE.md rule 3.
PORTABLE = {"isa", "obj", "asm", "btf", "vm", "explain", "disasm", "uapi", "errors", "text"}


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


def test_every_part_has_a_layer() -> None:
    parts = {_part(p) for p in SRC.rglob("*.py")} - {"__init__", "__main__"}
    assert parts <= set(LAYERS), f"add these to LAYERS and docs/design.md: {parts - set(LAYERS)}"


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
            if part in PORTABLE and target in {"kernel", "syscalls", "events"}:
                bad.append(f"{path.relative_to(SRC)} (portable) imports {name}")
    assert not bad, "\n".join(bad)


def test_only_the_kernel_layer_touches_the_os() -> None:
    bad = []
    for path in SRC.rglob("*.py"):
        part = _part(path)
        if part in OS_ALLOWED:
            continue
        for name in _imports(path):
            if name.split(".")[0] in OS_MODULES:
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert not bad, "\n".join(bad)
