"""Attaching programs on the real kernel: tracepoints (BPF link and ioctl paths), raw
tracepoints, uprobes on a binary built here, socket filters on loopback, ring buffers,
kprobes where the kernel has them."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import rawprogs as rp

import probes
from bpfkit.errors import KernelError
from bpfkit.events.ringbuf import RingBufReader
from bpfkit.events.trace_pipe import stream
from bpfkit.kernel import links, tracefs
from bpfkit.kernel.attach import AttachPoint, parse_spec, plan
from bpfkit.kernel.maps import Map, create_map
from bpfkit.kernel.program import Program, load_program
from bpfkit.uapi import ProgType

pytestmark = pytest.mark.requires("bpf", "tracepoint")


@pytest.fixture
def counter() -> Iterator[Map]:
    with create_map("array", 4, 8, 1, key=int, value=int) as m:
        yield m


def _getppid_n(n: int) -> None:
    for _ in range(n):
        os.getppid()


def test_tracepoint_counts_per_process_while_running() -> None:
    """A syscall counter per process (hash map), read back from Python while attached."""
    with (
        create_map("hash", 4, 8, 1024, key=int, value=int) as counts,
        load_program(rp.count_per_tgid(counts.fd), ProgType.TRACEPOINT) as prog,
        links.attach(prog, parse_spec("tracepoint:raw_syscalls:sys_enter")) as link,
    ):
        assert link.how == "bpf_link"
        _getppid_n(10)
        before = counts[os.getpid()]
        _getppid_n(500)
        after = counts[os.getpid()]
        assert after - before >= 500
        assert len(counts) >= 1 and all(v > 0 for v in counts.values())
    _getppid_n(10)
    assert link.closed


def test_ioctl_path_when_links_are_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """PERF_EVENT_IOC_SET_BPF + ENABLE, as on kernels before 5.15; detach really detaches."""
    monkeypatch.setattr(links, "_perf_link_supported", False)
    with (
        create_map("hash", 4, 8, 1024, key=int, value=int) as counts,
        load_program(rp.count_per_tgid(counts.fd), ProgType.TRACEPOINT) as prog,
    ):
        with links.attach(prog, AttachPoint("tracepoint", "syscalls:sys_enter_getppid")) as link:
            assert link.how == "perf_ioctl"
            _getppid_n(50)
        assert counts[os.getpid()] == 50
        _getppid_n(50)
        assert counts[os.getpid()] == 50  # detached


def test_raw_tracepoint(counter: Map) -> None:
    with (
        load_program(rp.count_key0(counter.fd), ProgType.RAW_TRACEPOINT) as prog,
        links.attach(prog, parse_spec("raw_tracepoint:sys_enter")) as link,
    ):
        _getppid_n(20)
        assert link.how == "raw_tracepoint"
        assert counter[0] >= 20


def test_kprobe_section_falls_back_to_syscall_tracepoint() -> None:
    p = plan(AttachPoint("kprobe", "SyS_clone"), kprobes=False)
    assert p.point == AttachPoint("tracepoint", "syscalls:sys_enter_clone")
    assert p.prog_type == ProgType.TRACEPOINT
    assert p.note and "no kprobes" in p.note
    ret = plan(AttachPoint("kretprobe", "__x64_sys_getppid"), kprobes=False)
    assert ret.point.target == "syscalls:sys_exit_getppid"
    with pytest.raises(KernelError, match="no kprobes"):
        plan(AttachPoint("kprobe", "do_sys_open"), kprobes=False)
    with pytest.raises(KernelError, match="sys_enter_no_such_call"):
        plan(AttachPoint("kprobe", "sys_no_such_call"), kprobes=False)


def test_trace_printk_reaches_a_private_instance() -> None:
    # Other programs on sys_enter_getppid (other tests, other runs on this kernel) also print
    # lines with this pid when it calls getppid(): ours are the ones with our message.
    text = f"bkattach{os.getpid() % 10**6}"  # printk() takes up to 15 bytes
    with (
        tracefs.TraceInstance() as inst,
        load_program(rp.printk(text.encode()), ProgType.TRACEPOINT) as prog,
        links.attach(prog, parse_spec("tracepoint:syscalls:sys_enter_getppid")),
    ):
        _getppid_n(3)
        mine = list(
            stream(
                inst.pipe,
                duration=5.0,
                count=3,
                keep=lambda t: t.pid == os.getpid() and t.message == text,
            )
        )
    assert len(mine) == 3
    assert all(line.event == "bpf_trace_printk" for line in mine)
    assert inst.path.name not in tracefs.instances()


def test_ring_buffer_events_from_a_tracepoint() -> None:
    size = 4096 * 4
    with (
        create_map("ringbuf", 0, 0, size) as ring,
        load_program(rp.ringbuf_pid_tgid(ring.fd), ProgType.TRACEPOINT) as prog,
        RingBufReader(ring.fd, size) as reader,
    ):
        with links.attach(prog, parse_spec("tracepoint:syscalls:sys_enter_getppid")):
            _getppid_n(7)
        records: list[bytes] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            records += reader.poll(0.2)
            if sum(1 for r in records if int.from_bytes(r, "little") >> 32 == os.getpid()) >= 7:
                break
        ours = [r for r in records if int.from_bytes(r, "little") >> 32 == os.getpid()]
        assert len(ours) == 7
        assert all(len(r) == 8 for r in records)
        assert int.from_bytes(ours[0], "little") & 0xFFFFFFFF == _gettid()


def _gettid() -> int:
    return int(ctypes.CDLL(None).gettid())


@pytest.fixture(scope="module")
@probes.needs("clang19")
def target_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small program with a function to probe, built with clang-19 for this machine."""
    d = tmp_path_factory.mktemp("uprobe")
    src = d / "target.c"
    src.write_text(
        "#include <stdio.h>\n#include <stdlib.h>\n"
        "__attribute__((noinline)) int bpfkit_target(int x) {"
        ' __asm__ volatile(""); return x + 1; }\n'
        "int main(int argc, char **argv) { int n = atoi(argv[1]), s = 0;"
        " for (int i = 0; i < n; i++) s += bpfkit_target(i);"
        ' printf("%d\\n", s); return 0; }\n'
    )
    exe = d / "target"
    subprocess.run(["clang-19", "-O1", "-o", str(exe), str(src)], check=True)
    return exe


