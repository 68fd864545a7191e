"""Clean-up: many load/attach/detach cycles in one process leave nothing behind — no file
descriptor, perf event, tracefs probe entry or instance, or BPF program of ours."""

from __future__ import annotations

import gc
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


def _fds() -> set[tuple[str, str]]:
    """Our descriptors with what each one is (so a number reused for something else after
    an unrelated close still counts as new)."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:
            pass  # the descriptor listdir itself used
    return out


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


State = tuple[set[tuple[str, str]], int, set[int], set[str], set[str]]


def _state(ids: set[int]) -> State:
    """Our fds, perf event fds, which of the programs ``ids`` we loaded are still in the
    kernel, our tracefs probe entries and instances.  (Programs are told apart by id, not
    name: other processes may be running these tests at the same time.)"""
    mine = {e for e in tracefs.probe_entries() if f"_{os.getpid()}_" in e}
    ours = {i for i in tracefs.instances() if f"-{os.getpid()}-" in i}
    alive = ids & {p.id for p in list_programs()}
    return _fds(), _perf_fds(), alive, mine, ours


def _before() -> State:
    """Our state before the cycles, after collecting what earlier tests left to the
    garbage collector (its finalizers would otherwise close fds in the middle)."""
    gc.collect()
    return _state(set())


def _left(ids: set[int], before: State) -> dict[str, object]:
    """What we hold now and did not hold ``before``: everything must be empty."""
    fds, perf, alive, mine, ours = _state(ids)
    return {
        "fds": sorted(fds - before[0]),
        "perf events": max(0, perf - before[1]),
        "programs": sorted(alive),
        "probe entries": sorted(mine - before[3]),
        "instances": sorted(ours - before[4]),
    }


def _settled(ids: set[int], before: State, timeout: float = 30.0) -> dict[str, object]:
    """What is left once the kernel has freed what we closed: programs go away after RCU
    grace periods, not at close(), and those take longer on a busy machine, so wait (the
    loop ends as soon as nothing is left)."""
    deadline = time.monotonic() + timeout
    while True:
        left = _left(ids, before)
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


NOTHING: dict[str, object] = {
    "fds": [],
    "perf events": 0,
    "programs": [],
    "probe entries": [],
    "instances": [],
}


def test_200_cycles_leave_nothing() -> None:
    ids: set[int] = set()
    before = _before()
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
    assert _settled(ids, before) == NOTHING


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
    before = _before()
    true = "/bin/true"
    for _ in range(5):
        with pytest.raises(RuntimeError):
            with load_program(rp.ret(0), ProgType.KPROBE, name="bpfkit_cleanup") as prog:
                ids.add(prog.info().id)
                entry = tracefs.ProbeEntry("uprobe", f"{true}:0x0")
                with entry, links.attach(prog, parse_spec(f"uprobe:{true}:0x0")):
                    assert any(entry.name in e for e in tracefs.probe_entries())
                    raise RuntimeError("boom")
    assert _settled(ids, before) == NOTHING


def _killed_owner(make: str) -> tuple[str, subprocess.Popen[str]]:
    """A bpfkit process that makes a tracefs entry (``make`` is the Python expression),
    prints its name and waits; returned alive, so no concurrent cleaner may take the
    entry yet."""
    code = (
        "import sys\n"
        "from bpfkit.kernel import tracefs\n"
        f"e = {make}\n"
        "print(getattr(e, 'name', None) or e.path.name, flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc.stdout.readline().strip(), proc


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.kill()  # SIGKILL: the process cannot remove its entries itself
    proc.wait()
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    proc.stdout.close()


def test_stale_probe_entries_of_dead_processes_are_removed() -> None:
    """An entry left by a bpfkit process that was killed is cleaned by the next one, and
    the entry of a live process is left alone."""
    name, proc = _killed_owner("tracefs.ProbeEntry('uprobe', '/bin/true:0x0')")
    try:
        assert name and any(name in e for e in tracefs.probe_entries())
        tracefs.remove_stale_probes()
        assert any(name in e for e in tracefs.probe_entries())  # its process is alive
    finally:
        _kill(proc)
    tracefs.remove_stale_probes()  # (a concurrent bpfkit process may have done it first)
    assert not any(name in e for e in tracefs.probe_entries())


def test_stale_instances_of_dead_processes_are_removed() -> None:
    name, proc = _killed_owner("tracefs.TraceInstance()")
    try:
        assert name in tracefs.instances()
        tracefs.remove_stale_instances()
        assert name in tracefs.instances()  # its process is alive
    finally:
        _kill(proc)
    tracefs.remove_stale_instances()  # (or a concurrent bpfkit process did)
    assert name not in tracefs.instances()
