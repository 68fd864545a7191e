"""Every test skip goes through tests/probes.py, so BPFKIT_REQUIRE can turn it into a failure.

A test says what it needs with ``@pytest.mark.requires(...)`` (or uses a fixture marked
``@probes.needs(...)``); conftest.py skips it when a probe says a capability is missing.
Nothing else in tests/ may skip a test or a whole module.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

import probes
from helpers import TESTS

# pytest.skip / pytest.mark.skip(if) / pytest.importorskip / unittest's skips.  (An xfail
# is not a skip: the test runs, and its outcome is reported.)
FORBIDDEN = {"skip", "skipif", "importorskip", "skipTest", "SkipTest"}
ALLOWED = {TESTS / "conftest.py", TESTS / "probes.py"}


def _skips(path: Path, root: Path = TESTS.parent) -> list[str]:
    """``file:line: name`` of each skipping call or mark in the Python file ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        name = None
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN:
            name = node.attr
        elif isinstance(node, ast.ImportFrom):
            name = next((a.name for a in node.names if a.name in FORBIDDEN), None)
        if name:
            found.append(f"{path.relative_to(root)}:{node.lineno}: {name}")
    return found


def test_no_skip_bypasses_the_probes() -> None:
    files = [p for p in sorted(TESTS.rglob("*.py")) if p not in ALLOWED]
    assert len(files) > 50
    found = [s for p in files for s in _skips(p)]
    assert found == [], "skip through @pytest.mark.requires / probes.needs instead"


def test_the_check_finds_each_kind_of_skip(tmp_path: Path) -> None:
    bad = tmp_path / "test_bad.py"
    bad.write_text(
        textwrap.dedent(
            """
            import pytest
            from pytest import skip
            np = pytest.importorskip("numpy")
            @pytest.mark.skipif(True, reason="x")
            def test_a():
                pytest.skip("no")
            def test_b():
                raise unittest.SkipTest("no")
            """
        )
    )
    found = sorted(_skips(bad, tmp_path), key=lambda s: int(s.split(":")[1]))
    names = [s.rsplit(": ", 1)[1] for s in found]
    assert names == ["skip", "importorskip", "skipif", "skip", "SkipTest"]


def test_every_probe_answers() -> None:
    for name in probes.PROBES:
        why = probes.missing(name)
        assert why is None or (isinstance(why, str) and why), name


class _Item:
    """Just enough of a pytest item for conftest's collection hook."""

    nodeid = "tests/test_x.py::test_x"

    def __init__(self, *features: str) -> None:
        self.marks = [pytest.mark.requires(*features).mark]
        self.user_properties: list[tuple[str, object]] = []

    def iter_markers(self, name: str) -> list[pytest.Mark]:
        return [m for m in self.marks if m.name == name]

    def get_closest_marker(self, name: str) -> pytest.Mark | None:
        return next(iter(self.iter_markers(name)), None)

    def add_marker(self, mark: pytest.MarkDecorator | str) -> None:
        self.marks.append(getattr(pytest.mark, mark).mark if isinstance(mark, str) else mark.mark)


def test_an_unknown_feature_is_a_usage_error(pytestconfig: pytest.Config) -> None:
    import conftest

    with pytest.raises(pytest.UsageError, match=r"no probe knows: \['clang-19'\]"):
        conftest.pytest_collection_modifyitems(pytestconfig, [_Item("bpf", "clang-19")])  # type: ignore[list-item]
    item = _Item("bpf", "clang19")
    conftest.pytest_collection_modifyitems(pytestconfig, [item])  # type: ignore[list-item]
    assert conftest.features(item) == ["bpf", "clang19"]  # type: ignore[arg-type]
    assert item.get_closest_marker("kernel") is not None
    assert item.user_properties == [("bpfkit_kernel", True)]
    group = item.get_closest_marker("xdist_group")
    assert group is not None and group.args == ("test_x",)
