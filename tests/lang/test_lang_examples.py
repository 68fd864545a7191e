"""The ten bcc-style tools of examples/python: each compiles with bpfkit.lang, runs in the
VM, and loads with zero verifier rejections on this kernel; two run live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bpfkit.lang.runtime import Program
from bpfkit.lang.types import cstr
from helpers import ROOT

EXAMPLES = ROOT / "examples" / "python"
TOOLS = [
    "execsnoop", "opensnoop", "syslat", "tcpconnect", "runqlat", "statsnoop", "killsnoop",
    "syscount", "xdpcount", "funclatency",
]  # fmt: skip
PACKET = bytes(12) + b"\x08\x00" + bytes(9) + b"\x11" + bytes(40)  # IPv4, UDP


def test_there_are_ten_tools() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == sorted(TOOLS)


@pytest.mark.parametrize("tool", TOOLS)
def test_tool_runs_in_the_vm(tool: str) -> None:
    prog = Program.from_file(str(EXAMPLES / f"{tool}.py"))
    for spec in prog.spec.programs:
        kw: dict[str, object] = {"packet": PACKET} if tool == "xdpcount" else {"ctx": bytes(256)}
        vm = prog.vm(spec.name, helpers={"bpf_get_current_task": lambda m, *a: 0}, **kw)
        result = vm.run()
        assert result.insns_executed > 3
    if tool == "xdpcount":
        assert result.r0 == 2  # XDP_PASS
        counts = prog.decode_map("counts", dict(vm.maps["counts"].items()))
        assert counts[17] == 1  # the UDP packet, counted once


@pytest.mark.requires("bpf", "tracepoint")
@pytest.mark.parametrize("tool", TOOLS)
def test_tool_loads_with_zero_verifier_rejections(tool: str) -> None:
    from bpfkit.kernel.collection import load_collection

    prog = Program.from_file(str(EXAMPLES / f"{tool}.py"))
    with load_collection(prog.spec) as coll:
        assert set(coll.programs) == {p.name for p in prog.spec.programs}


@pytest.mark.requires("bpf", "tracepoint")
def test_opensnoop_reports_an_open(tmp_path: Path) -> None:
    prog = Program.from_file(str(EXAMPLES / "opensnoop.py"))
    target = tmp_path / "opened-by-the-test"
    target.write_text("x")
    module = __import__("sys").modules["_bpfkit_prog_opensnoop"]
    with prog.load() as live:
        deadline = 50
        seen = []
        for _ in range(deadline):
            with open(target):
                pass
            seen += [e for e in live.events(module.Event, duration=0.1)]
            if any(cstr(e.path) == str(target) for e in seen):
                break
    hits = [e for e in seen if cstr(e.path) == str(target)]
    assert hits and hits[0].pid == os.getpid() and hits[0].ret >= 0


@pytest.mark.requires("bpf", "tracepoint")
def test_syscount_counts_syscalls() -> None:
    prog = Program.from_file(str(EXAMPLES / "syscount.py"))
    with prog.load() as live:
        for _ in range(20):
            os.getppid()  # getppid is syscall 110 on x86-64
        counts = dict(live.maps["counts"].items())
    assert sum(counts.values()) >= 20 and counts.get(110, 0) >= 20