@pytest.mark.requires("bpf", "uprobes")
@pytest.mark.parametrize("kind", ["uprobe", "uretprobe"])
def test_uprobe_counts_calls(kind: str, target_binary: Path, counter: Map) -> None:
    with (
        load_program(rp.count_key0(counter.fd), ProgType.KPROBE) as prog,
        links.attach(prog, parse_spec(f"{kind}:{target_binary}:bpfkit_target")),
    ):
        out = subprocess.run([str(target_binary), "37"], capture_output=True, text=True)
        assert out.stdout.strip() == str(sum(range(1, 38)))
    assert counter[0] == 37
    subprocess.run([str(target_binary), "5"], capture_output=True, check=True)
    assert counter[0] == 37  # detached


@pytest.mark.requires("bpf", "uprobes")
def test_uprobe_unknown_symbol(target_binary: Path, counter: Map) -> None:
    with load_program(rp.count_key0(counter.fd), ProgType.KPROBE) as prog:
        with pytest.raises(KernelError, match="no function symbol 'nope'"):
            links.attach(prog, parse_spec(f"uprobe:{target_binary}:nope"))
        with pytest.raises(KernelError, match="imported, not defined"):
            links.attach(prog, parse_spec(f"uprobe:{target_binary}:printf"))


def _udp_pair() -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.3)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    return rx, tx


@pytest.mark.parametrize("verdict", [0, 0xFFFF])
def test_socket_filter_counts_and_drops(verdict: int, counter: Map) -> None:
    """A filter returning 0 drops every packet; one returning the length keeps them."""
    rx, tx = _udp_pair()
    with rx, tx, load_program(rp.count_key0(counter.fd, verdict), ProgType.SOCKET_FILTER) as prog:
        with links.attach(prog, AttachPoint("socket"), sock=rx) as link:
            for i in range(5):
                tx.sendto(b"packet %d" % i, rx.getsockname())
            got = []
            try:
                while len(got) < 5:
                    got.append(rx.recv(100))
            except TimeoutError:
                pass
            assert counter[0] == 5
            assert len(got) == (0 if verdict == 0 else 5)
        assert link.closed
        tx.sendto(b"after", rx.getsockname())
        assert rx.recv(100) == b"after"  # detached: packets flow again, uncounted
        assert counter[0] == 5


