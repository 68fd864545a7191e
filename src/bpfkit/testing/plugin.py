"""The pytest plugin (entry point ``pytest11: bpfkit``): test BPF programs like Python code.

Fixtures (see docs/testing.md for examples):

``bpf``            ``bpf("prog.c")`` builds (.c .rs .ll .s; a .o is read) and returns a
                   :class:`~bpfkit.testing.runner.BpfRunner` in the session's mode, using
                   ``bpf_env`` and pre-filling ``bpf_maps`` before every run
``bpf_mode``       ``vm``, ``kernel`` or ``both`` (``--bpf-mode``, ``BPFKIT_MODE``; the
                   default ``auto`` is ``both`` where bpf() works and ``vm`` elsewhere)
``bpf_build``      ``bpf_build("prog.c") -> ObjectSpec``, built once per session and source
``bpf_env``        the VM's world: a fake clock (``ktime_ns``, ``ktime_step_ns``), ``pid``,
                   ``tgid``, ``uid``, ``comm`` (a :class:`bpfkit.vm.Env` to change)
``bpf_maps``       ``{"map": {key: value}}`` written into the maps before each run
                   (Python values typed by the object's BTF)
``packets``        :mod:`bpfkit.testing.packets` (``ether() / ipv4() / udp() / b"data"``)
``bpf_leak_check`` fails the test if it leaves fds (programs, maps, links), bpffs pins,
                   tracefs instances or probe events behind (also ``--bpf-leak-check`` for
                   every test)

Markers: ``@pytest.mark.requires("root", "bpf", "kprobes", "uprobes", "tracefs",
kernel="5.8")`` skips with the reason, or fails when ``BPFKIT_REQUIRE`` names the capability
(``kernel`` for the version, ``all`` for everything).  Names the plugin does not know are
left to other plugins and conftest files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bpfkit.obj.reader import read_object
from bpfkit.obj.spec import ObjectSpec
from bpfkit.testing import leaks, packets, probes
from bpfkit.testing.runner import MODES, BpfRunner
from bpfkit.vm import Env

_MODE_HELP = "where the bpf fixture runs programs: vm, kernel, both, auto (default)"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bpfkit", "BPF programs (bpfkit)")
    group.addoption("--bpf-mode", default=None, choices=(*MODES, "auto"), help=_MODE_HELP)
    group.addoption(
        "--bpf-leak-check",
        action="store_true",
        default=None,
        help="fail every test that leaves BPF fds, pins, trace instances or probes behind",
    )
    parser.addini("bpf_mode", _MODE_HELP, default="auto")
    parser.addini(
        "bpf_leak_check", "leak-check every test (true/false)", type="bool", default=False
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*capabilities, kernel=None): skip unless the machine has them "
        "(root, bpf, kprobes, uprobes, tracefs; kernel='5.8'); BPFKIT_REQUIRE makes it fail",
    )
    config.addinivalue_line("markers", "bpf_leak_check: fail the test if it leaks kernel objects")


def resolve_mode(config: pytest.Config) -> str:
    """The session's mode: option, then BPFKIT_MODE, then the ini value; ``auto`` decided."""
    mode = (
        config.getoption("--bpf-mode") or os.environ.get("BPFKIT_MODE") or config.getini("bpf_mode")
    )
    if mode not in (*MODES, "auto"):
        raise pytest.UsageError(f"bpf mode {mode!r}: use vm, kernel, both or auto")
    if mode == "auto":
        return "both" if probes.missing("bpf") is None else "vm"
    return str(mode)


