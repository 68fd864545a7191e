"""Runs of one object at once each show their own lines (issue 10, defect 12), on the real
kernel: ``bpfkit run`` makes its programs' printk calls print formats tagged with the run
(bpfkit.obj.printk_tags; the rewrite itself is tested without root in
tests/obj/test_printk_tags.py) and shows only lines with its tag.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from bpfkit.kernel.info import map_ids, prog_info
from bpfkit.kernel.session import Session
from helpers import ROOT, clang_bpf

pytestmark = pytest.mark.requires("bpf", "tracepoint")

HELLO = ROOT / "examples" / "hello" / "hello.o"
PRINTER = Path(__file__).parent / "progs" / "printer.c"
BPFKIT = [sys.executable, "-m", "bpfkit"]
CLONES = 6
LINE = re.compile(r"^(?P<task>.*)-(?P<pid>\d+) \[\d+\] \d+\.\d+: (?P<message>.*)$")


class _Run:
    """``bpfkit run OBJ`` in a process of its own, its output read as it comes."""

    def __init__(self, obj: Path) -> None:
        self.proc = subprocess.Popen(
            [*BPFKIT, "run", str(obj)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.attached = threading.Event()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self.readers:
            t.start()

    def _read(self, stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.append(line.rstrip("\n"))
            if line.startswith("bpfkit: attached"):
                self.attached.set()

    def wait_attached(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.attached.wait(0.1):
            assert self.proc.poll() is None, "\n".join(self.err)
            assert time.monotonic() < deadline, "\n".join(self.err)

    def stop(self) -> int:
        """Ctrl-C, as in a shell; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=120)
        finally:
            self.proc.kill()
        for t in self.readers:
            t.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return rc

    def lines_of(self, pids: set[int]) -> list[tuple[int, str]]:
        """(pid, message) of the lines shown for processes ``pids``."""
        found = []
        for line in list(self.out):
            m = LINE.match(line)
            if m and int(m["pid"]) in pids:
                found.append((int(m["pid"]), m["message"]))
        return found


def _clone_once() -> int:
    """One clone() from a new shell (dash forks with the clone syscall; Python's
    subprocess spawns with vfork/clone3, which the hello probe does not see); its pid."""
    proc = subprocess.Popen(["sh", "-c", "true & wait"])
    proc.wait()
    return proc.pid


@pytest.mark.guest
def test_two_runs_of_hello_at_once_each_print_their_own_lines_once() -> None:
    """Issue 10, defect 12: before tagging, each of the two runs printed every clone()'s
    line twice (its own program's and the other run's)."""
    runs = [_Run(HELLO), _Run(HELLO)]
    try:
        for run in runs:
            run.wait_attached(timeout=600)  # emulated kernels load slowly
        pids = {_clone_once() for _ in range(CLONES)}
        deadline = time.monotonic() + 300
        while any(len(r.lines_of(pids)) < CLONES for r in runs):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        time.sleep(1.0)  # time for a second copy of any line to arrive
    finally:
        statuses = [run.stop() for run in runs]
    for run, rc in zip(runs, statuses, strict=True):
        err = "\n".join(run.err)
        assert rc == 0, err
        shown = run.lines_of(pids)
        # Exactly one line per clone(), untagged as a single run shows it.
        assert Counter(pid for pid, _ in shown) == Counter(pids), (shown, err)
        assert {message for _, message in shown} == {"hello from rust"}, shown
        assert "another bpfkit run" not in err and "untagged" not in err, err


@pytest.mark.guest
@pytest.mark.requires("clang19", "bpftool")
def test_sessions_of_a_c_object_with_btf_see_their_own_lines(tmp_path: Path) -> None:
    """Two Sessions of one process (tags ``[bpfkit PID]`` and ``[bpfkit PID.N]``) of a C
    program with BTF: the stubs load with func_info and line_info (bpftool names them),
    each session shows each getppid() once, and every map (the tag map too) is released."""
    obj = clang_bpf(PRINTER, tmp_path / "printer.o")
    me = threading.get_native_id()
    with Session(obj) as a, Session(obj) as b:
        assert a.tag != b.tag
        for s in (a, b):
            assert not any("BTF" in n or "untagged" in n for n in s.notes), s.notes
            assert set(s.maps) == {".rodata"}  # the tag map is bpfkit's, not the object's
        info = prog_info(a.programs["printer"].fd)
        held = set(info.map_ids)
        assert len(held) == 2  # .rodata and the tagged formats
        xlated = subprocess.run(
            ["bpftool", "prog", "dump", "xlated", "id", str(info.id)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "int printer(void * ctx):" in xlated and "long bpfkit_printk():" in xlated
        assert xlated.count('; bpf_printk("bpfkit printer %d"') == 2  # the call and its stub
        for _ in range(CLONES):
            os.getppid()
        want = f"bpfkit printer {os.getpid()}"
        for s in (a, b):
            mine = []
            for line in s.lines(duration=5.0):
                if line.pid == me:
                    mine.append(line.message)
            assert mine == [want] * CLONES
    deadline = time.monotonic() + 30
    while held & set(map_ids()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not held & set(map_ids())


def test_a_kernel_refusing_the_stubs_gets_the_programs_untagged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the kernel refuses the tagged programs (bpf-to-bpf calls), the programs load as
    they are, lines show as before tagging (by format), and a note says why."""
    import bpfkit.kernel.collection as collection
    from bpfkit.errors import VerifierError

    real = collection.load_collection
    tried: list[bool] = []

    def refusing(*args: object, **kw: object) -> collection.Collection:
        tried.append(kw.get("printk") is not None)
        if kw.get("printk") is not None:
            raise VerifierError("function calls are not allowed here", "log", 22)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(collection, "load_collection", refusing)
    with Session(HELLO) as s:
        assert tried == [True, False]
        (note,) = [n for n in s.notes if "not tagged" in n]
        assert "function calls are not allowed here" in note
        assert set(s.collection.maps) == set()  # no map of tagged formats
        assert s.filter.message("hello from rust\n") == "hello from rust\n"
        assert s.filter.message("something else") is None
