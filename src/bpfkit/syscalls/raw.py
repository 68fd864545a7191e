"""The ``bpf()`` system call itself: ``syscall(__NR_bpf, cmd, attr, size)`` through libc.

The lowest piece of the kernel layer and the cheapest to import (``ctypes`` and ``os``
only): :mod:`.backend` builds the typed, swappable :func:`~bpfkit.syscalls.bpf` on it, and
:mod:`bpfkit.kernel.replay` calls it directly to replay a recorded load without importing
the rest of bpfkit.

API::

    call(cmd, address, size) -> int     # the result, or -errno
    syscall_number(machine=None) -> int # __NR_bpf
"""

from __future__ import annotations

import ctypes
import os

from bpfkit.errors import KernelError

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
_nr: int | None = None


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


def libc() -> ctypes.CDLL:
    """libc, its ``syscall`` returning a C long (loaded once; a race loads it twice, harmlessly)."""
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.syscall.restype = ctypes.c_long
        _libc = lib
    return _libc


def call(cmd: int, address: int, size: int) -> int:
    """``bpf(cmd, address, size)``: the non-negative result, or ``-errno``."""
    global _nr
    if _nr is None:
        _nr = syscall_number()
    ret = int(
        libc().syscall(
            ctypes.c_long(_nr), ctypes.c_int(cmd), ctypes.c_void_p(address), ctypes.c_uint(size)
        )
    )
    return ret if ret >= 0 else -ctypes.get_errno()
