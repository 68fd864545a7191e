"""bpfkit's pytest plugin: every fixture and marker, the leak check and the diffs.

Fixtures are used here directly (the plugin is loaded by its pytest11 entry point); markers,
modes, the leak check and failure output are checked by running pytest on small test files
(pytester).
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest

from bpfkit.testing import probes as plugin_probes
from bpfkit.testing.packets import ether, ipv4, udp
from bpfkit.testing.runner import BpfRunner, Disagreement, RunResult, diff_results
from helpers import ROOT, TESTS

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.long  # many pytest runs in subprocesses

DATA = TESTS / "data" / "testing"
XDP_PASS = 2


@pytest.mark.requires("clang19")
def test_bpf_build_reads_objects_and_builds_sources_once(bpf_build, tmp_path: Path) -> None:
    a = bpf_build(DATA / "task.c")
    assert a is bpf_build(DATA / "task.c")  # built once per session
    assert [p.name for p in a.programs] == ["task"]
    hello = bpf_build(ROOT / "examples" / "hello" / "hello.o")
    assert hello.programs[0].name == "kprobe__sys_clone"
    s = tmp_path / "ret.s"
    s.write_text('\t.section\txdp,"ax",@progbits\n\t.globl\tret\nret:\n\tr0 = 2\n\texit\n')
    assert bpf_build(s).programs[0].name == "ret"


@pytest.mark.requires("clang19")
def test_fake_clock_pid_and_comm_in_the_vm(bpf, bpf_env) -> None:
    bpf_env.ktime_ns = 5_000
    bpf_env.pid, bpf_env.tgid, bpf_env.comm = 11, 22, b"fakecomm"
    r = bpf(DATA / "task.c", mode="vm").run(packet=bytes(64))
    assert r.mode == "vm" and r.retval == XDP_PASS
    # The value is decoded with the object's BTF: a dict of the struct's members.
    assert r.maps["seen"] == {0: {"now": 5_000, "pid_tgid": (22 << 32) | 11, "comm": "fakecomm"}}


@pytest.mark.requires("clang19")
def test_maps_prefilled_from_python_values_typed_by_btf(bpf, bpf_maps) -> None:
    bpf_maps["table"] = {_dns_key(): {"n": 41, "name": "dns"}}  # a bytes key, a dict value
    runner = bpf(DATA / "typed.c")
    r = runner.run(packet=ether() / ipv4() / udp())
    assert r.retval == 1042
    assert r.maps["table"] == {(53, 17, 0): {"n": 42, "name": "dns"}}
    # A dict key, typed by BTF; maps given to run() replace bpf_maps' entries:
    r = runner.run(packet=ether() / ipv4() / udp(), maps={"table": {_key(53, 17): {"n": 1}}})
    assert r.retval == 2


def _dns_key() -> bytes:
    return struct.pack("<HBB", 53, 17, 0)


def _key(port: int, proto: int) -> tuple[int, int]:
    return (port, proto)  # struct key {port, proto}: its members in order


@pytest.mark.requires("clang19")
def test_bad_map_values_are_one_clear_error(bpf) -> None:
    from bpfkit.errors import BpfkitError

    runner = bpf(DATA / "typed.c", mode="vm")
    with pytest.raises(BpfkitError, match=r"no member 'count'"):
        runner.run(packet=bytes(64), maps={"table": {_dns_key(): {"count": 1}}})
    with pytest.raises(BpfkitError, match=r"out of range"):
        runner.run(packet=bytes(64), maps={"table": {_dns_key(): {"n": 1 << 32}}})
    with pytest.raises(BpfkitError, match=r"no map named 'tabel'"):
        runner.run(packet=bytes(64), maps={"tabel": {}})


@pytest.mark.requires("clang19")
def test_ring_buffer_records_and_printed_lines(bpf) -> None:
    r = bpf(DATA / "ring.c").run(packet=b"\xaa\xbb\xcc\xdd" + bytes(60))
    assert r.records["events"] == [b"\xaa\xbb\xcc\xdd" + struct.pack("<I", 64)]
    if r.mode == "vm":
        assert r.lines == ["len 64"]


@pytest.mark.requires("clang19", "bpf")
def test_kernel_mode_runs_in_the_kernel(bpf) -> None:
    r = bpf(DATA / "ring.c", mode="kernel").run(packet=b"\x01\x02\x03\x04" + bytes(60))
    assert r.mode == "kernel" and r.retval == XDP_PASS
    assert r.records["events"] == [b"\x01\x02\x03\x04" + struct.pack("<I", 64)]


@pytest.mark.requires("clang19", "bpf")
def test_both_mode_fails_with_a_diff_where_vm_and_kernel_disagree(bpf) -> None:
    # The VM's clock and task are fake; the kernel's are real: the map differs.
    with pytest.raises(Disagreement) as e:
        bpf(DATA / "task.c", mode="both").run(packet=bytes(64))
    text = str(e.value)
    assert "vm and kernel disagree" in text and "maps differs:" in text
    assert "--- vm" in text and "+++ kernel" in text
    assert "'comm': 'bpfkit'" in text  # the VM's fake comm, beside the kernel's real one


def test_diff_results_is_readable_and_empty_when_equal() -> None:
    a = RunResult("vm", 2, b"\x00" * 20, {"counts": {17: 1}}, ["hi"])
    b = RunResult("kernel", 1, b"\x00" * 19 + b"\x01", {"counts": {17: 2}})
    text = diff_results(a, b, what="x.o: prog")
    assert text.startswith("x.o: prog: vm and kernel disagree")
    assert "return value differs:\n--- vm\n+++ kernel" in text and "-2\n+1" in text
    assert "packet differs:" in text and "+0010: 00 00 00 01" in text
    assert "maps differs:" in text and "-counts[17] = 1\n+counts[17] = 2" in text
    assert "printed lines" not in text  # the kernel's are not read
    assert diff_results(a, a) == ""


@pytest.mark.requires("scapy")
def test_packets_match_scapy_byte_for_byte() -> None:
    from scapy.layers.inet import IP, TCP, UDP, Ether
    from scapy.layers.inet6 import IPv6

    from bpfkit.testing.packets import ipv6, packet_bytes, tcp

    macs = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
    cases = [
        (
            ether() / ipv4(src="10.1.2.3", dst="10.9.8.7", ttl=9) / udp(sport=1, dport=53) / b"abc",
            Ether(**macs)
            / IP(src="10.1.2.3", dst="10.9.8.7", ttl=9, id=1, flags="DF")
            / UDP(sport=1, dport=53)
            / b"abc",
        ),
        (
            ether()
            / ipv6(src="fd00::5", dst="fd00::6")
            / tcp(sport=7, dport=80, flags="PA", seq=9),
            Ether(**macs)
            / IPv6(src="fd00::5", dst="fd00::6")
            / TCP(sport=7, dport=80, flags="PA", seq=9),
        ),
    ]
    for ours, theirs in cases:
        assert bytes(ours) == bytes(theirs)
        assert packet_bytes(theirs) == bytes(theirs)  # scapy packets are accepted as they are


def test_packet_fields_are_range_checked() -> None:
    from bpfkit.errors import BpfkitError

    with pytest.raises(BpfkitError, match=r"dport=70000 does not fit in 16 bits"):
        bytes(ether() / ipv4() / udp(dport=70000))
    with pytest.raises(BpfkitError, match=r"not a MAC address"):
        bytes(ether(src="nope") / ipv4())
    with pytest.raises(BpfkitError, match=r"unknown flag 'Z'"):
        from bpfkit.testing.packets import tcp

        bytes(ether() / ipv4() / tcp(flags="SZ"))


def test_kernel_version_probe() -> None:
    assert plugin_probes.kernel_too_old("5.8", "6.1.0-18-amd64") is None
    assert plugin_probes.kernel_too_old((7, 0), "6.1.0") == "kernel 6.1.0 is older than 7.0"
    with pytest.raises(ValueError, match="write it like '5.8'"):
        plugin_probes.kernel_too_old("five")


# --- the plugin seen from a test suite (pytester) ---------------------------------------------


def _suite(pytester: pytest.Pytester, body: str, *sources: Path) -> None:
    for s in sources:
        shutil.copy(s, pytester.path / s.name)
    pytester.makepyfile(test_suite=body)


def test_markers_skip_with_the_reason_and_fail_under_bpfkit_require(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _suite(
        pytester,
        """
        import pytest

        @pytest.mark.requires(kernel="99.0")
        def test_future():
            pass

        @pytest.mark.requires("root", kernel="3.0")
        def test_root():
            pass

        @pytest.mark.requires("no-such-thing")
        def test_someone_elses():
            pass
        """,
    )
    monkeypatch.delenv("BPFKIT_REQUIRE", raising=False)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    r.stdout.fnmatch_lines(["*SKIPPED*kernel unavailable: kernel * is older than 99.0*"])
    root_ok = os.geteuid() == 0
    r.assert_outcomes(passed=2 if root_ok else 1, skipped=1 if root_ok else 2)
    if not root_ok:
        r.stdout.fnmatch_lines(["*SKIPPED*root unavailable: not root*"])
    monkeypatch.setenv("BPFKIT_REQUIRE", "kernel")
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    r.stdout.fnmatch_lines(["*kernel is required here (BPFKIT_REQUIRE) but missing: kernel *"])
    r.assert_outcomes(passed=2 if root_ok else 1, errors=1, skipped=0 if root_ok else 1)


def test_a_wrong_kernel_version_is_a_usage_error(pytester: pytest.Pytester) -> None:
    _suite(
        pytester, "import pytest\n@pytest.mark.requires(kernel='new')\ndef test_x():\n    pass\n"
    )
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert "kernel version 'new': write it like '5.8'" in r.stdout.str() + r.stderr.str()


def test_the_leak_check_catches_a_planted_leak(pytester: pytest.Pytester) -> None:
    _suite(
        pytester,
        """
        import os
        import pytest

        KEPT = []

        @pytest.mark.bpf_leak_check
        def test_leaks_an_fd():
            KEPT.append(os.open("/dev/null", os.O_RDONLY))

        @pytest.mark.bpf_leak_check
        def test_cleans_up():
            os.close(os.open("/dev/null", os.O_RDONLY))

        def test_unchecked_leak():
            KEPT.append(os.open("/dev/null", os.O_RDONLY))
        """,
    )
    # Pins, trace instances and probe events are machine-wide: another process's may show
    # up in a checked test too, so what is asserted is where /dev/null descriptors show up.
    # -rN: no short summary, whose lines carry the message only when they fit the width.
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rN")
    out = r.stdout.str()
    assert "ERROR at teardown of test_leaks_an_fd" in out
    r.stdout.fnmatch_lines(
        ["*test left kernel objects behind:", "*file descriptor: fd * -> /dev/null"]
    )
    assert out.count("-> /dev/null") == 1  # not the clean test, not the unchecked one
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rN", "--bpf-leak-check")
    out = r.stdout.str()
    assert "ERROR at teardown of test_unchecked_leak" in out and out.count("-> /dev/null") == 2


@pytest.mark.requires("clang19", "bpf")
def test_the_leak_check_names_a_leaked_program(pytester: pytest.Pytester) -> None:
    _suite(
        pytester,
        """
        import pytest
        from bpfkit.kernel.collection import load_collection

        KEPT = []

        def test_keeps_a_program(bpf_build, bpf_leak_check):
            KEPT.append(load_collection(bpf_build("ring.c")))
        """,
        DATA / "ring.c",
    )
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    r.assert_outcomes(passed=1, errors=1)
    r.stdout.fnmatch_lines(
        ["*BTF object: fd *", "*BPF map: fd *", "*BPF program: fd * -> anon_inode:bpf-prog*"]
    )


def _wrong_xdp_suite(pytester: pytest.Pytester) -> None:
    example = ROOT / "examples" / "xdp_count"
    shutil.copy(example / "xdp_count.c", pytester.path / "xdp_count.c")
    text = (example / "test_xdp_count.py").read_text()
    wrong = text.replace('assert r.maps["counts"][17] == 1', 'assert r.maps["counts"][17] == 2')
    assert wrong != text
    pytester.makepyfile(test_xdp_count=wrong)


@pytest.mark.requires("clang19")
@pytest.mark.parametrize("mode", ["vm", "both"])
def test_a_wrong_expectation_in_an_example_shows_a_clear_diff(
    pytester: pytest.Pytester, mode: str
) -> None:
    if mode == "both" and plugin_probes.missing("bpf"):
        mode = "vm"  # without bpf() the example suite runs in the VM only
    _wrong_xdp_suite(pytester)
    r = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--bpf-mode={mode}", "-k", "udp_over_ipv4"
    )
    r.assert_outcomes(failed=1)
    lines = r.stdout.lines
    at = lines.index('>       assert r.maps["counts"][17] == 2')
    assert lines[at + 1] == "E       assert 1 == 2"  # the value the program left, and the wrong one


@pytest.mark.requires("clang19", "bpf")
def test_both_mode_disagreement_fails_the_test_with_the_diff(pytester: pytest.Pytester) -> None:
    _suite(
        pytester,
        """
        def test_task(bpf):
            bpf("task.c").run(packet=bytes(64))
        """,
        DATA / "task.c",
    )
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--bpf-mode=both")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(
        [
            "*Disagreement: *task.o: task: vm and kernel disagree",
            "*maps differs:",
            "*--- vm",
            "*+++ kernel",
            "*-seen[[]0] = {'now': 1000000000, 'pid_tgid': 18219251273874, 'comm': 'bpfkit'}",
            "*+seen[[]0] = {'now': *",
        ]
    )
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--bpf-mode=vm")
    r.assert_outcomes(passed=1)


def test_mode_option_env_and_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_mode="def test_mode(bpf_mode):\n    print('MODE', bpf_mode)\n")
    monkeypatch.delenv("BPFKIT_MODE", raising=False)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--bpf-mode=kernel")
    r.stdout.fnmatch_lines(["*MODE kernel*"])
    monkeypatch.setenv("BPFKIT_MODE", "vm")
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    r.stdout.fnmatch_lines(["*MODE vm*"])
    monkeypatch.delenv("BPFKIT_MODE")
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    auto = "both" if plugin_probes.missing("bpf") is None else "vm"
    r.stdout.fnmatch_lines([f"*MODE {auto}*"])


def test_runner_refuses_unknown_modes_and_programs() -> None:
    from bpfkit.errors import BpfkitError
    from bpfkit.obj.reader import read_object

    obj = read_object(ROOT / "examples" / "hello" / "hello.o")
    with pytest.raises(BpfkitError, match="mode 'fast'"):
        BpfRunner(obj, mode="fast")
    with pytest.raises(BpfkitError, match="no program named 'x'"):
        BpfRunner(obj).run("x")
    with pytest.raises(BpfkitError, match="which BPF_PROG_TEST_RUN cannot run: use the vm mode"):
        BpfRunner(obj, mode="kernel").run()
    assert BpfRunner(obj).run().lines == ["hello from rust"]