def missing_capabilities(item: pytest.Item) -> list[tuple[str, str]]:
    """``(capability, why)`` for each known capability ``item``'s marks ask for and this
    machine lacks."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for m in item.iter_markers("requires"):
        for f in m.args:
            if f in probes.PROBES and f not in seen:
                seen.add(f)
                why = probes.missing(f)
                if why is not None:
                    out.append((f, why))
        want = m.kwargs.get("kernel")
        if want is not None and "kernel" not in seen:
            seen.add("kernel")
            try:
                why = probes.kernel_too_old(want)
            except ValueError as e:
                raise pytest.UsageError(f"{item.nodeid}: {e}") from None
            if why is not None:
                out.append(("kernel", why))
    if resolve_mode(item.config) in ("kernel", "both") and "bpf" not in seen:
        if "bpf" in getattr(item, "fixturenames", ()):
            why = probes.missing("bpf")
            if why is not None:
                out.append(("bpf", f"{why} (--bpf-mode needs the kernel)"))
    return out


def pytest_runtest_setup(item: pytest.Item) -> None:
    for feature, why in missing_capabilities(item):
        if probes.is_required(feature):
            pytest.fail(f"{feature} is required here (BPFKIT_REQUIRE) but missing: {why}")
        pytest.skip(f"{feature} unavailable: {why}")


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bpf_mode(pytestconfig: pytest.Config) -> str:
    """``vm``, ``kernel`` or ``both``: where ``bpf`` runs programs."""
    return resolve_mode(pytestconfig)


@pytest.fixture(scope="session")
def bpf_build(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., ObjectSpec]:
    """``bpf_build(source, **build_options) -> ObjectSpec``: build a .c/.rs/.ll/.s source
    (once per session) or read a .o."""
    cache: dict[tuple[str, str], ObjectSpec] = {}

    def build(source: str | os.PathLike[str], **options: Any) -> ObjectSpec:
        path = Path(source).resolve()
        key = (str(path), repr(sorted(options.items())))
        if key not in cache:
            if path.suffix == ".o":
                cache[key] = read_object(path)
            else:
                from bpfkit.toolchain import build as build_object

                out = tmp_path_factory.mktemp("bpf_build") / (path.stem + ".o")
                cache[key] = read_object(build_object(path, out, **options))
        return cache[key]

    return build


@pytest.fixture
def bpf_env() -> Env:
    """The VM's task, clock and CPU (change fields before running: ``bpf_env.pid = 7``)."""
    return Env()


@pytest.fixture
def bpf_maps() -> dict[str, dict[Any, Any]]:
    """Map contents written before each run: ``bpf_maps["counts"] = {17: 5}``."""
    return {}


@pytest.fixture(name="packets")
def _packets() -> Any:
    """:mod:`bpfkit.testing.packets`: ``packets.ether() / packets.ipv4() / packets.udp()``."""
    return packets


class _Runner(BpfRunner):
    """A BpfRunner that also writes the test's ``bpf_maps`` before each run."""

    def __init__(self, obj: ObjectSpec, mode: str, env: Env, maps: dict[str, dict[Any, Any]]):
        super().__init__(obj, mode=mode, env=env)
        self._default_maps = maps

    def run(self, program: str | None = None, **kw: Any) -> Any:
        __tracebackhide__ = True
        merged = {**self._default_maps, **(kw.pop("maps", None) or {})}
        return super().run(program, maps=merged, **kw)


@pytest.fixture
def bpf(
    bpf_build: Callable[..., ObjectSpec],
    bpf_mode: str,
    bpf_env: Env,
    bpf_maps: dict[str, dict[Any, Any]],
) -> Callable[..., BpfRunner]:
    """``bpf(source_or_object, mode=None) -> BpfRunner``; ``.run(program, packet=, ctx=,
    maps=)`` runs it in the session's mode (``both``: VM and kernel must agree)."""

    def make(
        source: str | os.PathLike[str] | ObjectSpec, *, mode: str | None = None, **options: Any
    ) -> BpfRunner:
        obj = source if isinstance(source, ObjectSpec) else bpf_build(source, **options)
        return _Runner(obj, mode or bpf_mode, bpf_env, bpf_maps)

    return make


@pytest.fixture
def bpf_leak_check() -> Iterator[None]:
    """Fail the test if it leaves fds, pins, trace instances or probe events behind."""
    before = leaks.snapshot()
    yield
    found = leaks.leaked(before)
    if found:
        pytest.fail("test left kernel objects behind:\n  " + "\n  ".join(found), pytrace=False)


@pytest.fixture(autouse=True)
def _bpf_leak_check_marked(request: pytest.FixtureRequest) -> None:
    """Runs ``bpf_leak_check`` for tests marked ``bpf_leak_check`` (or all, by option)."""
    config = request.config
    every = config.getoption("--bpf-leak-check") or config.getini("bpf_leak_check")
    if every or request.node.get_closest_marker("bpf_leak_check"):
        request.getfixturevalue("bpf_leak_check")
