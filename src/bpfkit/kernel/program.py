"""Loading a program into the kernel (BPF_PROG_LOAD) and running it (BPF_PROG_TEST_RUN).

API::

    load_program(insns, prog_type, *, license="GPL", name="", expected_attach_type=0,
                 kern_version=0, btf_fd=None, func_info=b"", func_info_rec_size=8,
                 line_info=b"", line_info_rec_size=16, log_level=0, prog_flags=0,
                 attach_btf_id=0, attach_prog_fd=0) -> Program
    Program: .fd (int), .name, .type, .close(), with-block, .info() -> ProgramInfo,
             .xlated() -> list[Insn], .jited() -> bytes,
             .test_run(data=b"", *, repeat=1, ctx=None, data_size_out=None) -> TestRunResult,
             .pin(path), Program.from_pin(path), Program.from_id(id)
    TestRunResult(retval, data_out, duration_ns, ctx_out)

``prog_type`` is a number or a name (``"socket_filter"``, ``"BPF_PROG_TYPE_XDP"``, ``"xdp"``).

The verifier log follows the protocol the mature loaders (libbpf, cilium/ebpf) agree on:
load without a log (fast, no buffer); on failure load again with ``log_level`` 2 (level 1
when the detailed log would pass 64 MiB) and a
buffer grown until the whole log fits (to ``log_true_size`` where the kernel reports it,
Linux >= 6.4; else by quadrupling); raise :class:`~bpfkit.errors.VerifierError` carrying
the **whole** log, whose message is its last meaningful line.
"""

from __future__ import annotations

import ctypes
import errno
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bpfkit.errors import KernelError, VerifierError
from bpfkit.isa.insn import Insn, encode_all
from bpfkit.kernel import pins
from bpfkit.syscalls import Cmd, Fd, attrs, bpf, bpf_errno
from bpfkit.syscalls.causes import cause, errno_name, error
from bpfkit.syscalls.fd import FdOwner
from bpfkit.uapi import AttachType, ProgType
from bpfkit.uapi.names import type_name, type_number

TYPE_CHECKING = False  # as typing.TYPE_CHECKING; kernel.info is imported when asked
if TYPE_CHECKING:
    from bpfkit.kernel.info import ProgramInfo

LOG_MIN = 64 * 1024  # first log buffer on failure; most rejections fit
LOG_MAX = (1 << 30) - 1  # the kernel refuses log_size >= UINT_MAX >> 2
LOG_LEVEL_STATS = 4  # BPF_LOG_STATS
LOG_DETAILED_MAX = 64 << 20  # a level-2 log bigger than this is fetched at level 1 instead


def prog_type_number(prog_type: int | str) -> int:
    """The ``enum bpf_prog_type`` number of a name (``"kprobe"``, ``"BPF_PROG_TYPE_XDP"``)."""
    return type_number(ProgType, prog_type, "BPF_PROG_TYPE_", "program type")


def attach_type_number(attach_type: int | str) -> int:
    """The ``enum bpf_attach_type`` number of a name (``"cgroup_inet_ingress"``)."""
    return type_number(AttachType, attach_type, "BPF_", "attach type", list_known=False)


_NAME_OK = re.compile(r"[^A-Za-z0-9_.]")


def kernel_name(name: str) -> bytes:
    """``name`` as the kernel accepts it: [A-Za-z0-9_.] only, at most 15 bytes."""
    return _NAME_OK.sub("_", name)[:15].encode()


# Lines at the end of a verifier log that are statistics, not the reason.
_STATS = re.compile(
    r"^(processed \d+ insns|verification time|stack depth|max_states_per_insn|"
    r"peak_states|mark_read|total_states|-- END PROG LOAD LOG --)"
)


# State dumps the verifier prints after its reason (6.x: "infinite loop detected at insn 1"
# is followed by "cur state: ..." and "old state: ...").
_STATE_DUMP = re.compile(r"^(cur|old) state:")


def summarize_log(log: str) -> str:
    """The last meaningful line of a verifier log (statistics and state dumps skipped)."""
    for line in reversed(log.splitlines()):
        line = line.strip()
        if line and not _STATS.match(line) and not _STATE_DUMP.match(line):
            return line
    return ""


@dataclass(frozen=True, slots=True)
class TestRunResult:
    """What BPF_PROG_TEST_RUN returned."""

    __test__ = False  # not a pytest class

    retval: int  # the program's return value (r0, as u32)
    data_out: bytes  # the packet after the program ran
    duration_ns: int  # average time per run
    ctx_out: bytes | None = None


