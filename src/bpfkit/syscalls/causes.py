"""Why a ``bpf()`` command failed: errno to a sentence naming the command and the likely cause.

The causes are ranked by what users of libbpf, bcc and cilium/ebpf trip on most: missing
privileges (not root, no CAP_BPF), kernel lockdown, RLIMIT_MEMLOCK on kernels before 5.11,
a kernel too old for a field or type, a map that is full, a path outside bpffs.  The checks
read /proc and /sys only (no syscalls), so explaining an error cannot fail in turn.
"""

from __future__ import annotations

import errno as E
import os
import resource

from bpfkit.errors import KernelError
from bpfkit.syscalls.attrs import Cmd

ENOTSUPP = 524  # kernel-internal "operation not supported", leaks out of bpf()

# CAP_SYS_ADMIN = 21, CAP_PERFMON = 38, CAP_BPF = 39 (include/uapi/linux/capability.h)
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


class BpfSyscallError(KernelError):
    """A ``bpf()`` command failed: ``cmd`` is the :class:`Cmd`, ``errno`` the error number."""

    def __init__(self, message: str, cmd: int, errno: int) -> None:
        super().__init__(message, errno)
        self.cmd = cmd


def errno_name(err: int) -> str:
    """``EPERM`` for 1, ``ENOTSUPP`` for 524, ``errno 999`` for unknown numbers."""
    if err == ENOTSUPP:
        return "ENOTSUPP"
    return E.errorcode.get(err, f"errno {err}")


def cmd_name(cmd: int) -> str:
    """``BPF_PROG_LOAD`` for 5."""
    try:
        return f"BPF_{Cmd(cmd).name}"
    except ValueError:
        return f"bpf command {cmd}"


