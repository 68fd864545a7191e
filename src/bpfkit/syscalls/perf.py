"""perf_event_open(2) and the perf ioctls bpfkit needs, through ctypes.

Attaching a BPF program to a tracepoint, kprobe or uprobe goes through a perf event:
open one (``perf_event_open``), then either create a BPF link on it or hand it the
program with ``PERF_EVENT_IOC_SET_BPF`` and enable it.  BPF perf buffers are perf
events too (``PERF_COUNT_SW_BPF_OUTPUT``), read through an mmap'ed ring.

The ``perf_event_attr`` layout follows ``include/uapi/linux/perf_event.h``
(``PERF_ATTR_SIZE_VER8`` = 136 bytes; the kernel accepts any size it knows, and a
larger one if the extra bytes are zero).
"""

from __future__ import annotations

import ctypes
import errno as _errno
import fcntl
import os

from bpfkit.errors import KernelError
from bpfkit.syscalls.attrs import Checked

# perf_event_open(2) syscall numbers per machine (asm/unistd.h).
_NR_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "riscv64": 241, "armv7l": 364}

# enum perf_type_id
PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1
PERF_TYPE_TRACEPOINT = 2
# enum perf_sw_ids
PERF_COUNT_SW_BPF_OUTPUT = 10
# enum perf_event_sample_format
PERF_SAMPLE_RAW = 1 << 10
# perf_event_open flags
PERF_FLAG_FD_CLOEXEC = 1 << 3
# perf_event_attr bit fields (the u64 after read_format)
ATTR_FLAG_DISABLED = 1 << 0
ATTR_FLAG_WATERMARK = 1 << 14

# ioctl request numbers: _IO('$', n) and _IOW('$', 8, __u32).
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_SET_BPF = 0x40042408

# The kprobe/uprobe PMUs put "this is a return probe" in bit 0 of config
# (/sys/bus/event_source/devices/*/format/retprobe says "config:0").
PROBE_RETPROBE_BIT = 1 << 0
REF_CTR_OFFSET_SHIFT = (
    32  # uprobe PMU: config bits 32-63 hold a USDT semaphore's file offset (4.20+)
)


