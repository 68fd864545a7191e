"""The verifier-log protocol against a fake kernel (the backend seam): what bpfkit asks
for on each attempt, on kernels with and without ``log_true_size`` (Linux 6.4)."""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Callable

import pytest

from bpfkit.errors import KernelError, VerifierError
from bpfkit.isa.insn import Insn
from bpfkit.kernel.program import LOG_MIN, load_program
from bpfkit.syscalls import Cmd, attrs, use_backend

PROG = [Insn(0xB7, 0, 0, 0, 0), Insn(0x95)]


def fake_verifier(
    log: str, *, true_size: bool, err: int = errno.EACCES
) -> tuple[Callable[[int, ctypes.Structure], int], list[tuple[int, int]]]:
    """A kernel that rejects every program with ``log``; records (log_level, log_size)."""
    calls: list[tuple[int, int]] = []
    data = log.encode() + b"\0"

    def backend(cmd: int, attr: ctypes.Structure) -> int:
        assert cmd == Cmd.PROG_LOAD and isinstance(attr, attrs.ProgLoadAttr)
        calls.append((attr.log_level, attr.log_size))
        if attr.log_size:
            n = min(len(data), attr.log_size)
            chunk = data[: n - 1] + b"\0"
            ctypes.memmove(attr.log_buf, chunk, n)
            if true_size:
                attr.log_true_size = len(data)
            if len(data) > attr.log_size:
                raise OSError(errno.ENOSPC, "No space left on device")
        raise OSError(err, "rejected")

    return backend, calls


def test_first_load_has_no_log_then_one_retry_when_it_fits() -> None:
    backend, calls = fake_verifier("0: (95) exit\nR0 !read_ok\nprocessed 1 insns\n", true_size=True)
    with use_backend(backend), pytest.raises(VerifierError) as ei:
        load_program(PROG, "socket_filter", name="p")
    assert calls == [(0, 0), (2, LOG_MIN)]  # the detailed log (bpfkit.verify explains it)
    assert str(ei.value).endswith("R0 !read_ok")
    assert ei.value.log.startswith("0: (95) exit")


def test_log_true_size_gives_the_exact_buffer() -> None:
    log = "".join(f"{i}: (b7) r1 = {i}\n" for i in range(20000)) + "R3 !read_ok\n"
    backend, calls = fake_verifier(log, true_size=True)
    with use_backend(backend), pytest.raises(VerifierError) as ei:
        load_program(PROG, "socket_filter")
    assert calls == [(0, 0), (2, LOG_MIN), (2, len(log) + 1)]
    assert ei.value.log == log and "R3 !read_ok" in str(ei.value)


def test_without_log_true_size_the_buffer_quadruples() -> None:
    log = "x\n" * (LOG_MIN * 5 // 2) + "the reason\n"
    backend, calls = fake_verifier(log, true_size=False)
    with use_backend(backend), pytest.raises(VerifierError) as ei:
        load_program(PROG, "socket_filter")
    assert calls == [(0, 0), (2, LOG_MIN), (2, 4 * LOG_MIN), (2, 16 * LOG_MIN)]
    assert ei.value.log == log and str(ei.value).endswith("the reason")


def test_no_log_means_the_errno_cause() -> None:
    backend, calls = fake_verifier("", true_size=True, err=errno.EINVAL)
    with use_backend(backend), pytest.raises(KernelError) as ei:
        load_program(PROG, "socket_filter")
    assert not isinstance(ei.value, VerifierError)
    assert "BPF_PROG_LOAD" in str(ei.value) and "EINVAL" in str(ei.value)


def test_eperm_is_not_retried_with_a_log() -> None:
    backend, calls = fake_verifier("", true_size=True, err=errno.EPERM)
    with use_backend(backend), pytest.raises(KernelError, match="EPERM"):
        load_program(PROG, "socket_filter")
    assert calls == [(0, 0)]


def test_a_too_long_detailed_log_is_fetched_once_at_level_1() -> None:
    # A program that walks the 1M-instruction limit: each attempt verifies it again
    # (seconds), so after the level-2 log proves too long, level 1 (a subset of its
    # lines) is asked for once, in a buffer as large as allowed.
    log = "".join(f"{i}: (07) r0 += 1\n" for i in range(20000)) + "BPF program is too large\n"
    backend, calls = fake_verifier(log, true_size=True, err=errno.E2BIG)
    with use_backend(backend), pytest.raises(VerifierError) as ei:
        load_program(PROG, "xdp", log_size_max=2 * LOG_MIN)
    assert calls == [(0, 0), (2, LOG_MIN), (1, 2 * LOG_MIN)]
    assert "(log truncated)" in str(ei.value)