class Program(FdOwner):
    """A program loaded in the kernel; owns its file descriptor."""

    def __init__(self, fd: Fd, name: str = "", prog_type: int = 0) -> None:
        self._fd = fd
        self.name = name
        self.type = prog_type
        self.log = ""  # the verifier log, when one was requested (log_level > 0)

    @property
    def type_name(self) -> str:
        """``socket_filter``, ``kprobe``, ..."""
        return type_name(ProgType, self.type)

    def __repr__(self) -> str:
        return f"Program({self.name!r}, {self.type_name}, {self._fd!r})"

    def info(self) -> ProgramInfo:
        """The kernel's view: id, tag, translated and jited lengths, name, type."""
        from bpfkit.kernel.info import prog_info

        return prog_info(self.fd)

    def xlated(self) -> list[Insn]:
        """The instructions as the kernel runs them (after the verifier's rewriting)."""
        from bpfkit.isa.insn import decode_all
        from bpfkit.kernel.info import prog_code

        return decode_all(prog_code(self.fd))

    def jited(self) -> bytes:
        """The JIT-compiled machine code (empty without a JIT)."""
        from bpfkit.kernel.info import prog_code

        return prog_code(self.fd, jited=True)

    def pin(self, path: str) -> None:
        """Pin the program in bpffs at ``path`` (it stays loaded after close)."""
        pins.pin(self.fd, path)

    @classmethod
    def from_pin(cls, path: str) -> Program:
        """Open the program pinned at ``path``."""
        from bpfkit.kernel.info import prog_info

        fd = pins.get(path)
        info = prog_info(fd.fd)
        return cls(fd, info.name, info.type)

    @classmethod
    def from_id(cls, prog_id: int) -> Program:
        """Open the loaded program with kernel id ``prog_id``."""
        from bpfkit.kernel.info import prog_fd_by_id, prog_info

        fd = prog_fd_by_id(prog_id)
        info = prog_info(fd.fd)
        return cls(fd, info.name, info.type)

    def test_run(
        self,
        data: bytes = b"",
        *,
        repeat: int = 1,
        ctx: bytes | None = None,
        data_size_out: int | None = None,
        flags: int = 0,
        cpu: int = 0,
    ) -> TestRunResult:
        """Run the program once (or ``repeat`` times) on ``data`` with BPF_PROG_TEST_RUN.

        ``data_size_out`` bounds the output packet (default: the input size plus 4 KiB,
        room for XDP tail growth); if the program's output is larger the kernel's
        ENOSPC is reported.
        """
        if not 0 <= repeat <= 0xFFFFFFFF:  # a __u32: ctypes would silently truncate it
            raise KernelError(f"repeat {repeat} is out of range: 1 to {0xFFFFFFFF} runs")
        din = ctypes.create_string_buffer(bytes(data), len(data) or 1)
        out_size = data_size_out if data_size_out is not None else (len(data) + 4096 if data else 0)
        dout = ctypes.create_string_buffer(max(out_size, 1))
        attr = attrs.TestRunAttr(
            prog_fd=self.fd,
            data_size_in=len(data),
            data_in=ctypes.addressof(din) if data else 0,
            data_size_out=out_size,
            data_out=ctypes.addressof(dout) if out_size else 0,
            repeat=repeat,
            flags=flags,
            cpu=cpu,
        )
        cin = cout = None
        if ctx is not None:
            cin = ctypes.create_string_buffer(bytes(ctx), len(ctx) or 1)
            cout = ctypes.create_string_buffer(len(ctx) or 1)
            attr.ctx_in, attr.ctx_size_in = ctypes.addressof(cin), len(ctx)
            attr.ctx_out, attr.ctx_size_out = ctypes.addressof(cout), len(ctx)
        bpf(Cmd.PROG_TEST_RUN, attr, f"test-running program {self.name or self.fd!r}")
        data_out = dout.raw[: min(attr.data_size_out, out_size)] if out_size else b""
        ctx_out = None
        if cout is not None and ctx is not None:
            ctx_out = cout.raw[: min(attr.ctx_size_out, len(ctx))]
        return TestRunResult(attr.retval, data_out, attr.duration, ctx_out)


def _encode(insns: Sequence[Insn] | bytes) -> bytes:
    if isinstance(insns, (bytes, bytearray, memoryview)):
        return bytes(insns)
    return encode_all(list(insns))


