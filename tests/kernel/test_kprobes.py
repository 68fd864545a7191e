"""kprobes and kretprobes on a kernel that has them, through both attach paths: the kprobe
PMU (perf_event_open with the function's name) and a tracefs ``kprobe_events`` entry.

This machine's kernel has no kprobes: these tests run on the second kernel
(``tests/test_guest.py`` boots Debian's Linux 6.1 under QEMU and runs ``pytest -m guest``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import rawprogs as rp

from bpfkit.errors import KernelError
from bpfkit.kernel import links, tracefs
from bpfkit.kernel.attach import AttachPoint, plan
from bpfkit.kernel.maps import Map, create_map
from bpfkit.kernel.program import load_program
from bpfkit.uapi import ProgType

pytestmark = [pytest.mark.requires("bpf", "kprobes"), pytest.mark.guest]


@pytest.fixture
def counter() -> Iterator[Map]:
    with create_map("array", 4, 8, 1, key=int, value=int) as m:
        yield m


@pytest.fixture(params=["pmu", "kprobe_events"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which attach path: the kprobe PMU, or (PMU hidden) a kprobe_events entry."""
    if request.param == "kprobe_events":
        monkeypatch.setattr(links, "pmu_type", lambda name: None)
    elif links.pmu_type("kprobe") is None:
        pytest.fail("this kernel has kprobe_events but no kprobe PMU")
    return str(request.param)


def _ours() -> list[str]:
    return [e for e in tracefs.probe_entries() if e.startswith(f"bpfkit/k_{os.getpid()}_")]


@pytest.mark.parametrize("kind", ["kprobe", "kretprobe"])
def test_probe_counts_calls_and_leaves_nothing(kind: str, path: str, counter: Map) -> None:
    point = plan(AttachPoint(kind, "SyS_getppid")).point
    assert point.target.endswith("sys_getppid") and point.target != "SyS_getppid"
    with load_program(rp.count_key0(counter.fd), ProgType.KPROBE) as prog:
        with links.attach(prog, point):
            if path == "kprobe_events":
                # The entry is listed while attached: also "r10:bpfkit/..." (6.1's
                # kretprobe form), which the stale-entry cleanup must recognise.
                assert len(_ours()) == 1
            for _ in range(25):
                os.getppid()
    assert counter[0] >= 25
    assert _ours() == []


def test_stale_kretprobe_entry_is_removed() -> None:
    """An entry left by a dead process (here: written by hand with a pid that cannot
    exist) is removed; Linux 6.1 lists a kretprobe with its maxactive (``r10:...``)."""
    control = tracefs.root() / "kprobe_events"
    name = f"k_{2**22 + 1}_0"  # above pid_max's limit: no such process
    target = plan(AttachPoint("kprobe", "SyS_getppid")).point.target
    _append(control, f"r:{tracefs.GROUP}/{name} {target}\n")
    try:
        (line,) = [x for x in control.read_text().splitlines() if f"/{name} " in x]
        assert line.startswith("r")  # "r:" or, on 6.1, "r10:" (maxactive)
        assert tracefs.remove_stale_probes() >= 1
        assert f"{tracefs.GROUP}/{name}" not in control.read_text()
    finally:
        if f"{tracefs.GROUP}/{name}" in control.read_text():
            _append(control, f"-:{tracefs.GROUP}/{name}\n")


def _append(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)  # no seek: tracefs control files refuse it
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def test_offset_inside_an_instruction_says_so(path: str, counter: Map) -> None:
    """``+1`` is inside the first instruction of any x86 function (endbr64 or a
    4-byte-plus instruction): the kernel answers EILSEQ, bpfkit says what it means."""
    target = plan(AttachPoint("kprobe", "SyS_getppid")).point.target
    with load_program(rp.count_key0(counter.fd), ProgType.KPROBE) as prog:
        with pytest.raises(KernelError, match="not the start of an instruction") as ei:
            links.attach(prog, AttachPoint("kprobe", target, offset=1))
    assert "multibyte" not in str(ei.value)
    assert _ours() == []
