"""bpf() through ctypes: attr layouts, the backend seam, errno causes, Fd, program loading
with the verifier-log protocol, test runs, program info and pins, against the real kernel."""

from __future__ import annotations

import ctypes
import errno
import gc
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpfkit.errors import KernelError, VerifierError
from bpfkit.isa.insn import Insn
from bpfkit.kernel import info as kinfo
from bpfkit.kernel import pins
from bpfkit.kernel.program import Program, load_program, summarize_log
from bpfkit.syscalls import BpfSyscallError, Cmd, Fd, attrs, bpf, use_backend
from helpers import no_leaked_fds

MOV_IMM = 0xB7  # r = imm (ALU64 MOV K)
EXIT = 0x95


def ret(value: int) -> list[Insn]:
    """r0 = value; exit"""
    return [Insn(MOV_IMM, 0, 0, 0, value), Insn(EXIT)]


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    with no_leaked_fds():
        yield


# -- layouts and the seam (no kernel needed) ------------------------------------------------


def test_attr_sizes_match_the_uapi() -> None:
    for name, size in attrs.ATTR_SIZES.items():
        assert ctypes.sizeof(getattr(attrs, name)) == size, name


@pytest.mark.requires("clang19")
def test_attr_offsets_match_the_installed_header(tmp_path: Path) -> None:
    # External oracle: the C compiler's view of /usr/include/linux/bpf.h (Linux 6.1 fields).
    checks = {
        "map_extra": attrs.MapCreateAttr.map_extra.offset,
        "flags": attrs.MapElemAttr.flags.offset,
        "core_relo_rec_size": attrs.ProgLoadAttr.core_relo_rec_size.offset,
        "expected_attach_type": attrs.ProgLoadAttr.expected_attach_type.offset,
        "line_info_cnt": attrs.ProgLoadAttr.line_info_cnt.offset,
        "fd_array": attrs.ProgLoadAttr.fd_array.offset,
        "file_flags": attrs.ObjAttr.file_flags.offset,
        "test.batch_size": attrs.TestRunAttr.batch_size.offset,
        "test.ctx_out": attrs.TestRunAttr.ctx_out.offset,
        "info.info": attrs.InfoAttr.info.offset,
        "btf_log_level": attrs.BtfLoadAttr.btf_log_level.offset,
        "raw_tracepoint.prog_fd": attrs.RawTracepointAttr.prog_fd.offset,
        "link_create.perf_event.bpf_cookie": attrs.LinkCreateAttr.extra.offset,
        "link_create.attach_type": attrs.LinkCreateAttr.attach_type.offset,
    }
    info_checks = {
        "verified_insns": attrs.ProgInfo.verified_insns.offset,
        "netns_dev": attrs.ProgInfo.netns_dev.offset,
        "load_time": attrs.ProgInfo.load_time.offset,
        "name": attrs.ProgInfo.name.offset,
        "btf_id": attrs.ProgInfo.btf_id.offset,
    }
    lines = [f'printf("{f} %zu\\n", offsetof(union bpf_attr, {f}));' for f in checks]
    lines += [f'printf("i.{f} %zu\\n", offsetof(struct bpf_prog_info, {f}));' for f in info_checks]
    src = tmp_path / "off.c"
    src.write_text(
        "#include <stdio.h>\n#include <stddef.h>\n#include <linux/bpf.h>\nint main(void){"
        + "".join(lines)
        + "return 0;}\n"
    )
    exe = tmp_path / "off"
    subprocess.run(["clang-19", "-o", str(exe), str(src)], check=True)
    got = dict(line.split() for line in subprocess.check_output([str(exe)], text=True).splitlines())
    for f, off in checks.items():
        assert int(got[f]) == off, f
    for f, off in info_checks.items():
        assert int(got[f"i.{f}"]) == off, f


def test_fake_backend_sees_commands_and_errno_becomes_a_named_cause() -> None:
    seen: list[tuple[int, int]] = []

    def fake(cmd: int, attr: ctypes.Structure) -> int:
        seen.append((cmd, ctypes.sizeof(attr)))
        raise OSError(errno.E2BIG, "Argument list too long")

    with use_backend(fake):
        with pytest.raises(BpfSyscallError) as ei:
            bpf(Cmd.MAP_UPDATE_ELEM, attrs.MapElemAttr(map_fd=3), "writing map 'x'")
    assert seen == [(Cmd.MAP_UPDATE_ELEM, 32)]
    e = ei.value
    assert e.errno == errno.E2BIG and e.cmd == Cmd.MAP_UPDATE_ELEM
    assert "BPF_MAP_UPDATE_ELEM" in str(e) and "map is full" in str(e)
    assert str(e).startswith("writing map 'x': ")


