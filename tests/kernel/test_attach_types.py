"""``bpfkit run`` attaches every program type: each program of attach_progs/attach_types.c
is attached by a Session (or the CLI), its attach point is made to fire, and its own slot
of the ``hits`` array map must have counted; types this kernel refuses must say so.

XDP and tcx run on a veth pair whose peer is in a network namespace the test creates;
cgroup programs on a child cgroup of the cgroup v2 mount, with a child process moved into
it.  Everything is removed again, also when a test fails."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import probes
from bpfkit.errors import KernelError
from bpfkit.kernel.attach import Where
from bpfkit.kernel.session import Session
from helpers import ROOT, clang_bpf

SRC = Path(__file__).parent / "attach_progs" / "attach_types.c"
HIT = {
    "on_xdp": 0,
    "on_tcx_in": 1,
    "on_tcx_out": 2,
    "on_cg_in": 3,
    "on_cg_out": 4,
    "on_sock_create": 5,
    "on_connect4": 6,
    "on_sysctl": 7,
    "on_getsockopt": 8,
    "on_cpu_clock": 9,
    "on_fork": 10,
    "on_raw_sys_enter": 11,
    "on_fentry": 12,
    "on_fexit": 13,
    "on_lsm": 14,
    "on_dev": 15,
}
HOST_IP, PEER_IP = "10.199.7.1", "10.199.7.2"


@pytest.fixture(scope="module")
@probes.needs("clang19")
def obj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clang_bpf(SRC, tmp_path_factory.mktemp("attach") / "attach_types.o")


def hits(session: Session, program: str) -> int:
    """The count in ``program``'s slot of the ``hits`` map."""
    raw = dict(session.maps["hits"].items())
    value = raw[struct.pack("<I", HIT[program])]
    return int(struct.unpack("<Q", value)[0])


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Veth(str):
    """The host end's name; ``ns`` is the peer's network namespace."""

    ns: str


