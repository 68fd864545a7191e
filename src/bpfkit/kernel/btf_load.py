"""Loading BTF into the kernel (BPF_BTF_LOAD).

API::

    load_btf(raw, *, what=".BTF") -> Fd   # on failure BtfLoadError with the kernel's log

What is loaded is prepared without the kernel: :func:`bpfkit.obj.prepare.btf_for_kernel`
(DATASEC layout, extern linkage, kinds the kernel lacks: :mod:`bpfkit.btf.fixup`).
"""

from __future__ import annotations

import ctypes

from bpfkit.errors import KernelError
from bpfkit.syscalls import Cmd, Fd, attrs, bpf_errno
from bpfkit.syscalls.causes import describe

LOG_SIZE = 1 << 20


class BtfLoadError(KernelError):
    """The kernel refused BTF; ``log`` is its BTF log."""

    def __init__(self, message: str, errno: int, log: str) -> None:
        super().__init__(message, errno)
        self.log = log


def load_btf(raw: bytes, *, what: str = ".BTF") -> Fd:
    """Load BTF into the kernel; on failure the KernelError carries the kernel's BTF log."""
    data = ctypes.create_string_buffer(raw, len(raw))
    attr = attrs.BtfLoadAttr(btf=ctypes.addressof(data), btf_size=len(raw))
    fd, err = bpf_errno(Cmd.BTF_LOAD, attr)
    if fd >= 0:
        return Fd(fd, "btf")
    # Again with a log, to say why.
    log = ctypes.create_string_buffer(LOG_SIZE)
    attr = attrs.BtfLoadAttr(
        btf=ctypes.addressof(data),
        btf_size=len(raw),
        btf_log_buf=ctypes.addressof(log),
        btf_log_size=LOG_SIZE,
        btf_log_level=1,
    )
    fd, err2 = bpf_errno(Cmd.BTF_LOAD, attr)
    if fd >= 0:
        return Fd(fd, "btf")
    text = log.value.decode(errors="replace").strip()
    last = text.splitlines()[-1] if text else ""
    msg = f"loading {what}: {describe(Cmd.BTF_LOAD, err2 or err)}"
    if last:
        msg += f"; kernel says: {last}"
    raise BtfLoadError(msg, err2 or err, text)
