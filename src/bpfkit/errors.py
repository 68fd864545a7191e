"""The one exception tree of bpfkit.

Every error bpfkit raises on purpose is a :class:`BpfkitError`; its message says
what went wrong, where, and what to do.  The CLI prints the message and exits 1.

The drawing below is checked against the classes (tests/test_errors.py); it says
where a class lives when that is not this module::

    BpfkitError
     ├── IsaError             bytes that are not a valid instruction
     ├── ObjectError          a malformed or unsupported ELF object (names the file)
     ├── AsmError             assembler input error (file:line:column and the text)
     ├── BuildError           a toolchain (rustc, llc, clang) missing or failing
     │   └── CompileError     a Python BPF program bpfkit.lang cannot compile (file:line:column)
     ├── BtfError             malformed .BTF / .BTF.ext
     ├── MapValueError        a Python value that does not fit a map's key or value type
     ├── VmError              the userspace VM stopped a program (pc, instruction, address, region)
     │   ├── Fault            (bpfkit.vm.memory) a refused access, before the VM adds the pc
     │   └── JitUnsupportedError (bpfkit.vm.jit) the compiling engine cannot run a program
     └── KernelError          a bpf()/perf_event_open/tracefs operation failed (errno, cause)
         ├── VerifierError    the kernel's verifier rejected a program; carries the log
         ├── BpfSyscallError  (bpfkit.syscalls.causes) a bpf() command failed (cmd, errno)
         └── BtfLoadError     (bpfkit.kernel.btf_load) the kernel refused BTF; carries its log

``except KernelError`` therefore also catches a program the verifier refused.
"""

from __future__ import annotations


class BpfkitError(Exception):
    """Root of every error bpfkit raises on purpose."""


class IsaError(BpfkitError):
    """Bytes that do not decode to a valid instruction."""


class MapValueError(BpfkitError):
    """A key or value that does not fit a map's type (names the map, the value, the type)."""


class ObjectError(BpfkitError):
    """A file that is not a readable BPF ELF object."""


class AsmError(BpfkitError):
    """An error in assembler input, located at ``file:line:column``."""

    def __init__(
        self,
        message: str,
        *,
        file: str = "<input>",
        line: int = 0,
        column: int = 0,
        text: str = "",
    ) -> None:
        self.file, self.line, self.column, self.text = file, line, column, text
        where = f"{file}:{line}:{column}: " if line else f"{file}: "
        shown = ""
        if text:
            # Keep the tabs of the line before the column, so the caret sits under it.
            pad = "".join(c if c == "\t" else " " for c in text[: max(column - 1, 0)])
            shown = f"\n    {text}\n    {pad}^"
        super().__init__(f"{where}error: {message}{shown}")
        self.message = message


class BuildError(BpfkitError):
    """A toolchain step of ``bpfkit build`` failed or is unavailable."""


class CompileError(BuildError):
    """An error in a Python BPF program (:mod:`bpfkit.lang`), at ``file:line:column``."""

    def __init__(
        self, message: str, *, file: str = "<input>", line: int = 0, column: int = 0, text: str = ""
    ) -> None:
        self.file, self.line, self.column, self.text = file, line, column, text
        where = f"{file}:{line}:{column}: " if line else f"{file}: "
        shown = f"\n    {text}\n    {' ' * max(column - 1, 0)}^" if text else ""
        super().__init__(f"{where}error: {message}{shown}")
        self.message = message


class BtfError(BpfkitError):
    """Malformed or unsupported BTF data."""


class VmError(BpfkitError):
    """The userspace VM stopped a program."""

    def __init__(
        self,
        message: str,
        *,
        pc: int | None = None,
        insn: str = "",
        address: int | None = None,
        region: str = "",
    ) -> None:
        parts = [message]
        if pc is not None:
            parts.append(f"at pc {pc}" + (f" ({insn})" if insn else ""))
        if address is not None:
            parts.append(f"address {address:#x}")
        if region:
            parts.append(f"region {region}")
        super().__init__(", ".join(parts))
        self.pc, self.insn, self.address, self.region = pc, insn, address, region


class KernelError(BpfkitError):
    """A kernel operation failed; ``errno`` is the error number, if any."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class VerifierError(KernelError):
    """A program was rejected by the verifier; ``log`` holds the whole log."""

    def __init__(
        self, message: str, log: str = "", errno: int | None = None, *, program: str = ""
    ) -> None:
        super().__init__(message, errno)
        self.log = log
        self.program = program  # the rejected program's name, when a loader knows it
