"""execsnoop.c (a tracepoint program sending one ring-buffer record per execve), tested with
bpfkit's pytest plugin: the VM's fake task (pid, uid, comm) and user memory (the file name
execve was given) make the record; as root the kernel's verifier must accept it too."""

import struct

import pytest

HERE = __file__.rsplit("/", 1)[0]
FILENAME_AT = 0x7FFF_0000_1000  # where the "user" string lives in the VM's fake memory

pytestmark = pytest.mark.requires("clang")


def ctx(filename_ptr: int) -> bytes:
    """struct sys_enter_execve: common fields, syscall_nr, pad, filename, argv, envp."""
    return struct.pack("<QiIQQQ", 0, 59, 0, filename_ptr, 0, 0)


def event(record: bytes) -> tuple[int, int, bytes, bytes]:
    pid, uid, comm, filename = struct.unpack("<II16s64s", record)
    return pid, uid, comm.rstrip(b"\0"), filename.split(b"\0")[0]


@pytest.fixture
def execsnoop(bpf, bpf_env):
    bpf_env.tgid, bpf_env.uid, bpf_env.comm = 4321, 1000, b"bash"
    bpf_env.user_memory.append((FILENAME_AT, b"/usr/bin/ls\0"))
    return bpf(f"{HERE}/execsnoop.c")


def test_one_record_per_exec(execsnoop):
    r = execsnoop.run(ctx=ctx(FILENAME_AT))
    assert r.retval == 0
    assert [event(rec) for rec in r.records["events"]] == [(4321, 1000, b"bash", b"/usr/bin/ls")]


def test_a_bad_filename_pointer_still_sends_the_record(execsnoop):
    r = execsnoop.run(ctx=ctx(0xDEAD0000))
    [(pid, uid, comm, filename)] = [event(rec) for rec in r.records["events"]]
    assert (pid, comm, filename) == (4321, b"bash", b"")  # the read failed: empty name
