"""Pinning BPF objects in bpffs (BPF_OBJ_PIN / BPF_OBJ_GET) and mounting bpffs.

API::

    pin(fd, path)            # the object stays alive while the pin exists
    get(path) -> Fd          # open a pinned object
    unpin(path)              # remove the pin (an ordinary unlink)
    ensure_bpffs(dir="/sys/fs/bpf") -> str   # mount bpffs there if it is not yet
    is_bpffs(path) -> bool
"""

from __future__ import annotations

import ctypes
import os

from bpfkit.errors import KernelError
from bpfkit.syscalls import Cmd, Fd, attrs, bpf

BPF_FS_MAGIC = 0xCAFE4A11
DEFAULT_BPFFS = "/sys/fs/bpf"


def pin(fd: int, path: str) -> None:
    """Pin the object behind ``fd`` at ``path`` (which must be on bpffs)."""
    cpath = ctypes.create_string_buffer(os.fsencode(path))
    attr = attrs.ObjAttr(pathname=ctypes.addressof(cpath), bpf_fd=fd)
    bpf(Cmd.OBJ_PIN, attr, f"pinning at {path}")


def get(path: str, *, flags: int = 0) -> Fd:
    """An owned descriptor for the object pinned at ``path``."""
    cpath = ctypes.create_string_buffer(os.fsencode(path))
    attr = attrs.ObjAttr(pathname=ctypes.addressof(cpath), file_flags=flags)
    return Fd(bpf(Cmd.OBJ_GET, attr, f"opening the pin {path}"), "pinned object")


def unpin(path: str) -> None:
    """Remove the pin at ``path`` (the object dies when nothing else holds it)."""
    os.unlink(path)


def _statfs_type(path: str) -> int | None:
    # struct statfs begins with f_type (a long on 64-bit Linux); os.statvfs does not expose it.
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(256)
    if libc.statfs(os.fsencode(path), buf) != 0:
        return None
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def is_bpffs(path: str) -> bool:
    """True if ``path`` is on a BPF filesystem."""
    return _statfs_type(path) == BPF_FS_MAGIC


def ensure_bpffs(directory: str = DEFAULT_BPFFS) -> str:
    """Make sure a bpffs is mounted at ``directory`` (mounting it, root only); return it."""
    if os.path.isdir(directory) and is_bpffs(directory):
        return directory
    os.makedirs(directory, exist_ok=True)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"bpf", os.fsencode(directory), b"bpf", 0, None) != 0:
        err = ctypes.get_errno()
        raise KernelError(
            f"cannot mount bpffs at {directory}: {os.strerror(err)}; "
            f"run as root, or mount it: mount -t bpf bpf {directory}",
            err,
        )
    return directory


def bpffs_dir(path: str) -> str:
    """Check that the directory ``path`` lies on bpffs (mounting /sys/fs/bpf if needed)."""
    ensure_bpffs()
    parent = path if os.path.isdir(path) else os.path.dirname(path) or "."
    if not is_bpffs(parent):
        raise KernelError(
            f"{path} is not on a BPF filesystem: use a directory under {DEFAULT_BPFFS}"
        )
    return path