@pytest.fixture
@probes.needs("netns")
def veth() -> Iterator[Veth]:
    """A veth pair: the host end (returned, 10.199.7.1/24) and its peer (10.199.7.2/24)
    in a network namespace of its own; both removed at the end."""
    tag = uuid.uuid4().hex[:6]
    ns, host, peer = f"bpfkit-{tag}", f"bk{tag}a", f"bk{tag}b"
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns)
        _ip("addr", "add", f"{HOST_IP}/24", "dev", host)
        _ip("link", "set", host, "up")
        _ip("-n", ns, "addr", "add", f"{PEER_IP}/24", "dev", peer)
        _ip("-n", ns, "link", "set", peer, "up")
        # No IPv6 on the pair: no router or neighbour solicitations counted by surprise.
        for args in ((), ("ip", "netns", "exec", ns)):
            for dev in (host, peer):
                subprocess.run(
                    [*args, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"],
                    capture_output=True,
                )
        end = Veth(host)
        end.ns = ns
        yield end
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    assert not os.path.exists(f"/sys/class/net/{host}")
    assert not os.path.exists(f"/run/netns/{ns}")


PEER_SENDS = (
    "import socket, sys, time\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "for _ in range(int(sys.argv[1])):\n"
    "    s.sendto(b'bpfkit', (sys.argv[2], 9)); time.sleep(0.02)\n"
)


def _traffic(veth: Veth, count: int = 3) -> None:
    """UDP datagrams both ways: from the host to the peer (out through the host end:
    egress) and from the peer, in its namespace, to the host (in through it: ingress).
    The peer first: its ARP request teaches the host its address, so the host's own
    datagrams do not wait in the neighbour queue."""
    subprocess.run(
        ["ip", "netns", "exec", veth.ns, sys.executable, "-c", PEER_SENDS, str(count), HOST_IP],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(count):
            s.sendto(b"bpfkit", (PEER_IP, 9))
            time.sleep(0.02)
    time.sleep(0.1)


@pytest.mark.requires("bpf", "clang19", "netns")
@pytest.mark.parametrize("mode", ["generic", "native"])
def test_xdp_on_a_veth_counts_packets(obj: Path, veth: Veth, mode: str) -> None:
    with Session(obj, program="on_xdp", trace=False, where=Where(veth, mode)) as s:
        assert [str(link.point) for link in s.links] == [f"xdp:{veth}:{mode}"]
        before = hits(s, "on_xdp")
        _traffic(veth)
        assert hits(s, "on_xdp") >= before + 3  # the peer's 3 datagrams at least
        link = s.links[0]
    assert link.closed
    # Detached: the interface has no XDP program left.
    out = subprocess.run(["ip", "link", "show", veth], capture_output=True, text=True).stdout
    assert "xdp" not in out


@pytest.mark.requires("bpf", "clang19", "netns")
@pytest.mark.parametrize(
    ("program", "direction"), [("on_tcx_in", "ingress"), ("on_tcx_out", "egress")]
)
def test_tcx_on_a_veth_counts_packets(obj: Path, veth: Veth, program: str, direction: str) -> None:
    with Session(obj, program=program, trace=False, where=Where(veth)) as s:
        assert str(s.links[0].point) == f"tcx:{veth}:{direction}"
        before = hits(s, program)
        _traffic(veth)
        # Ingress sees the peer's 3 datagrams; egress at least the host's first packet
        # (the kernel may still hold datagrams back for neighbour resolution).
        assert hits(s, program) >= before + (3 if direction == "ingress" else 1)


@pytest.mark.requires("bpf", "clang19", "netns")
def test_run_cli_attaches_xdp_with_ifname(obj: Path, veth: Veth) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bpfkit",
            "run",
            str(obj),
            "--program",
            "on_xdp",
            "--dev",
            veth,
            "--xdp-mode",
            "generic",
            "--duration",
            "1",
            "--maps",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    with proc:  # closes the pipes whatever happens
        try:
            assert proc.stderr is not None
            first = proc.stderr.readline()
            _traffic(veth)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, first + err
    assert f"attached on_xdp -> xdp:{veth}:generic" in first
    assert "hits" in out


@pytest.fixture
@probes.needs("cgroup2")
def cgroup() -> Iterator[Path]:
    """A fresh child cgroup of the cgroup v2 mount, removed at the end."""
    root = probes.cgroup2_root()
    assert root is not None
    path = Path(root) / f"bpfkit-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        for _ in range(50):  # the last process may take a moment to leave
            try:
                path.rmdir()
                break
            except OSError:
                time.sleep(0.05)
    assert not path.exists()


CHILD = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
s.connect(s.getsockname())
s.send(b"x")
s.recv(8)
open("/proc/sys/kernel/ostype").read()
open("/dev/null").close()
"""


def _in_cgroup(path: Path) -> None:
    """Run CHILD in a process moved into the cgroup ``path`` before it starts."""

    def enter() -> None:
        with open(path / "cgroup.procs", "w") as f:
            f.write("0")

    r = subprocess.run([sys.executable, "-c", CHILD], preexec_fn=enter, capture_output=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.requires("bpf", "clang19", "cgroup2")
@pytest.mark.parametrize(
    "program",
    [
        "on_cg_in",
        "on_cg_out",
        "on_sock_create",
        "on_connect4",
        "on_sysctl",
        "on_getsockopt",
        "on_dev",
    ],
)
def test_cgroup_programs_run_for_a_process_in_the_cgroup(
    obj: Path, cgroup: Path, program: str
) -> None:
    with Session(obj, program=program, trace=False, where=Where(cgroup=str(cgroup))) as s:
        assert str(s.links[0].point) == f"cgroup:{cgroup}"
        before = hits(s, program)
        assert before == 0
        _in_cgroup(cgroup)
        assert hits(s, program) > 0


@pytest.mark.requires("bpf", "clang19", "cgroup2")
def test_cgroup_outside_v2_says_where_v2_is(obj: Path, tmp_path: Path) -> None:
    with pytest.raises(KernelError, match="not a cgroup v2 directory") as e:
        Session(obj, program="on_sock_create", trace=False, where=Where(cgroup=str(tmp_path)))
    root = probes.cgroup2_root()
    assert f"mounted at {root}" in str(e.value)


@pytest.mark.requires("bpf", "clang19")
def test_sections_that_need_a_place_say_which_option(obj: Path) -> None:
    with pytest.raises(KernelError, match="--ifname IFNAME"):
        Session(obj, program="on_xdp", trace=False)
    with pytest.raises(KernelError, match="--cgroup PATH"):
        Session(obj, program="on_connect4", trace=False)


@pytest.mark.requires("bpf", "clang19")
def test_perf_event_samples_the_cpu_clock(obj: Path) -> None:
    with Session(obj, program="on_cpu_clock", trace=False, where=Where(freq=1000)) as s:
        assert str(s.links[0].point) == "perf_event:1000"
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            pass
        assert hits(s, "on_cpu_clock") > 0


@pytest.mark.requires("bpf", "clang19", "kernel-btf")
def test_tp_btf_runs_on_fork(obj: Path) -> None:
    with Session(obj, program="on_fork", trace=False) as s:
        assert str(s.links[0].point) == "tp_btf:sched_process_fork"
        subprocess.run(["true"], check=True)
        assert hits(s, "on_fork") > 0


@pytest.mark.requires("bpf", "clang19")
def test_raw_tp_runs_on_syscalls(obj: Path) -> None:
    with Session(obj, program="on_raw_sys_enter", trace=False) as s:
        os.getppid()
        assert hits(s, "on_raw_sys_enter") > 0


@pytest.mark.requires("bpf", "clang19", "kernel-btf")
@pytest.mark.parametrize(
    ("program", "kind"), [("on_fentry", "fentry"), ("on_fexit", "fexit"), ("on_lsm", "lsm")]
)
def test_trampoline_programs_attach_or_say_the_kernel_refuses(
    obj: Path, program: str, kind: str
) -> None:
    try:
        s = Session(obj, program=program, trace=False)
    except KernelError as e:
        # This kernel (6.18, locked down) refuses them: one message, what/why/what to do.
        msg = str(e)
        assert e.errno == 1
        assert f"this kernel refuses {kind} programs" in msg
        assert "trampolines" in msg and "instead" in msg
        return
    with s:  # a kernel that allows them: the program must run
        time.sleep(0.01)  # clock_nanosleep -> do_nanosleep (fentry, fexit)
        subprocess.run(["true"], check=True)  # opens files (lsm/file_open)
        assert hits(s, program) > 0


@pytest.fixture(scope="module")
@probes.needs("clang19")
def untyped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = SRC.parent / "untyped.c"
    return clang_bpf(src, tmp_path_factory.mktemp("untyped") / "untyped.o")


def _bpfkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bpfkit", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


@pytest.mark.requires("bpf", "clang19")
def test_type_option_in_test_run_and_vm(untyped: Path, tmp_path: Path) -> None:
    packet = tmp_path / "packet"
    packet.write_bytes(bytes(64))
    refused = _bpfkit("test-run", str(untyped), "--packet", str(packet))
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "unknown program section name" in refused.stderr
    assert "--type TYPE" in refused.stderr
    kernel = _bpfkit("test-run", str(untyped), "--packet", str(packet), "--type", "xdp")
    assert kernel.returncode == 0, kernel.stderr
    vm = _bpfkit("vm", str(untyped), "--packet", str(packet), "--type", "xdp")
    assert vm.returncode == 0, vm.stderr
    # The kernel (BPF_PROG_TEST_RUN) and the VM agree: XDP_PASS.
    assert "retval: 2 " in kernel.stdout and "retval: 2 " in vm.stdout
    bad = _bpfkit("run", str(untyped), "--type", "nonsense")
    assert bad.returncode == 2 and "unknown program type 'nonsense'" in bad.stderr


@pytest.mark.requires("bpf", "clang19")
def test_run_type_without_interface_says_which_option(untyped: Path) -> None:
    r = _bpfkit("run", str(untyped), "--type", "xdp", "--count", "0")
    assert r.returncode == 1
    assert "--ifname IFNAME" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.requires("bpf", "clang19", "netns")
def test_run_type_xdp_attaches_an_untyped_section(untyped: Path, veth: Veth) -> None:
    from bpfkit.cli.options import typed_object
    from bpfkit.uapi import ProgType

    spec = typed_object(str(untyped), int(ProgType.XDP))
    with Session(spec, trace=False, where=Where(veth, "generic")) as s:
        assert str(s.links[0].point) == f"xdp:{veth}:generic"
        _traffic(veth)
        (value,) = dict(s.maps["seen"].items()).values()
        assert struct.unpack("<Q", value)[0] >= 3


@pytest.mark.requires("bpf", "netns")
def test_lang_xdpcount_attaches_through_the_same_links(veth: Veth) -> None:
    """examples/python/xdpcount.py (bpfkit.lang) attaches XDP by kernel.links too: the
    peer's UDP datagrams come in as IP protocol 17."""
    proc = subprocess.Popen(
        [sys.executable, "examples/python/xdpcount.py", "--ifname", veth, "--duration", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    with proc:  # closes the pipes whatever happens
        try:
            assert proc.stdout is not None
            assert "Counting packets" in proc.stdout.readline()
            _traffic(veth, 5)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    counts = dict(line.split(": ") for line in out.splitlines() if line.startswith("proto "))
    assert int(counts["proto 17"].split()[0]) >= 5, out


@pytest.mark.requires("bpf", "clang19", "netns")
def test_ctrl_c_detaches_xdp(obj: Path, veth: Veth) -> None:
    import signal

    def xdp_on_link() -> bool:
        out = subprocess.run(["ip", "link", "show", veth], capture_output=True, text=True)
        return "xdpgeneric" in out.stdout

    proc = subprocess.Popen(
        [sys.executable, "-m", "bpfkit", "run", str(obj), "--program", "on_xdp"]
        + ["--dev", veth, "--xdp-mode", "generic"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        # A test run started in the background ignores SIGINT, and children inherit that:
        # give bpfkit the SIGINT of a terminal's Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    with proc:  # closes the pipes whatever happens
        try:
            assert proc.stderr is not None
            line = ""
            while "attached" not in line:
                line = proc.stderr.readline()
                assert line, proc.stderr.read()
            assert xdp_on_link()
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0
    assert not xdp_on_link()