def effective_caps() -> int:
    """The CapEff mask of this process (0 if /proc is unreadable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def privileged() -> bool:
    """True if this process may use bpf() for loading: CAP_BPF or CAP_SYS_ADMIN in its
    effective set (the kernel checks capabilities, so root whose capabilities were dropped
    is not privileged); without a readable /proc the user id decides.  The one check:
    :mod:`bpfkit.kernel.features` and the session use it."""
    if not os.path.exists("/proc/self/status"):
        return os.geteuid() == 0
    return bool(effective_caps() & ((1 << CAP_BPF) | (1 << CAP_SYS_ADMIN)))


def lockdown() -> str | None:
    """The active kernel lockdown mode (``integrity``/``confidentiality``), or None."""
    try:
        with open("/sys/kernel/security/lockdown") as f:
            text = f.read()
    except OSError:
        return None
    # The file lists the modes with the active one in brackets: "none [integrity] confidentiality".
    start, end = text.find("["), text.find("]")
    if start < 0 or end < start:
        return None
    mode = text[start + 1 : end]
    return None if mode == "none" else mode


def kernel_release() -> tuple[int, int]:
    """(major, minor) of the running kernel."""
    parts = os.uname().release.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def unprivileged_bpf_disabled() -> int | None:
    """The value of kernel.unprivileged_bpf_disabled (None if unreadable)."""
    try:
        with open("/proc/sys/kernel/unprivileged_bpf_disabled") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _privilege_cause(cmd: int) -> str:
    if not privileged():
        who = "running as root but" if os.geteuid() == 0 else "not running as root and"
        hint = f"{who} without CAP_BPF: run as root (sudo) or grant CAP_BPF"
        if cmd in (Cmd.PROG_LOAD, Cmd.LINK_CREATE, Cmd.RAW_TRACEPOINT_OPEN):
            hint += " and CAP_PERFMON (tracing programs)"
        if unprivileged_bpf_disabled():
            hint += "; unprivileged bpf() is disabled (kernel.unprivileged_bpf_disabled)"
        return hint
    mode = lockdown()
    if mode:
        return (
            f"kernel lockdown is in {mode} mode (/sys/kernel/security/lockdown), which "
            "forbids this; boot without lockdown or with Secure Boot off"
        )
    if kernel_release() < (5, 11):
        soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        if soft != resource.RLIM_INFINITY:
            return (
                f"this kernel (< 5.11) charges BPF memory to RLIMIT_MEMLOCK, now {soft} bytes: "
                "raise it (ulimit -l unlimited)"
            )
    if cmd == Cmd.OBJ_PIN or cmd == Cmd.OBJ_GET:
        return "the path is not on a BPF filesystem: use a directory under /sys/fs/bpf"
    if cmd == Cmd.PROG_LOAD:
        return (
            "the program type needs a capability or kernel feature refused here "
            "(fentry/fexit/LSM programs need BTF trampolines), or a security module denied it"
        )
    return (
        "permission denied although privileged: a security module (SELinux, AppArmor) may deny it"
    )


# (command or None for any, errno) -> cause.  The first match wins.
_CAUSES: dict[tuple[int | None, int], str] = {
    (Cmd.MAP_LOOKUP_ELEM, E.ENOENT): "no such key in the map",
    (Cmd.MAP_DELETE_ELEM, E.ENOENT): "no such key in the map",
    (Cmd.MAP_LOOKUP_AND_DELETE_ELEM, E.ENOENT): "no such key in the map",
    (Cmd.MAP_GET_NEXT_KEY, E.ENOENT): "no more keys",
    (Cmd.MAP_UPDATE_ELEM, E.E2BIG): "the map is full (max_entries reached)",
    (Cmd.MAP_UPDATE_ELEM, E.EEXIST): "the key exists and NOEXIST was asked",
    (Cmd.MAP_UPDATE_ELEM, E.ENOENT): "the key does not exist and EXIST was asked",
    (Cmd.MAP_UPDATE_ELEM, E.EPERM): "the map is frozen or read-only from user space",
    (Cmd.MAP_UPDATE_ELEM, E.EINVAL): "invalid flags, or an index past the end of an array map",
    (Cmd.MAP_DELETE_ELEM, E.EINVAL): "elements of array maps cannot be deleted",
    (Cmd.MAP_FREEZE, E.EBUSY): "the map is already frozen or mapped writable",
    (Cmd.PROG_GET_NEXT_ID, E.ENOENT): "no more programs",
    (Cmd.PROG_GET_FD_BY_ID, E.ENOENT): "no program with that id (it was unloaded)",
    (Cmd.MAP_GET_FD_BY_ID, E.ENOENT): "no map with that id (it was freed)",
    (Cmd.BTF_GET_FD_BY_ID, E.ENOENT): "no BTF object with that id",
    (Cmd.LINK_GET_FD_BY_ID, E.ENOENT): "no link with that id (it was detached)",
    (Cmd.LINK_DETACH, E.EOPNOTSUPP): (
        "this type of link cannot be detached; close its holders (or remove its pin) instead"
    ),
    (Cmd.OBJ_GET, E.ENOENT): "nothing is pinned at that path",
    (Cmd.OBJ_PIN, E.EEXIST): "the pin path already exists: remove it or choose another",
    (Cmd.OBJ_PIN, E.ENOENT): "the directory of the pin path does not exist",
    (
        Cmd.PROG_TEST_RUN,
        E.ENOSPC,
    ): "the output buffer is too small for the data the program produced",
    (Cmd.PROG_TEST_RUN, ENOTSUPP): "BPF_PROG_TEST_RUN is not supported for this program type",
    (Cmd.PROG_TEST_RUN, E.EOPNOTSUPP): "BPF_PROG_TEST_RUN is not supported for this program type",
    (Cmd.PROG_TEST_RUN, E.EINVAL): (
        "the input does not suit the program type (packet too short for an Ethernet header, "
        "context of the wrong size, or repeat/flags not supported for it)"
    ),
    (Cmd.PROG_LOAD, E.EINVAL): (
        "the kernel does not know this program type or expected attach type, or an "
        "instruction or attribute is invalid"
    ),
    (
        Cmd.PROG_LOAD,
        E.E2BIG,
    ): "the program is too large (over 1M instructions) or an attribute is newer than this kernel",
    (Cmd.MAP_CREATE, E.EINVAL): (
        "the kernel does not know this map type or flags, or key/value size or max_entries "
        "is invalid for it (for example 0, or an array map key other than 4 bytes)"
    ),
    (
        Cmd.MAP_CREATE,
        E.ENOMEM,
    ): "not enough memory for the map (max_entries * value size too large?)",
    (
        Cmd.BTF_LOAD,
        E.EINVAL,
    ): "the kernel rejected the BTF (a kind or flag it does not know, or malformed data)",
    (
        Cmd.LINK_CREATE,
        E.EINVAL,
    ): "this attach type does not fit the program type, or the kernel lacks it",
    (Cmd.RAW_TRACEPOINT_OPEN, E.ENOENT): "no raw tracepoint with that name in this kernel",
    (None, E.EPERM): "",  # computed: _privilege_cause
    (None, E.EACCES): "",
    (None, E.ENOSYS): "this kernel has no bpf() syscall (CONFIG_BPF_SYSCALL off)",
    (None, E.EBADF): "a file descriptor passed is closed or not a BPF object",
    (None, E.E2BIG): (
        "the kernel is older than an attribute bpfkit passed (bytes it does not know are set)"
    ),
    (None, E.EINVAL): "an attribute or flag is not valid for this command on this kernel",
    (None, E.ENOMEM): "out of memory (on kernels < 5.11: RLIMIT_MEMLOCK too low)",
    (None, E.EFAULT): "a pointer passed to the kernel is invalid (a bpfkit bug: please report it)",
    (None, ENOTSUPP): "the operation is not supported for this object type",
    (None, E.EOPNOTSUPP): "the operation is not supported for this object type",
    (None, E.ENOENT): "no such object",
}


def cause(cmd: int, err: int) -> str:
    """The likely cause of ``err`` from ``cmd``, as a phrase (may be empty)."""
    if err in (E.EPERM, E.EACCES) and (cmd, err) not in _CAUSES:
        return _privilege_cause(cmd)
    return _CAUSES.get((cmd, err)) or _CAUSES.get((None, err)) or ""


def describe(cmd: int, err: int) -> str:
    """``bpf(BPF_X) failed: <strerror> (ENAME): <cause>``."""
    why = cause(cmd, err)
    strerror = "Operation not supported" if err == ENOTSUPP else os.strerror(err)
    text = f"bpf({cmd_name(cmd)}) failed: {strerror} ({errno_name(err)})"
    return f"{text}: {why}" if why else text


def error(cmd: int, err: int, context: str = "") -> BpfSyscallError:
    """The exception for ``err`` from ``cmd``; ``context`` (what was being done) leads."""
    msg = describe(cmd, err)
    return BpfSyscallError(f"{context}: {msg}" if context else msg, cmd, err)