def test_eintr_is_retried() -> None:
    calls = []

    def flaky(cmd: int, attr: ctypes.Structure) -> int:
        calls.append(cmd)
        if len(calls) < 3:
            raise OSError(errno.EINTR, "Interrupted")
        return 42

    with use_backend(flaky):
        assert bpf(Cmd.PROG_LOAD, attrs.ProgLoadAttr()) == 42
    assert len(calls) == 3


def test_eperm_message_names_the_cause() -> None:
    def denied(cmd: int, attr: ctypes.Structure) -> int:
        raise OSError(errno.EPERM, "Operation not permitted")

    with use_backend(denied), pytest.raises(KernelError) as ei:
        load_program(ret(0), "socket_filter")
    msg = str(ei.value)
    assert "BPF_PROG_LOAD" in msg and "EPERM" in msg
    # As root the cause is not "not root"; as a user it must be.
    if os.geteuid() != 0:
        assert "root" in msg


def test_fd_closes_once_and_warns_when_leaked() -> None:
    r, w = os.pipe()
    os.close(w)
    fd = Fd(r, "pipe")
    with fd:
        assert fd.fd == r
    assert fd.closed
    fd.close()  # idempotent
    with pytest.raises(KernelError):
        _ = fd.fd
    r2, w2 = os.pipe()
    os.close(w2)
    leaked = Fd(r2, "pipe")
    with pytest.warns(ResourceWarning, match="unclosed pipe"):
        del leaked
        gc.collect()
    with pytest.raises(OSError):
        os.fstat(r2)


# -- the real kernel ------------------------------------------------------------------------


@pytest.mark.requires("bpf")
def test_load_and_test_run() -> None:
    with load_program(ret(7), "socket_filter", name="bpfkit_ret7") as prog:
        res = prog.test_run(bytes(64), repeat=3)
        assert res.retval == 7
        assert len(res.data_out) == 64
        i = prog.info()
        assert i.name == "bpfkit_ret7" and i.type_name == "socket_filter"
        assert i.xlated_insns == 2 and i.jited_len > 0 and len(i.tag) == 16
    assert prog.closed


@pytest.mark.requires("bpf")
def test_xdp_test_run_returns_the_packet() -> None:
    XDP_PASS = 2
    pkt = bytes(range(60))
    with load_program(ret(XDP_PASS), "xdp", name="pass") as prog:
        res = prog.test_run(pkt)
    assert res.retval == XDP_PASS and res.data_out == pkt


@pytest.mark.requires("bpf")
def test_verifier_rejection_carries_the_whole_log() -> None:
    with pytest.raises(VerifierError) as ei:
        load_program([Insn(EXIT)], "socket_filter", name="bad")
    e = ei.value
    assert "R0 !read_ok" in str(e)
    assert "'bad'" in str(e)
    assert "0: (95) exit" in e.log and "processed" in e.log
    assert summarize_log(e.log) == "R0 !read_ok"


@pytest.mark.requires("bpf")
def test_log_buffer_grows_until_the_whole_log_fits() -> None:
    # 6000 instructions logged one line each (~100 KiB at log_level 1, more than the first
    # 64 KiB buffer), then a read of an uninitialised register.
    insns = [Insn(MOV_IMM, 1, 0, 0, i) for i in range(6000)]
    insns += [Insn(0xBF, 0, 3, 0, 0), Insn(EXIT)]  # r0 = r3: r3 never written
    with pytest.raises(VerifierError) as ei:
        load_program(insns, "socket_filter", name="biglog")
    e = ei.value
    assert len(e.log) > 64 * 1024
    assert "0: (b7) r1 = 0" in e.log  # the head survived
    assert "5999: (b7) r1 = 5999" in e.log
    assert "R3 !read_ok" in str(e)
    assert "truncated" not in str(e)


@pytest.mark.requires("bpf")
def test_log_requested_on_success() -> None:
    with load_program(ret(0), "socket_filter", log_level=1 | 4) as prog:
        assert "processed 2 insns" in prog.log


