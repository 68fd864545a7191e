"""Test-wide fixtures: capability-based skips, the kernel test count, shared expensive setup.

Mark a test ``@pytest.mark.requires("bpf", "tracepoint")``; it skips only if a probe in
``tests/probes.py`` says a capability is missing (and fails instead if BPFKIT_REQUIRE
lists it).  A fixture marked ``@probes.needs(...)`` passes its needs on to every test
using it.  No test skips any other way (tests/test_probes.py checks).  Tests that need ``bpf`` count as kernel tests: the run
ends with a line saying how many ran and how many skipped, with the reasons.

The suite runs in parallel (``pytest -n auto --dist loadgroup``, see scripts/test.sh):
every test module is one xdist group (module fixtures are set up once, by one worker),
except tests that name their own ``xdist_group`` (tests sharing kernel-global state that
the process id does not tell apart, or the long tests of one module split so that they
run side by side).  A group is one serial chain: groups holding a test marked ``long``
(tens of seconds) are sent to the workers first, so that the run does not end waiting
for one of them.  The kernel test count travels with the test reports
(``user_properties``), so the controller counts what the workers ran.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# Keep compiled bytecode (pytest's rewritten test modules, bpfkit's modules in every
# `python -m bpfkit` a test starts) even where PYTHONDONTWRITEBYTECODE is set: without it,
# each xdist worker and each subprocess compiles everything again (seconds per run).
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
# bpfkit.lang's compile cache (bpfkit.lang.cache): a private one for the run (workers and
# subprocesses inherit it), not the user's ~/.cache/bpfkit.
if "BPFKIT_CACHE_DIR" not in os.environ:
    os.environ["BPFKIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="bpfkit-test-cache-")
    atexit.register(shutil.rmtree, os.environ["BPFKIT_CACHE_DIR"], ignore_errors=True)
# Tests stop `bpfkit run` with Ctrl-C (SIGINT).  A suite started in the background by a
# non-interactive shell (`cmd &`, some job runners) has SIGINT ignored, and every program
# it starts inherits that: their Python installs no KeyboardInterrupt and the Ctrl-C is
# lost (seen as `bpfkit run` never stopping).  A handler, unlike "ignored", is not
# inherited across exec: the programs the tests start get the default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import probes  # noqa: E402
from bpfkit.btf import Btf, load_vmlinux  # noqa: E402

_KERNEL = "bpfkit_kernel"  # a user property: this test needs bpf()
_SKIP = "bpfkit_skip"  # a user property: the capability this test skipped for, and why
# A user property of tests/kernel/test_guest_kernel.py: the kernel test count of the
# second kernel (Debian's Linux 6.1 under QEMU, tests/guest.py), where the tests marked
# ``@pytest.mark.guest`` ran.
_GUEST = "guest_kernel_tests"


class _Count:
    def __init__(self) -> None:
        self.ran = 0
        self.skipped: Counter[str] = Counter()
        self.guests: list[str] = []  # the second kernel's count: "N ran, M skipped (...)"


_count = _Count()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*features): capabilities the test needs")
    config.addinivalue_line("markers", "kernel: the test needs bpf() (set from requires)")
    # Registered by pytest-xdist too; here so that the suite also runs with -p no:xdist.
    config.addinivalue_line("markers", "xdist_group(name): tests that run on one worker")
    config.addinivalue_line("markers", "guest: also run on the second kernel (tests/guest.py)")
    config.addinivalue_line("markers", "long: runs for tens of seconds; its group starts first")
    # xdist sends groups in the order collected (long groups first, see below), not by
    # their number of tests (its default), which sends the few-test long groups last.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def features(item: pytest.Item) -> list[str]:
    """What ``item`` requires: its ``requires`` marks (all of them, closest first), its
    fixtures' needs, and ``bpf`` for a test marked ``kernel``."""
    out: list[str] = []
    for m in item.iter_markers("requires"):
        out += [f for f in m.args if f not in out]
    info = getattr(item, "_fixtureinfo", None)
    for defs in info.name2fixturedefs.values() if info else ():
        for d in defs:
            out += [f for f in getattr(d.func, "bpfkit_requires", ()) if f not in out]
    if item.get_closest_marker("kernel") and "bpf" not in out:
        out.insert(0, "bpf")
    return out


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the xdist_group marks set here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unknown = {f for item in items for f in features(item) if f not in probes.PROBES}
    if unknown:
        raise pytest.UsageError(f"requires() names features no probe knows: {sorted(unknown)}")
    for item in items:
        if "bpf" in features(item):
            item.add_marker("kernel")
            item.user_properties.append((_KERNEL, True))
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(Path(item.nodeid.split("::")[0]).stem))
    long = {_group(item) for item in items if item.get_closest_marker("long")}
    items.sort(key=lambda item: _group(item) not in long)  # stable: else in collected order


