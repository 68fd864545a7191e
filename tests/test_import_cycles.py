"""No circle of imports in src/bpfkit: a module never imports, even only for type checking,
a module that imports it back (directly or round a longer circle).

Imports run when the module is loaded count: those at module level, in class bodies and
under ``if TYPE_CHECKING:``.  Imports inside functions (made on first use, to keep start-up
cheap) do not.  A package's ``__init__`` being run before its submodules is Python's
doing, not an import written down, and does not count either.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "bpfkit"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PKG.rglob("*.py")}


def _load_time_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is loaded (not inside functions)."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            todo.append(child)
    return found


def _targets(module: str, path: Path) -> set[str]:
    """The bpfkit modules ``module`` imports at load time."""
    out: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in _load_time_imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in MODULES)
            continue
        if node.level:
            base = module.split(".")
            if not is_package:
                base.pop()
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            if sub in MODULES:
                out.add(sub)  # `from pkg import module`
            elif source in MODULES:
                out.add(source)
    out.discard(module)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_finder_finds_a_type_only_circle() -> None:
    a = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from b import X\n")
    b = ast.parse("import a\ndef f():\n    import c\n")
    assert [type(n).__name__ for n in _load_time_imports(a)] == ["ImportFrom", "ImportFrom"]
    assert len(_load_time_imports(b)) == 1  # the import inside f() runs later
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycles() -> None:
    graph = {m: _targets(m, p) for m, p in MODULES.items()}
    assert graph["bpfkit.vm.interp"] >= {"bpfkit.vm.handlers", "bpfkit.vm.cpu"}
    cycles = _cycles(graph)
    assert not cycles, "import circles (break them with a lower module both can import):\n" + (
        "\n".join(" <-> ".join(c) for c in cycles)
    )