def test_socket_filter_on_loopback_interface(counter: Map) -> None:
    rx, tx = _udp_pair()
    with rx, tx, load_program(rp.count_key0(counter.fd, 0xFFFF), ProgType.SOCKET_FILTER) as prog:
        with links.attach(prog, parse_spec("socket:lo")) as link:
            assert link.socket is not None
            for _ in range(4):
                tx.sendto(b"x", rx.getsockname())
                rx.recv(10)
            deadline = time.monotonic() + 2
            while counter[0] < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert counter[0] >= 4  # a raw socket on lo sees our packets (and maybe others)
        assert link.socket.fileno() == -1  # the link closed the socket it opened


def test_attach_errors_say_what(counter: Map) -> None:
    with load_program(rp.count_key0(counter.fd), ProgType.TRACEPOINT) as prog:
        with pytest.raises(KernelError, match="does not exist"):
            links.attach(prog, parse_spec("tracepoint:syscalls:sys_enter_nope"))
        with pytest.raises(KernelError, match="not a raw tracepoint program"):
            links.attach(prog, parse_spec("raw_tracepoint:sys_enter"))
    with load_program(rp.count_key0(counter.fd), ProgType.RAW_TRACEPOINT) as prog:
        with pytest.raises(KernelError, match="no raw tracepoint named 'no_such_tp'"):
            links.attach(prog, parse_spec("raw_tracepoint:no_such_tp"))
    with pytest.raises(KernelError, match="unknown kind"):
        parse_spec("fentry:do_sys_open")


@pytest.mark.requires("bpf", "kprobes")
def test_kprobe_on_a_syscall_function(counter: Map) -> None:
    p = plan(AttachPoint("kprobe", "SyS_getppid"))
    assert p.point.kind == "kprobe" and p.point.target != "SyS_getppid"
    prog: Program
    with (
        load_program(rp.count_key0(counter.fd), ProgType.KPROBE) as prog,
        links.attach(prog, p.point),
    ):
        _getppid_n(20)
    assert counter[0] >= 20
    # (only ours: other bpfkit processes may have entries meanwhile)
    assert not any(e.startswith(f"bpfkit/k_{os.getpid()}_") for e in tracefs.probe_entries())


@pytest.mark.requires("bpf", "uprobes")
def test_uprobe_through_tracefs_entry(
    target_binary: Path, counter: Map, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the uprobe PMU, a uprobe_events entry is written, used and removed."""
    monkeypatch.setattr(links, "pmu_type", lambda name: None)
    with load_program(rp.count_key0(counter.fd), ProgType.KPROBE) as prog:
        with links.attach(prog, parse_spec(f"uprobe:{target_binary}:bpfkit_target")):
            entries = tracefs.probe_entries()
            assert any(e.startswith(f"bpfkit/u_{os.getpid()}_") for e in entries)
            subprocess.run([str(target_binary), "11"], capture_output=True, check=True)
    assert counter[0] == 11
    assert not any(e.startswith(f"bpfkit/u_{os.getpid()}_") for e in tracefs.probe_entries())


def test_perf_buffer_events_from_a_tracepoint() -> None:
    from bpfkit.events.perf import PerfBufferReader, online_cpus

    ncpu = max(online_cpus()) + 1
    with (
        create_map("perf_event_array", 4, 4, ncpu) as events,
        load_program(rp.perf_pid_tgid(events.fd), ProgType.TRACEPOINT) as prog,
        PerfBufferReader(events.fd, pages=4) as reader,
    ):
        with links.attach(prog, parse_spec("tracepoint:syscalls:sys_enter_getppid")):
            _getppid_n(9)
        got: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(_ours(got)) < 9:
            got += reader.poll(0.2)
        assert len(_ours(got)) == 9
        assert all(cpu in online_cpus() for cpu, _ in got)
        assert reader.lost == 0


def _ours(records: list[tuple[int, bytes]]) -> list[bytes]:
    return [r for _, r in records if int.from_bytes(r[:8], "little") >> 32 == os.getpid()]


def test_wrong_program_type_does_not_disable_links(
    counter: Map, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A socket filter refused by a tracepoint says why, and later attaches still use links."""
    monkeypatch.setattr(links, "_perf_link_supported", None)
    with load_program(rp.count_key0(counter.fd), ProgType.SOCKET_FILTER) as prog:
        with pytest.raises(KernelError, match="does not fit"):
            links.attach(prog, parse_spec("tracepoint:syscalls:sys_enter_getppid"))
    assert links._perf_link_supported is None
    with load_program(rp.count_key0(counter.fd), ProgType.TRACEPOINT) as prog:
        with links.attach(prog, parse_spec("tracepoint:syscalls:sys_enter_getppid")) as link:
            assert link.how == "bpf_link"
