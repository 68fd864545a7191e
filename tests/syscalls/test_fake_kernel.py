"""Attr building and error mapping of the kernel layer, without root: a fake kernel behind
the backend seam (``bpfkit.syscalls.use_backend``) records what bpfkit asks for.

The same calls are checked against the real kernel in tests/kernel/ (as root); here they
run everywhere, and show that values out of a field's range never reach ``bpf()``.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterator

import pytest

from bpfkit.errors import KernelError, VerifierError
from bpfkit.isa.insn import Insn
from bpfkit.kernel.maps import create_map
from bpfkit.kernel.program import load_program
from bpfkit.syscalls import Cmd, attrs, use_backend
from bpfkit.uapi import MapType, ProgType

RET7 = [Insn(0xB7, 0, 0, 0, 7), Insn(0x95)]


class FakeKernel:
    """Answers MAP_CREATE and PROG_LOAD with a real (closable) descriptor of /dev/null and
    PROG_TEST_RUN with ``retval``; fails any command with ``fail`` (an errno) if set."""

    def __init__(self, fail: int = 0, retval: int = 0) -> None:
        self.fail, self.retval = fail, retval
        self.calls: list[tuple[int, dict[str, object]]] = []
        self.fds: list[int] = []

    def __call__(self, cmd: int, attr: ctypes.Structure) -> int:
        fields = {f[0]: getattr(attr, f[0]) for f in attr._fields_}
        self.calls.append((cmd, fields))
        if self.fail:
            raise OSError(self.fail, os.strerror(self.fail))
        if cmd in (Cmd.MAP_CREATE, Cmd.PROG_LOAD):
            fd = os.open("/dev/null", os.O_RDONLY)
            self.fds.append(fd)
            return fd
        if cmd == Cmd.PROG_TEST_RUN:
            assert isinstance(attr, attrs.TestRunAttr)
            attr.retval, attr.duration = self.retval, 42
            ctypes.memmove(attr.data_out, attr.data_in, attr.data_size_in)
            return 0
        raise OSError(errno.ENOSYS, f"the fake kernel does not know command {cmd}")

    def closed(self) -> bool:
        """Whether every descriptor it handed out is closed again."""
        for fd in self.fds:
            try:
                os.fstat(fd)
            except OSError:
                continue
            return False
        return True


@pytest.fixture
def kernel() -> Iterator[FakeKernel]:
    fake = FakeKernel()
    with use_backend(fake):
        yield fake


def test_map_create_attr_from_the_arguments(kernel: FakeKernel) -> None:
    with create_map("hash", 4, 8, 16, name="bpfkit_h", flags=attrs.F_NO_PREALLOC, numa_node=1) as m:
        assert m.fd == kernel.fds[0]
    [(cmd, a)] = kernel.calls
    assert cmd == Cmd.MAP_CREATE
    assert (a["map_type"], a["key_size"], a["value_size"], a["max_entries"]) == (
        MapType.HASH,
        4,
        8,
        16,
    )
    assert a["map_flags"] == attrs.F_NO_PREALLOC | 1 << 2  # BPF_F_NUMA_NODE added
    assert a["numa_node"] == 1 and a["map_name"] == b"bpfkit_h"
    assert a["btf_fd"] == 0  # no BTF ids given: no BTF fd passed
    assert kernel.closed()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((-1, 8, 16), "key_size = -1"),
        ((4, 2**32, 16), "value_size = 4294967296"),
        ((4, 8, -5), "max_entries = -5"),
    ],
)
def test_out_of_range_map_sizes_never_reach_the_kernel(
    kernel: FakeKernel, args: tuple[int, int, int], field: str
) -> None:
    with pytest.raises(KernelError, match=f"MapCreateAttr.{field}: out of range for its u32"):
        create_map("hash", *args)
    assert kernel.calls == []


def test_unknown_map_type_never_reaches_the_kernel(kernel: FakeKernel) -> None:
    with pytest.raises(KernelError, match="unknown map type 'nope'"):
        create_map("nope", 4, 4, 1)
    assert kernel.calls == []


def test_map_create_errno_names_the_command_the_map_and_the_cause() -> None:
    with use_backend(FakeKernel(fail=errno.EINVAL)), pytest.raises(KernelError) as ei:
        create_map("array", 8, 4, 1, name="counts")
    msg = str(ei.value)
    assert "BPF_MAP_CREATE" in msg and "EINVAL" in msg
    assert "creating map 'counts' (array, key 8, value 4, 1 entries)" in msg
    assert ei.value.errno == errno.EINVAL


def test_prog_load_attr_from_the_arguments(kernel: FakeKernel) -> None:
    with load_program(RET7, "xdp", name="bpfkit_p", license="Dual BSD/GPL") as prog:
        assert prog.fd == kernel.fds[0]
    [(cmd, a)] = kernel.calls
    assert cmd == Cmd.PROG_LOAD
    assert a["prog_type"] == ProgType.XDP and a["insn_cnt"] == 2
    assert a["prog_name"] == b"bpfkit_p"
    assert a["log_level"] == 0 and a["log_size"] == 0  # first load: no log
    assert kernel.closed()


def test_prog_load_errno_without_a_log_names_the_cause() -> None:
    fake = FakeKernel(fail=errno.EINVAL)
    with use_backend(fake), pytest.raises(KernelError) as ei:
        load_program(RET7, 999)
    assert "BPF_PROG_LOAD" in str(ei.value) and "EINVAL" in str(ei.value)
    assert not isinstance(ei.value, VerifierError)
    assert [a["prog_type"] for _, a in fake.calls] == [999, 999]  # retried once with a log
    # The retry asks for the detailed log (bpfkit.verify explains it).
    assert [a["log_level"] for _, a in fake.calls] == [0, 2]


def test_out_of_range_program_type_never_reaches_the_kernel(kernel: FakeKernel) -> None:
    with pytest.raises(KernelError, match=r"ProgLoadAttr\.prog_type = -2: out of range"):
        load_program(RET7, -2)
    assert kernel.calls == []


def test_test_run_attr_and_result() -> None:
    fake = FakeKernel(retval=7)
    with use_backend(fake), load_program(RET7, "xdp") as prog:
        res = prog.test_run(b"\x01\x02\x03", repeat=5, cpu=0)
        with pytest.raises(KernelError, match="repeat 4294967296 is out of range"):
            prog.test_run(b"", repeat=2**32)
    assert [cmd for cmd, _ in fake.calls] == [Cmd.PROG_LOAD, Cmd.PROG_TEST_RUN]
    a = fake.calls[1][1]
    assert a["prog_fd"] == fake.fds[0] and a["repeat"] == 5
    assert a["data_size_in"] == 3 and a["data_size_out"] == 3 + 4096
    assert res.retval == 7 and res.duration_ns == 42 and res.data_out[:3] == b"\x01\x02\x03"
    assert fake.closed()