@pytest.mark.requires("bpf")
def test_unknown_program_type_names_the_cause() -> None:
    with pytest.raises(KernelError, match="unknown program type 'nope'"):
        load_program(ret(0), "nope")
    with pytest.raises(KernelError) as ei:
        load_program(ret(0), 999)
    assert "BPF_PROG_LOAD" in str(ei.value) and "EINVAL" in str(ei.value)


@pytest.mark.requires("bpf")
def test_test_run_unsupported_type_says_so() -> None:
    with load_program(ret(0), "kprobe") as prog, pytest.raises(KernelError) as ei:
        prog.test_run(b"")
    assert "BPF_PROG_TEST_RUN" in str(ei.value) and "not supported" in str(ei.value)


@pytest.mark.requires("bpf")
def test_program_listing_and_open_by_id() -> None:
    with load_program(ret(1), "socket_filter", name="bpfkit_listme") as prog:
        pid = prog.info().id
        listed = {p.id: p for p in kinfo.list_programs()}
        assert pid in listed and listed[pid].name == "bpfkit_listme"
        with Program.from_id(pid) as again:
            assert again.info().tag == prog.info().tag
    assert pid not in set(kinfo.prog_ids())


@pytest.mark.requires("bpf", "bpftool")
def test_info_agrees_with_bpftool() -> None:
    with load_program(ret(3), "socket_filter", name="bpfkit_oracle") as prog:
        mine = prog.info()
        out = subprocess.check_output(["bpftool", "--json", "prog", "show", "id", str(mine.id)])
    theirs = json.loads(out)
    assert theirs["tag"] == mine.tag
    assert theirs["bytes_xlated"] == mine.xlated_len
    assert theirs["bytes_jited"] == mine.jited_len
    assert theirs["name"] == mine.name and theirs["type"] == mine.type_name


@pytest.mark.requires("bpf")
def test_pin_open_unpin(tmp_path: Path) -> None:
    root = pins.ensure_bpffs()
    path = os.path.join(root, f"bpfkit_test_pin_{os.getpid()}")
    try:
        with load_program(ret(5), "socket_filter", name="pinned") as prog:
            prog.pin(path)
            pid = prog.info().id
        assert pid in set(kinfo.prog_ids())  # the pin keeps it loaded
        with Program.from_pin(path) as again:
            assert again.info().id == pid
            assert again.test_run(bytes(20)).retval == 5
        with pytest.raises(KernelError, match="EEXIST"), load_program(ret(0), "socket_filter") as p:
            p.pin(path)
    finally:
        if os.path.exists(path):
            pins.unpin(path)
    assert pid not in set(kinfo.prog_ids())
    with pytest.raises(KernelError, match="nothing is pinned"):
        pins.get(path)
    # Not bpffs: the cause says so.
    with (
        pytest.raises(KernelError, match="BPF filesystem"),
        load_program(ret(0), "socket_filter") as p,
    ):
        p.pin(str(tmp_path / "x"))


@pytest.mark.requires("bpf", "bpftool")
def test_translated_code_agrees_with_bpftool(tmp_path: Path) -> None:
    with load_program(ret(9), "socket_filter", name="bpfkit_xlated") as prog:
        dump = tmp_path / "xlated.bin"
        subprocess.run(
            ["bpftool", "prog", "dump", "xlated", "id", str(prog.info().id), "file", str(dump)],
            check=True,
            capture_output=True,
        )
        assert b"".join(i.encode() for i in prog.xlated()) == dump.read_bytes()
        assert prog.xlated() == ret(9)
        assert len(prog.jited()) == prog.info().jited_len > 0


@pytest.mark.requires("bpf")
def test_summary_of_an_infinite_loop_is_the_reason_not_the_state_dump() -> None:
    # r0 = 0; 1: if r0 == 1 goto 3; goto 1; 3: exit -- the verifier sees the same state again.
    insns = [Insn(0xB7, 0, 0, 0, 0), Insn(0x15, 0, 0, 1, 1), Insn(0x05, off=-2), Insn(0x95)]
    with pytest.raises(VerifierError) as info:
        load_program(insns, "socket_filter")
    assert "old state:" in info.value.log
    assert str(info.value).endswith("infinite loop detected at insn 1")