def _group(item: pytest.Item) -> str:
    mark = item.get_closest_marker("xdist_group")
    return str(mark.args[0] if mark and mark.args else mark.kwargs.get("name", "") if mark else "")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for f in features(item):
        why = probes.missing(f)
        if why is None:
            continue
        if f in probes.required():
            pytest.fail(f"{f} is required here (BPFKIT_REQUIRE) but missing: {why}")
        item.user_properties.append((_SKIP, f"{f}: {why}"))
        pytest.skip(f"{f} unavailable: {why}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Called in the process that prints the summary (xdist's controller gets the workers'
    # reports with their user properties).  Not `"kernel" in report.keywords`: pytest puts
    # directory names (tests/kernel) there too.
    props = dict(report.user_properties)
    if report.when == "call" and _GUEST in props:
        _count.guests.append(str(props[_GUEST]))
    if not props.get(_KERNEL):
        return
    if report.when == "call":
        _count.ran += 1
    elif report.when == "setup" and report.skipped:
        _count.skipped[str(props.get(_SKIP, _skip_reason(report)))] += 1


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if hasattr(terminalreporter.config, "workerinput"):
        return  # an xdist worker: the controller prints the count
    tr = terminalreporter
    skipped = sum(_count.skipped.values())
    here = f"{_count.ran} ran, {skipped} skipped ({os.uname().release}, this machine)"
    tr.write_sep("=", f"kernel tests: {here}")
    for reason, n in _count.skipped.most_common():
        tr.write_line(f"  skipped {n}: {reason}")
    for line in _count.guests:
        tr.write_sep("=", f"kernel tests: {line}")


# --- expensive setup shared by the whole session -----------------------------------------


def _run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory all xdist workers of this run share (pytest's base temp without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _once_per_run(tmp_path_factory: pytest.TempPathFactory, name: str, argv: list[str]) -> Path:
    """The file ``name`` holding ``argv``'s output, made by the first worker that asks (a
    lock file keeps the others waiting) and read by the rest."""
    import fcntl

    d = _run_dir(tmp_path_factory) / "bpfkit-shared"
    d.mkdir(exist_ok=True)
    out = d / name
    with open(d / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.exists():
            data = subprocess.run(argv, check=True, capture_output=True).stdout
            tmp = d / f".{name}.tmp"
            tmp.write_bytes(data)
            tmp.rename(out)
    return out


@pytest.fixture(scope="session")
@probes.needs("kernel-btf")
def vmlinux_btf() -> Btf:
    """The running kernel's BTF, parsed by bpfkit once per process (read-only: it is
    ``load_vmlinux()``'s cached result, which the code under test shares)."""
    return load_vmlinux()


@pytest.fixture(scope="session")
@probes.needs("kernel-btf", "bpftool")
def vmlinux_enums(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, int]]:
    """Every enum of the running kernel's BTF as bpftool reads it (an oracle independent of
    bpfkit's reader): ``{enum name: {enumerator: value}}``."""
    raw = _once_per_run(
        tmp_path_factory,
        "vmlinux.json",
        ["bpftool", "-j", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "raw"],
    )
    enums: dict[str, dict[str, int]] = {}
    for t in json.loads(raw.read_bytes())["types"]:
        if t["kind"] in ("ENUM", "ENUM64") and t["name"] != "(anon)":
            enums.setdefault(t["name"], {v["name"]: v["val"] for v in t["values"]})
    return enums


@pytest.fixture(scope="session")
@probes.needs("kernel-btf", "bpftool")
def vmlinux_h(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding ``vmlinux.h`` (``bpftool btf dump file ... format c``), made
    once per run: pass ``-I`` it to clang."""
    return _once_per_run(
        tmp_path_factory,
        "vmlinux.h",
        ["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
    ).parent