def load_program(
    insns: Sequence[Insn] | bytes,
    prog_type: int | str,
    *,
    license: str = "GPL",
    name: str = "",
    expected_attach_type: int | str = 0,
    kern_version: int = 0,
    btf_fd: int | None = None,
    func_info: bytes = b"",
    func_info_rec_size: int = 8,
    line_info: bytes = b"",
    line_info_rec_size: int = 16,
    log_level: int = 0,
    prog_flags: int = 0,
    attach_btf_id: int = 0,
    attach_prog_fd: int = 0,
    fd_array: Sequence[int] | None = None,
    log_size_max: int = LOG_MAX,
) -> Program:
    """Load ``insns`` as a program of ``prog_type``; see the module docstring.

    Raises :class:`VerifierError` (whole log in ``.log``, last meaningful line as message)
    when the kernel rejects the program with a log, or a
    :class:`~bpfkit.syscalls.BpfSyscallError` naming the likely cause otherwise.
    With ``log_level`` > 0 the log is requested from the first load (a program that loads
    still has its log in ``Program.log``).  ``log_size_max`` caps the buffer: a longer log
    keeps its end (the kernel's log rotates since Linux 6.4), and the message says it was
    truncated.
    """
    ptype = prog_type_number(prog_type)
    code = _encode(insns)
    if not code or len(code) % 8:
        raise KernelError(f"program {name!r}: {len(code)} bytes is not a whole instruction stream")
    ibuf = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(license.encode())
    attr = attrs.ProgLoadAttr(
        prog_type=ptype,
        insn_cnt=len(code) // 8,
        insns=ctypes.addressof(ibuf),
        license=ctypes.addressof(lic),
        kern_version=kern_version,
        prog_flags=prog_flags,
        prog_name=kernel_name(name),
        expected_attach_type=attach_type_number(expected_attach_type),
        attach_btf_id=attach_btf_id,
        attach_prog_fd=attach_prog_fd,
    )
    keep: list[object] = [ibuf, lic]  # buffers must outlive the syscall
    if btf_fd is not None:
        attr.prog_btf_fd = btf_fd
        if func_info:
            fbuf = ctypes.create_string_buffer(func_info, len(func_info))
            keep.append(fbuf)
            attr.func_info = ctypes.addressof(fbuf)
            attr.func_info_rec_size = func_info_rec_size
            attr.func_info_cnt = len(func_info) // func_info_rec_size
        if line_info:
            lbuf = ctypes.create_string_buffer(line_info, len(line_info))
            keep.append(lbuf)
            attr.line_info = ctypes.addressof(lbuf)
            attr.line_info_rec_size = line_info_rec_size
            attr.line_info_cnt = len(line_info) // line_info_rec_size
    if fd_array:
        arr = (ctypes.c_int32 * len(fd_array))(*fd_array)
        keep.append(arr)
        attr.fd_array = ctypes.addressof(arr)

    what = f"loading program {name!r}" if name else "loading a program"
    size = LOG_MIN if log_level else 0
    level = log_level
    log = ""
    while True:
        logbuf = ctypes.create_string_buffer(size) if size else None
        attr.log_level = level if size else 0
        attr.log_size = size
        attr.log_buf = ctypes.addressof(logbuf) if logbuf is not None else 0
        attr.log_true_size = 0
        fd, err = bpf_errno(Cmd.PROG_LOAD, attr)
        if logbuf is not None:
            log = logbuf.value.decode(errors="replace")
        if fd >= 0:
            prog = Program(Fd(fd, "program"), name, ptype)
            prog.log = log
            return prog
        if err == errno.EPERM and not size:
            # A log does not explain missing privileges.
            raise error(Cmd.PROG_LOAD, err, what)
        if not size or not level & 3:
            # log_level 2 (the state after every instruction, which bpfkit.verify explains),
            # keeping a requested statistics bit; level 1 if that does not fit.
            size, level = LOG_MIN, 2 | (log_level & LOG_LEVEL_STATS)
            continue
        truncated = err == errno.ENOSPC or (attr.log_true_size > size)
        cap = min(LOG_MAX, max(log_size_max, LOG_MIN))
        if truncated and size < cap:
            want = attr.log_true_size if attr.log_true_size > size else size * 4
            if level & 2 and want > min(LOG_DETAILED_MAX, cap) and not log_level & 2:
                # Level 1 prints a subset of level 2's lines, so the level-2 size is enough:
                # ask for it at once (each attempt verifies again: a program that hits the
                # 1M-instruction limit costs seconds per attempt).
                size = min(want, cap, LOG_DETAILED_MAX)
                level = 1 | (log_level & LOG_LEVEL_STATS)
                continue
            size = min(want, cap)
            continue
        break
    summary = summarize_log(log)
    ename = errno_name(err)
    if summary:
        msg = f"{what}: the verifier rejected it ({ename}): {summary}"
        if truncated:
            msg += " (log truncated)"
        raise VerifierError(msg, log, err)
    why = cause(Cmd.PROG_LOAD, err)
    if why:
        raise error(Cmd.PROG_LOAD, err, what)
    raise VerifierError(f"{what}: {ename}", log, err)
