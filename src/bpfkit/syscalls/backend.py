"""The one place that calls ``bpf()``: ``syscall(__NR_bpf, cmd, &attr, sizeof attr)`` via ctypes.

Every command goes through :func:`bpf`, which calls the current *backend*: a function
``(cmd, attr) -> int`` that returns the syscall's non-negative result or raises
:class:`OSError` with the errno.  The real backend calls libc's ``syscall``; tests (or a
fake kernel) swap it with :func:`set_backend` / :func:`use_backend`.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bpfkit.errors import KernelError
from bpfkit.syscalls.causes import error

Backend = Callable[[int, ctypes.Structure], int]
"""``backend(cmd, attr)``: the result (>= 0) or raise ``OSError(errno, ...)``."""

# __NR_bpf per machine (arch/*/include/uapi/asm/unistd*.h, or the generic table 280).
BPF_SYSCALL_NR: dict[str, int] = {
    "x86_64": 321,
    "i386": 357,
    "i686": 357,
    "aarch64": 280,
    "arm64": 280,
    "riscv64": 280,
    "loongarch64": 280,
    "armv7l": 386,
    "armv6l": 386,
    "ppc64le": 361,
    "ppc64": 361,
    "s390x": 351,
    "mips64": 5315,
}

_libc: ctypes.CDLL | None = None
_lock = threading.Lock()


def syscall_number(machine: str | None = None) -> int:
    """``__NR_bpf`` for ``machine`` (default: this one)."""
    machine = machine or os.uname().machine
    try:
        return BPF_SYSCALL_NR[machine]
    except KeyError:
        raise KernelError(
            f"bpf(): the syscall number for machine {machine!r} is unknown to bpfkit; "
            f"known: {', '.join(sorted(BPF_SYSCALL_NR))}"
        ) from None


def _get_libc() -> ctypes.CDLL:
    global _libc
    with _lock:
        if _libc is None:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syscall.restype = ctypes.c_long
            _libc = libc
        return _libc


def real_backend(cmd: int, attr: ctypes.Structure) -> int:
    """Call the kernel."""
    libc = _get_libc()
    ret = int(
        libc.syscall(
            ctypes.c_long(syscall_number()),
            ctypes.c_int(cmd),
            ctypes.byref(attr),
            ctypes.c_uint(ctypes.sizeof(attr)),
        )
    )
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


_backend: Backend = real_backend


def get_backend() -> Backend:
    """The backend :func:`bpf` calls now."""
    return _backend


def set_backend(backend: Backend) -> Backend:
    """Make ``backend`` the one :func:`bpf` calls; return the previous one."""
    global _backend
    previous, _backend = _backend, backend
    return previous


@contextmanager
def use_backend(backend: Backend) -> Iterator[Backend]:
    """``with use_backend(fake): ...`` swaps the backend for the block."""
    previous = set_backend(backend)
    try:
        yield backend
    finally:
        set_backend(previous)


def bpf(cmd: int, attr: ctypes.Structure, context: str = "") -> int:
    """Run one ``bpf()`` command; raise :class:`~bpfkit.syscalls.causes.BpfSyscallError`
    (a :class:`~bpfkit.errors.KernelError`) naming the command and the likely cause.
    EINTR is retried, as libbpf does for PROG_LOAD (the verifier can be interrupted)."""
    while True:
        try:
            return _backend(cmd, attr)
        except InterruptedError:
            continue
        except OSError as e:
            raise error(cmd, e.errno or 0, context) from None


def bpf_errno(cmd: int, attr: ctypes.Structure) -> tuple[int, int]:
    """Run one command without raising: ``(result, 0)`` or ``(-1, errno)``."""
    while True:
        try:
            return _backend(cmd, attr), 0
        except InterruptedError:
            continue
        except OSError as e:
            return -1, e.errno or 0
