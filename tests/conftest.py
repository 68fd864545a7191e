"""Test-wide fixtures: capability-based skips and the kernel test count.

Mark a test ``@pytest.mark.requires("bpf", "tracepoint")``; it skips only if a probe in
``tests/probes.py`` says a capability is missing (and fails instead if BPFKIT_REQUIRE
lists it).  Tests that need ``bpf`` count as kernel tests: the run ends with a line
saying how many ran and how many skipped, with the reasons.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import probes  # noqa: E402

_kernel_ran: list[str] = []
_kernel_ids: set[str] = set()
_kernel_skipped: Counter[str] = Counter()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*features): capabilities the test needs")


def _is_kernel(item: pytest.Item) -> bool:
    m = item.get_closest_marker("requires")
    return bool(m and ("bpf" in m.args)) or item.get_closest_marker("kernel") is not None


def pytest_runtest_setup(item: pytest.Item) -> None:
    m = item.get_closest_marker("requires")
    features = list(m.args) if m else []
    if item.get_closest_marker("kernel") and "bpf" not in features:
        features.insert(0, "bpf")
    for f in features:
        why = probes.missing(f)
        if why is None:
            continue
        if f in probes.required():
            pytest.fail(f"{f} is required here (BPFKIT_REQUIRE) but missing: {why}")
        if _is_kernel(item):
            _kernel_skipped[f"{f}: {why}"] += 1
        pytest.skip(f"{f} unavailable: {why}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Not `"kernel" in report.keywords`: pytest puts directory names (tests/kernel) there too.
    if report.when == "call" and report.nodeid in _kernel_ids:
        _kernel_ran.append(report.nodeid)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_kernel(item):
            item.add_marker("kernel")
            _kernel_ids.add(item.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    tr = terminalreporter
    skipped = sum(_kernel_skipped.values())
    tr.write_sep("=", f"kernel tests: {len(_kernel_ran)} ran, {skipped} skipped")
    for reason, n in _kernel_skipped.most_common():
        tr.write_line(f"  skipped {n}: {reason}")
