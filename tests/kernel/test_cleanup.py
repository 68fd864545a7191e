"""Clean-up: many load/attach/detach cycles in one process leave nothing behind — no file
descriptor, perf event, tracefs probe entry or instance, or BPF program of ours."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import rawprogs as rp

from bpfkit.kernel import links, tracefs
from bpfkit.kernel.attach import parse_spec
from bpfkit.kernel.info import list_programs
from bpfkit.kernel.program import load_program
from bpfkit.syscalls import Fd
from bpfkit.syscalls import perf as perfsys
from bpfkit.uapi import ProgType

pytestmark = pytest.mark.requires("bpf", "tracepoint")

CYCLES = 200


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _perf_fds() -> int:
    """Our descriptors that are perf events (anon_inode:[perf_event])."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[perf_event]":
                n += 1
        except OSError:
            pass
    return n


def _state(ids: set[int]) -> tuple[set[str], int, set[int], list[str], list[str]]:
    """Our fds, perf event fds, which of the programs ``ids`` we loaded are still in the
    kernel, our tracefs probe entries and instances.  (Programs are told apart by id, not
    name: other processes may be running these tests at the same time.)"""
    mine = [e for e in tracefs.probe_entries() if f"_{os.getpid()}_" in e]
    ours = [i for i in tracefs.instances() if f"-{os.getpid()}-" in i]
    alive = ids & {p.id for p in list_programs()}
    return _fds(), _perf_fds(), alive, mine, ours


def _settled(ids: set[int], before: object, timeout: float = 5.0) -> object:
    """Our state once the kernel has freed what we closed: programs go away after an RCU
    grace period, not at close(), so wait for them a little."""
    deadline = time.monotonic() + timeout
    while True:
        now = _state(ids)
        if now == before or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def test_200_cycles_leave_nothing() -> None:
    ids: set[int] = set()
    before = _state(ids)
    # Detaching the last perf event of a tracepoint waits for RCU grace periods (~50 ms
    # on this kernel); an idle event kept open on the same tracepoint avoids that wait in
    # every cycle without changing what is opened and closed.
    anchor = Fd(
        perfsys.perf_event_open(
            perfsys.tracepoint_attr(tracefs.event_id("syscalls", "sys_enter_getppid"))
        ),
        "anchor",
    )
    with anchor:
        _cycles(ids)
    assert len(ids) == CYCLES + CYCLES // 4
    assert _settled(ids, before) == before


def _cycles(ids: set[int]) -> None:
    for i in range(CYCLES):
        # Alternate the ways of attaching: BPF link on a tracepoint, the ioctl path, a
        # tracefs instance, and a raw tracepoint.
        kind = i % 4
        with load_program(rp.ret(0), ProgType.TRACEPOINT, name="bpfkit_cleanup") as prog:
            ids.add(prog.info().id)
            if kind == 0:
                with links.attach(prog, parse_spec("tracepoint:syscalls:sys_enter_getppid")):
                    os.getppid()
            elif kind == 1:
                links._perf_link_supported = False
                try:
                    with links.attach(prog, parse_spec("tracepoint:syscalls:sys_enter_getppid")):
                        os.getppid()
                finally:
                    links._perf_link_supported = None
            elif kind == 2:
                with tracefs.TraceInstance() as inst:
                    list(inst.pipe.lines(0))
        if kind == 3:
            with load_program(rp.ret(0), ProgType.RAW_TRACEPOINT, name="bpfkit_cleanup") as raw:
                ids.add(raw.info().id)
                with links.attach(raw, parse_spec("raw_tracepoint:sys_enter")):
                    os.getppid()


@pytest.mark.requires("bpf", "uprobes")
def test_uprobe_entries_removed_on_exception() -> None:
    """A tracefs probe entry is removed even when the code using it raises."""
    ids: set[int] = set()
    before = _state(ids)
    true = "/bin/true"
    for _ in range(5):
        with pytest.raises(RuntimeError):
            with load_program(rp.ret(0), ProgType.KPROBE, name="bpfkit_cleanup") as prog:
                ids.add(prog.info().id)
                entry = tracefs.ProbeEntry("uprobe", f"{true}:0x0")
                with entry, links.attach(prog, parse_spec(f"uprobe:{true}:0x0")):
                    assert any(entry.name in e for e in tracefs.probe_entries())
                    raise RuntimeError("boom")
    assert _settled(ids, before) == before


def test_stale_probe_entries_of_dead_processes_are_removed() -> None:
    """An entry left by a bpfkit process that was killed is cleaned by the next one."""
    code = (
        "import os, signal\n"
        "from bpfkit.kernel import tracefs\n"
        "e = tracefs.ProbeEntry('uprobe', '/bin/true:0x0')\n"
        "print(e.name, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    name = out.stdout.strip()
    assert name and any(name in e for e in tracefs.probe_entries())
    tracefs.remove_stale_probes()  # (a concurrent bpfkit process may have done it first)
    assert not any(name in e for e in tracefs.probe_entries())


def test_stale_instances_of_dead_processes_are_removed() -> None:
    code = (
        "import os, signal\n"
        "from bpfkit.kernel import tracefs\n"
        "i = tracefs.TraceInstance()\n"
        "print(i.path.name, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    name = out.stdout.strip()
    assert name in tracefs.instances()
    tracefs.remove_stale_instances()
    assert name not in tracefs.instances()