class PerfEventAttr(Checked):
    """``struct perf_event_attr`` (uapi/linux/perf_event.h), up to ``config3``; fields are
    range-checked as the bpf() attrs are."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),  # union with sample_freq
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),  # disabled:1, inherit:1, ... (bit fields)
        ("wakeup_events", ctypes.c_uint32),  # union with wakeup_watermark
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),  # union: bp_addr, kprobe_func, uprobe_path
        ("config2", ctypes.c_uint64),  # union: bp_len, kprobe_addr, probe_offset
        ("branch_sample_type", ctypes.c_uint64),
        ("sample_regs_user", ctypes.c_uint64),
        ("sample_stack_user", ctypes.c_uint32),
        ("clockid", ctypes.c_int32),
        ("sample_regs_intr", ctypes.c_uint64),
        ("aux_watermark", ctypes.c_uint32),
        ("sample_max_stack", ctypes.c_uint16),
        ("reserved_2", ctypes.c_uint16),
        ("aux_sample_size", ctypes.c_uint32),
        ("reserved_3", ctypes.c_uint32),
        ("sig_data", ctypes.c_uint64),
        ("config3", ctypes.c_uint64),
    ]


assert ctypes.sizeof(PerfEventAttr) == 136  # PERF_ATTR_SIZE_VER8

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _nr() -> int:
    machine = os.uname().machine
    nr = _NR_PERF_EVENT_OPEN.get(machine)
    if nr is None:
        raise KernelError(f"perf_event_open: unknown syscall number for machine {machine!r}")
    return nr


# EILSEQ from a kprobe (perf_event_open or a kprobe_events write): what it means.
NOT_AN_INSTRUCTION = (
    "the address is not the start of an instruction (EILSEQ): a kprobe must sit on an "
    "instruction boundary; use the function itself or an offset that starts an "
    "instruction in its disassembly"
)


def _cause(err: int, what: str) -> str:
    """The likely reason perf_event_open failed with ``err``, for ``what``."""
    if err in (_errno.EACCES, _errno.EPERM):
        return (
            "not permitted: run as root (or with CAP_PERFMON) or lower "
            "/proc/sys/kernel/perf_event_paranoid"
        )
    if err == _errno.ENOENT:
        return f"{what} does not exist on this kernel"
    if err == _errno.EINVAL:
        return f"the kernel refused the attributes for {what} (bad offset, symbol or PMU config)"
    if err == _errno.E2BIG:
        return "this kernel does not understand the perf_event_attr size bpfkit uses"
    if err == _errno.EMFILE:
        return "too many open files: raise the limit (ulimit -n)"
    if err == _errno.ENODEV:
        return f"no PMU for {what}"
    if err == _errno.EILSEQ:
        return NOT_AN_INSTRUCTION
    return os.strerror(err)


def perf_event_open(
    attr: PerfEventAttr,
    *,
    pid: int = -1,
    cpu: int = 0,
    group_fd: int = -1,
    flags: int = PERF_FLAG_FD_CLOEXEC,
    what: str = "the perf event",
) -> int:
    """Open a perf event; return its file descriptor (the caller owns it).

    ``what`` names the event in the error message (for example ``"tracepoint
    syscalls/sys_enter_clone"``).
    """
    attr.size = ctypes.sizeof(PerfEventAttr)
    fd = int(_libc.syscall(_nr(), ctypes.byref(attr), pid, cpu, group_fd, flags))
    if fd < 0:
        err = ctypes.get_errno()
        raise KernelError(f"perf_event_open of {what} failed: {_cause(err, what)}", err)
    return fd


def tracepoint_attr(event_id: int) -> PerfEventAttr:
    """Attributes of a tracepoint event (the id read from tracefs ``events/CAT/NAME/id``)."""
    attr = PerfEventAttr()
    attr.type = PERF_TYPE_TRACEPOINT
    attr.config = event_id
    attr.sample_period = 1
    attr.wakeup_events = 1
    return attr


def probe_pmu_attr(
    pmu_type: int,
    *,
    name: bytes,
    offset: int,
    retprobe: bool,
    keep: list[object],
) -> PerfEventAttr:
    """Attributes of a kprobe/uprobe PMU event.

    For kprobes ``name`` is the function and ``offset`` the offset in it; for uprobes
    ``name`` is the binary's path and ``offset`` the file offset.  The name buffer is
    appended to ``keep`` so it outlives the ``perf_event_open`` call.
    """
    buf = ctypes.create_string_buffer(name)
    keep.append(buf)
    attr = PerfEventAttr()
    attr.type = pmu_type
    attr.config = PROBE_RETPROBE_BIT if retprobe else 0
    attr.config1 = ctypes.addressof(buf)
    attr.config2 = offset
    attr.sample_period = 1
    attr.wakeup_events = 1
    return attr


PERF_COUNT_SW_CPU_CLOCK = 0
PERF_ATTR_FLAG_FREQ = 1 << 10  # perf_event_attr.freq: sample_period is sample_freq


def cpu_clock_attr(freq: int) -> PerfEventAttr:
    """Attributes of CPU-clock sampling at ``freq`` Hz (a ``perf_event`` program's event)."""
    if not 1 <= freq <= 100_000:
        raise KernelError(f"sampling frequency {freq} Hz is outside 1..100000")
    attr = PerfEventAttr()
    attr.type = PERF_TYPE_SOFTWARE
    attr.config = PERF_COUNT_SW_CPU_CLOCK
    attr.sample_period = freq
    attr.flags = PERF_ATTR_FLAG_FREQ
    return attr


def bpf_output_attr(wakeup_events: int = 1) -> PerfEventAttr:
    """Attributes of a ``PERF_COUNT_SW_BPF_OUTPUT`` event (one per CPU of a perf buffer)."""
    attr = PerfEventAttr()
    attr.type = PERF_TYPE_SOFTWARE
    attr.config = PERF_COUNT_SW_BPF_OUTPUT
    attr.sample_type = PERF_SAMPLE_RAW
    attr.sample_period = 1
    attr.wakeup_events = wakeup_events
    return attr


def _ioctl(fd: int, request: int, arg: int, what: str) -> None:
    try:
        fcntl.ioctl(fd, request, arg)
    except OSError as e:
        err = e.errno or 0
        cause = os.strerror(err)
        if err == _errno.EEXIST:
            cause = "a BPF program is already attached to this perf event"
        elif err == _errno.EINVAL and request == PERF_EVENT_IOC_SET_BPF:
            cause = "the program's type does not fit this perf event (tracepoint/kprobe/uprobe)"
        raise KernelError(f"perf ioctl {what} failed: {cause}", err) from None


def set_bpf(perf_fd: int, prog_fd: int) -> None:
    """``PERF_EVENT_IOC_SET_BPF``: run ``prog_fd`` when the perf event fires."""
    _ioctl(perf_fd, PERF_EVENT_IOC_SET_BPF, prog_fd, "SET_BPF")


def enable(perf_fd: int) -> None:
    """``PERF_EVENT_IOC_ENABLE``."""
    _ioctl(perf_fd, PERF_EVENT_IOC_ENABLE, 0, "ENABLE")


def disable(perf_fd: int) -> None:
    """``PERF_EVENT_IOC_DISABLE``."""
    _ioctl(perf_fd, PERF_EVENT_IOC_DISABLE, 0, "DISABLE")
