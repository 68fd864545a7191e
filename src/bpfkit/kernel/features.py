"""What this kernel and this process can do: privileges, lockdown, BTF, program types.

API::

    privileged() -> bool                 # CAP_BPF or CAP_SYS_ADMIN (bpfkit.syscalls.causes)
    require_privileges(what) -> None     # KernelError in one sentence when not
    kernel_version() -> tuple[int, int, int]
    kernel_version_code() -> int         # KERNEL_VERSION(a, b, c) of uname
    lockdown() -> str | None             # "integrity" / "confidentiality" / None
    has_vmlinux_btf() -> bool
    prog_type_supported(prog_type) -> bool   # loads "r0 = 0; exit" of that type (cached)
"""

from __future__ import annotations

import functools
import os

from bpfkit.errors import KernelError
from bpfkit.syscalls.causes import lockdown as _lockdown
from bpfkit.syscalls.causes import privileged

VMLINUX_BTF = "/sys/kernel/btf/vmlinux"


def require_privileges(what: str = "this command") -> None:
    """Raise a one-sentence KernelError unless :func:`privileged`."""
    if not privileged():
        raise KernelError(
            f"{what} needs root or the CAP_BPF capability to use bpf(): run it with sudo"
        )


def kernel_version() -> tuple[int, int, int]:
    """(major, minor, patch) of the running kernel, from uname."""
    nums: list[int] = []
    for part in os.uname().release.split(".")[:3]:
        digits = ""
        for c in part:
            if not c.isdigit():
                break
            digits += c
        nums.append(int(digits or 0))
    while len(nums) < 3:
        nums.append(0)
    return nums[0], nums[1], nums[2]


def kernel_version_code() -> int:
    """``KERNEL_VERSION(major, minor, patch)`` of the running kernel (patch capped at 255)."""
    a, b, c = kernel_version()
    return (a << 16) | (b << 8) | min(c, 255)


def lockdown() -> str | None:
    """The active kernel lockdown mode, or None."""
    return _lockdown()


def has_vmlinux_btf() -> bool:
    """True if the kernel exposes its BTF (CONFIG_DEBUG_INFO_BTF)."""
    return os.path.exists(VMLINUX_BTF)


@functools.cache
def prog_type_supported(prog_type: int) -> bool:
    """True if the kernel loads a trivial program of ``prog_type``."""
    from bpfkit.isa.insn import Insn
    from bpfkit.kernel.program import load_program

    try:
        with load_program([Insn(0xB7, 0, 0, 0, 0), Insn(0x95)], prog_type):
            return True
    except KernelError:
        return False
