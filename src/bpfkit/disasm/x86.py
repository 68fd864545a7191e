"""x86-64 machine code as text, by LLVM's disassembler: what ``bpftool prog dump jited``
prints for a JIT image when bpftool is built with LLVM.

bpftool calls LLVM's C disassembler API (``LLVMCreateDisasm`` for the host triple, a
symbol callback that only sets the reference type to "none", ``LLVMDisasmInstruction``
with the instruction's kernel address as its PC); this module makes the same calls,
through ctypes, on the libLLVM of the ``llvm-19`` package (another LLVM is taken if 19 is
missing).  So the text is LLVM's AT&T syntax exactly as bpftool shows it (``\\tpushq\\t%rbp``,
decimal immediates, branch and call targets as absolute addresses).

The one module of this "anywhere" package allowed ``ctypes`` (``CTYPES_ALLOWED`` in
tests/test_layers.py): it calls LLVM's library, never the kernel.

API::

    disassemble(code, address=0) -> list[X86Insn]    # raises BpfkitError without libLLVM
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass
from typing import Any

from bpfkit.errors import BpfkitError

# Where Debian's llvm-N packages put libLLVM; 19 first (the tests' llvm-mc-19 is the oracle).
_LIBRARIES = (
    "libLLVM.so.19.1",
    "libLLVM-19.so",
    "/usr/lib/llvm-19/lib/libLLVM.so.19.1",
    "/usr/lib/llvm-19/lib/libLLVM.so.1",
    "libLLVM-18.so",
    "libLLVM-17.so",
    "libLLVM-16.so",
    "libLLVM-15.so",
    "libLLVM-14.so",
)
_TRIPLE = b"x86_64-pc-linux-gnu"
_BUF = 256  # bpftool's buffer for one instruction's text

# const char *(*LLVMSymbolLookupCallback)(void *, uint64_t, uint64_t *, uint64_t, const char **)
_Lookup = ctypes.CFUNCTYPE(
    ctypes.c_char_p,
    ctypes.c_void_p,
    ctypes.c_uint64,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.c_uint64,
    ctypes.POINTER(ctypes.c_char_p),
)


def _lookup(_info: object, _value: int, ref_type: Any, _pc: int, _name: object) -> None:
    # LLVMDisassembler_ReferenceType_InOut_None: branch targets print as addresses.
    ref_type[0] = 0
    return None


_no_symbols: Any = _Lookup(_lookup)  # kept alive as long as the module


@dataclass(frozen=True, slots=True)
class X86Insn:
    """One instruction: its offset in the image, its bytes, and LLVM's text (with the
    leading tab LLVM writes: ``"\\tmovq\\t%rsp, %rbp"``)."""

    offset: int
    data: bytes
    text: str

    @property
    def operation(self) -> str:
        """The mnemonic (bpftool's JSON ``operation``)."""
        parts = self.text.split()
        return parts[0] if parts else ""

    @property
    def operands(self) -> list[str]:
        """The operands as bpftool's JSON splits them (on blanks, commas and parentheses)."""
        rest = self.text.strip().split(None, 1)
        if len(rest) < 2:
            return []
        for sep in ",()\t":
            rest[1] = rest[1].replace(sep, " ")
        return rest[1].split()


class _Llvm:
    def __init__(self, lib: ctypes.CDLL) -> None:
        for init in (
            "LLVMInitializeX86TargetInfo",
            "LLVMInitializeX86TargetMC",
            "LLVMInitializeX86Disassembler",
        ):
            getattr(lib, init)()
        lib.LLVMCreateDisasm.restype = ctypes.c_void_p
        lib.LLVMCreateDisasm.argtypes = [
            ctypes.c_char_p,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_void_p,
            _Lookup,
        ]
        lib.LLVMDisasmInstruction.restype = ctypes.c_size_t
        lib.LLVMDisasmInstruction.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_uint64,
            ctypes.c_uint64,
            ctypes.c_char_p,
            ctypes.c_size_t,
        ]
        self.lib = lib
        self.ctx = lib.LLVMCreateDisasm(_TRIPLE, None, 0, None, _no_symbols)
        if not self.ctx:
            raise BpfkitError("LLVM could not make an x86-64 disassembler")


@functools.lru_cache(maxsize=1)
def _llvm() -> _Llvm:
    tried = []
    for name in _LIBRARIES:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            tried.append(name)
            continue
        if hasattr(lib, "LLVMCreateDisasm"):
            return _Llvm(lib)
    raise BpfkitError(
        "disassembling JIT-compiled code needs LLVM's library (libLLVM, as bpftool uses it); "
        "install it: apt-get install llvm-19 (tried " + ", ".join(tried) + ")"
    )


def disassemble(code: bytes, address: int = 0) -> list[X86Insn]:
    """The instructions of ``code`` placed at ``address`` (branch targets are absolute).
    Bytes LLVM cannot decode end the listing there, as in bpftool."""
    llvm = _llvm()
    buf = ctypes.create_string_buffer(_BUF)
    out: list[X86Insn] = []
    pc = 0
    while pc < len(code):
        buf.value = b""
        rest = code[pc:]
        n = int(llvm.lib.LLVMDisasmInstruction(llvm.ctx, rest, len(rest), address + pc, buf, _BUF))
        if n <= 0:
            out.append(X86Insn(pc, b"", buf.value.decode(errors="replace")))
            break
        out.append(X86Insn(pc, rest[:n], buf.value.decode(errors="replace")))
        pc += n
    return out
