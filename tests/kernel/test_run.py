"""``bpfkit run`` / ``bpfkit trace`` and the Session API on the real kernel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import probes
from bpfkit.cli.main import main
from bpfkit.kernel import tracefs
from bpfkit.kernel.info import list_programs
from bpfkit.kernel.session import MapEvent, Session
from helpers import clang_bpf

pytestmark = pytest.mark.requires("bpf", "tracepoint")

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello" / "hello.o"
PROGS = Path(__file__).parent / "progs"
BPFKIT = [sys.executable, "-m", "bpfkit"]


@contextmanager
def clones() -> Iterator[None]:
    """Keep some process calling clone(): a shell forking in a loop (dash forks with the
    clone syscall; Python's subprocess uses vfork, which the hello tracepoint misses)."""
    proc = subprocess.Popen(["sh", "-c", "while :; do /bin/true & wait; sleep 0.02; done"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


@contextmanager
def getppid_loop() -> Iterator[None]:
    """Call getppid() from a thread of this process until the block ends."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            os.getppid()
            time.sleep(0.005)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


@pytest.fixture(scope="module")
@probes.needs("clang19")
def progs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The C test programs of tests/kernel/progs, compiled with clang-19."""
    out = tmp_path_factory.mktemp("progs")
    built = {}
    for src in sorted(PROGS.glob("*.c")):
        obj = out / (src.stem + ".o")
        built[src.stem] = clang_bpf(src, obj)
    return built


def _bpfkit(*args: str, timeout: float = 30, **kw: object) -> tuple[int, str, str, int]:
    """Run ``python -m bpfkit ARGS``: exit status, stdout, stderr and its pid."""
    proc = subprocess.Popen(
        [*BPFKIT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,  # type: ignore[call-overload]
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    return proc.returncode, out, err, proc.pid


def _leftovers(pid: int) -> list[str]:
    """tracefs instances and probe entries a process left behind."""
    instances = [i for i in tracefs.instances() if i.startswith(f"bpfkit-{pid}-")]
    probes_ = [e for e in tracefs.probe_entries() if f"_{pid}_" in e]
    return instances + probes_


def _settle_ids(ids: set[int], timeout: float = 30.0) -> set[int]:
    """Which of ``ids`` are still loaded once the kernel had time to free closed programs
    (RCU grace periods, slower on a busy machine; the loop ends as soon as none is)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = ids & {p.id for p in list_programs()}
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


@pytest.mark.guest
def test_run_hello_prints_three_lines_and_leaves_nothing() -> None:
    """The acceptance test: the seed's hello.o prints "hello from rust" on this kernel
    (on the second kernel, from a real kprobe on __x64_sys_clone)."""
    with clones():
        rc, out, err, pid = _bpfkit("run", str(HELLO), "--count", "3", timeout=600)
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    assert all("hello from rust" in line for line in lines)
    if not probes.missing("kprobes"):
        assert "__x64_sys_clone" in err, err
        assert "no kprobes" not in err
    else:
        notes = [n for n in err.splitlines() if "no kprobes" in n]
        assert notes == [
            "bpfkit: kprobe:SyS_clone -> tracepoint:syscalls:sys_enter_clone "
            "(this kernel has no kprobes)"
        ]
    # The process is gone, so are its fds; what could outlive it lives in tracefs.
    assert _leftovers(pid) == []


def test_run_in_process_closes_every_fd(capsys: pytest.CaptureFixture[str]) -> None:
    fds = sorted(os.listdir("/proc/self/fd"))
    with clones():
        assert main(["run", str(HELLO), "--count", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and all("hello from rust" in line for line in out)
    assert sorted(os.listdir("/proc/self/fd")) == fds
    # Every fd closed means every program, map, link and perf event of the run released
    # (the Session test checks program ids; other processes may be running hello too).
    assert _leftovers(os.getpid()) == []


@pytest.mark.requires("bpf", "tracepoint", "clang19")
def test_session_reads_maps_while_running(progs: dict[str, Path]) -> None:
    """Counting syscalls per process in a hash map, read from Python while attached;
    global data (.rodata, .data, .bss) and a sub-program call load and work."""
    with Session(progs["count_syscalls"], trace=False) as s:
        ids = {p.info().id for p in s.programs.values()}
        counts = s.maps["counts"].typed(key=int, value=int)
        for _ in range(5):
            os.getppid()
        first = counts[os.getpid()]
        for _ in range(300):
            os.getppid()
        assert counts[os.getpid()] - first >= 300
        rodata = s.maps[".rodata"].typed(key=int)
        assert int.from_bytes(rodata[0], "little") == 1  # step
        bss = s.maps[".bss"].typed(key=int)
        assert int.from_bytes(bss[0], "little") >= 300  # total_seen
        assert [link.point.kind for link in s.links] == ["tracepoint"]
    assert _settle_ids(ids) == set()


@pytest.mark.requires("bpf", "tracepoint", "clang19")
def test_session_events_from_ring_and_perf_buffers(progs: dict[str, Path]) -> None:
    import struct

    mine: dict[str, int] = {"ring": 0, "perf": 0}
    with Session(progs["buffers"], trace=False, buffers=True) as s:
        assert sorted(name for name, _ in s.readers) == ["perf", "ring"]
        for _ in range(6):
            os.getppid()
        for event in s.events(duration=5):
            assert isinstance(event, MapEvent)
            tgid, tag = struct.unpack_from("<I4s", event.data)
            if tgid == os.getpid():
                assert tag == event.map.upper().encode()
                assert (event.cpu is None) == (event.map == "ring")
                mine[event.map] += 1
            if mine == {"ring": 6, "perf": 6}:
                break
    assert mine == {"ring": 6, "perf": 6}


@pytest.mark.requires("bpf", "tracepoint", "clang19")
@pytest.mark.parametrize("all_lines", [False, True])
def test_session_shows_only_lines_its_programs_print(
    progs: dict[str, Path], all_lines: bool
) -> None:
    """Another program printing on the same tracepoint is not shown (unless all_lines)."""
    import rawprogs as rp

    from bpfkit.kernel import links
    from bpfkit.kernel.attach import parse_spec
    from bpfkit.kernel.program import load_program
    from bpfkit.uapi import ProgType

    with (
        load_program(rp.printk(b"bpfkit-other"), ProgType.TRACEPOINT) as other,
        links.attach(other, parse_spec("tracepoint:syscalls:sys_enter_getppid")),
        Session(progs["printer"], all_lines=all_lines) as s,
    ):
        for _ in range(5):
            os.getppid()
        # Other processes (concurrent test runs) print too: read until our own lines are
        # in, not a fixed number of lines, which theirs could fill.
        messages: list[str] = []
        ours = f"bpfkit printer {os.getpid()}"
        for line in s.lines(duration=5):
            messages.append(line.message)
            if ours in messages and (
                "bpfkit-other" in messages if all_lines else s.stats.skipped >= 5
            ):
                break
    assert ours in messages
    others = [m for m in messages if m == "bpfkit-other"]
    if all_lines:
        assert others and s.stats.skipped == 0
    else:
        assert others == [] and s.stats.skipped >= 5
        assert all(m.startswith("bpfkit printer ") for m in messages)


@pytest.mark.requires("bpf", "tracepoint", "clang19")
def test_run_maps_and_attach_override(
    progs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """--attach moves a program; --maps prints the maps at the end."""
    with getppid_loop():
        rc = main(["run", str(progs["count_syscalls"]), "--duration", "0.5", "--maps"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "map counts (hash):" in out
    listing = out.split("map counts (hash):", 1)[1].split("\nmap ", 1)[0]
    if "more entries" in listing:
        # A busy machine: more processes made syscalls than --maps lists; ours may be cut.
        assert len(listing.splitlines()) == 52
    else:
        assert f"\n  {os.getpid()}: " in listing
    assert "map .rodata (array): 1 slots\n  [0]: {step: 1}" in out

    def getpgid_loop() -> None:
        for _ in range(200):
            os.getpgid(0)
            time.sleep(0.01)

    t = threading.Thread(target=getpgid_loop)
    t.start()
    try:
        rc = main(
            ["run", str(progs["printer"]), "--attach", "tracepoint:syscalls:sys_enter_getpgid"]
            + ["--count", "2", "--duration", "10"]
        )
    finally:
        t.join()
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("bpfkit printer" in line for line in lines)


@pytest.mark.requires("bpf", "tracepoint", "clang19")
def test_rejected_program_shows_the_verifier_log(
    progs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(progs["rejected"]), "--count", "1"]) == 1
    err = capsys.readouterr().err
    assert "R0 invalid mem access 'map_value_or_null'" in err
    assert err.rstrip().splitlines()[-1].startswith("bpfkit: error: ")
    assert "Traceback" not in err
    assert main(["run", str(progs["rejected"]), "-v", "--count", "1"]) == 1
    verbose = capsys.readouterr().err
    assert "processed" in verbose and len(verbose) >= len(err)


@pytest.mark.requires("bpf", "tracepoint", "clang19")
def test_sigterm_detaches_and_exits(progs: dict[str, Path]) -> None:
    proc = subprocess.Popen(
        [*BPFKIT, "run", str(progs["printer"])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        line = proc.stderr.readline()  # "bpfkit: attached printer -> ..." once attached
        assert "attached printer -> tracepoint:syscalls:sys_enter_getppid" in line
        assert any(i.startswith(f"bpfkit-{proc.pid}-") for i in tracefs.instances())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 143
    finally:
        proc.kill()
        proc.communicate()
    assert _leftovers(proc.pid) == []


@pytest.mark.requires("bpf", "tracepoint", "clang19")
def test_ctrl_c_ends_the_stream_prints_maps_and_detaches(progs: dict[str, Path]) -> None:
    proc = subprocess.Popen(
        [*BPFKIT, "run", str(progs["count_syscalls"]), "--maps"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test run started in the background (`pytest &` from a script) ignores SIGINT,
        # and children inherit that: give bpfkit the SIGINT of a terminal's Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    try:
        assert "attached count_syscalls" in proc.stderr.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "map counts (hash):" in out and "Traceback" not in err
    assert _leftovers(proc.pid) == []


@pytest.mark.requires("bpf", "tracepoint", "clang19")
def test_trace_command_streams_private_instance(progs: dict[str, Path]) -> None:
    # The instance gets every program's lines (other test runs print too): ask for enough
    # that ours, printed every 5 ms, are among them.
    with Session(progs["printer"], trace=False), getppid_loop():
        rc, out, err, pid = _bpfkit("trace", "--private", "--count", "30", "--duration", "10")
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 30
    assert any(f"bpfkit printer {os.getpid()}" in line for line in lines)
    assert _leftovers(pid) == []


def test_without_privileges_one_sentence() -> None:
    """Root without capabilities (setpriv drops them all) is told so in one sentence."""
    proc = subprocess.run(
        ["setpriv", "--bounding-set=-all", "--inh-caps=-all", *BPFKIT]
        + ["run", str(HELLO), "--count", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "bpfkit: error: loading BPF programs needs root or CAP_BPF: run bpfkit as root (sudo)"
    ]


@pytest.mark.requires("bpf", "tracepoint", "clang19")
def test_cli_errors_are_one_message(
    progs: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cases = {
        ("--program", "nope"): "no program named 'nope'; programs: to_ring",
        ("--attach", "fentry:do_exit"): "unknown kind 'fentry'",
        ("--attach", "tracepoint:syscalls:sys_enter_nope"): "sys_enter_nope does not exist",
    }
    for extra, message in cases.items():
        assert main(["run", str(progs["buffers"]), *extra, "--count", "1"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("bpfkit: error: ") and message in err, err
        assert len(err.strip().splitlines()) == 1
    assert main(["run", str(tmp_path / "missing.o"), "--count", "1"]) == 1
    assert "missing.o" in capsys.readouterr().err
    assert _leftovers(os.getpid()) == []


@pytest.mark.requires("bpf", "tracepoint", "clang19")
def test_run_one_program_by_name(
    progs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with getppid_loop():
        assert main(["run", str(progs["buffers"]), "--program", "to_perf", "--count", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("perf[cpu ") for line in lines)


@pytest.mark.requires()
def test_run_vm_delegates_to_the_vm(capsys: pytest.CaptureFixture[str]) -> None:
    """`bpfkit run --vm` runs in bpfkit's userspace VM: no kernel, no privileges."""
    assert main(["run", "--vm", str(HELLO)]) == 0
    assert "hello from rust" in capsys.readouterr().out


@pytest.mark.requires("bpf", "tracepoint")
def test_run_says_why_nothing_shows_on_a_quiet_attach_point(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A probe that does not fire gets one hint, not silence (acct(2) is practically never
    called)."""
    import bpfkit.cli.run as run_cli

    monkeypatch.setattr(run_cli, "QUIET_HINT_AFTER", 0.3)
    argv = ["run", str(HELLO), "--attach", "tracepoint:syscalls:sys_enter_acct"]
    assert main([*argv, "--duration", "1.5"]) == 0
    err = capsys.readouterr().err
    assert err.count("no output yet") == 1
    assert "tracepoint:syscalls:sys_enter_acct" in err
