"""The one place that calls ``bpf()``: ``syscall(__NR_bpf, cmd, &attr, sizeof attr)`` via ctypes.

Every command goes through :func:`bpf`, which calls the current *backend*: a function
``(cmd, attr) -> int`` that returns the syscall's non-negative result or raises
:class:`OSError` with the errno.  The real backend calls :func:`bpfkit.syscalls.raw.call` (libc's ``syscall``); tests (or a
fake kernel) swap it with :func:`set_backend` / :func:`use_backend`.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bpfkit.syscalls import raw
from bpfkit.syscalls.causes import error
from bpfkit.syscalls.raw import syscall_number as syscall_number  # re-exported

Backend = Callable[[int, ctypes.Structure], int]
"""``backend(cmd, attr)``: the result (>= 0) or raise ``OSError(errno, ...)``."""


def real_backend(cmd: int, attr: ctypes.Structure) -> int:
    """Call the kernel."""
    ret = raw.call(cmd, ctypes.addressof(attr), ctypes.sizeof(attr))
    if ret < 0:
        raise OSError(-ret, os.strerror(-ret))
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
