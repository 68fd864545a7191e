"""Names of attach points: kernel syscall functions and user-space symbols.

- Syscall probe names are resolved for the running kernel: ``SyS_clone``, ``sys_clone``
  (what kernels before 4.17 called them, still used by tutorials and samples) and other
  architectures' wrappers become whatever this kernel calls the function
  (``__x64_sys_clone`` on x86-64 since 4.17, ``__arm64_sys_clone`` on arm64), looked up in
  ``/proc/kallsyms``.
- Uprobe targets ``PATH:SYMBOL[+OFF]`` become a file offset: the symbol's address (from the
  binary's ``.symtab`` or ``.dynsym``, read with pyelftools) mapped through the ``PT_LOAD``
  segment that contains it, which is what the uprobe PMU and ``uprobe_events`` expect.
  Where it was found is kept in :mod:`bpfkit.cachedir` (``uprobe/``), by the binary's
  identity (device, inode, size, modification time) and the target: the next process
  attaching there reads no ELF (pyelftools is not imported).
"""

from __future__ import annotations

import functools
import marshal
import os
import zlib
from dataclasses import dataclass

from bpfkit import cachedir
from bpfkit.errors import KernelError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

# Prefixes a syscall function has had across kernel versions and architectures.
_SYSCALL_PREFIXES = (
    "__x64_sys_",
    "__ia32_sys_",
    "__arm64_sys_",
    "__riscv_sys_",
    "__s390x_sys_",
    "__s390_sys_",
    "__se_sys_",
    "__do_sys_",
    "SyS_",
    "sys_",
)
_ARCH_PREFIX = {
    "x86_64": "__x64_sys_",
    "aarch64": "__arm64_sys_",
    "riscv64": "__riscv_sys_",
    "s390x": "__s390x_sys_",
}


def syscall_name(function: str) -> str | None:
    """The syscall a probe function names (``SyS_clone`` -> ``clone``), or None."""
    for prefix in _SYSCALL_PREFIXES:
        if function.startswith(prefix) and len(function) > len(prefix):
            return function[len(prefix) :]
    return None


@functools.cache
def _kallsyms_text() -> str:
    try:
        with open("/proc/kallsyms") as f:
            return f.read()
    except OSError as e:
        raise KernelError(f"cannot read /proc/kallsyms: {e.strerror}", e.errno) from None


@dataclass(frozen=True, slots=True)
class Kallsyms:
    """``/proc/kallsyms`` parsed: every symbol's first address, and the function names."""

    addresses: dict[str, int]
    functions: frozenset[str]


@functools.lru_cache(maxsize=2)
def _parse_kallsyms(text: str) -> Kallsyms:
    addresses: dict[str, int] = {}
    functions = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            addresses.setdefault(parts[2], int(parts[0], 16))
            if parts[1] in "tTwW":
                functions.add(parts[2])
    return Kallsyms(addresses, frozenset(functions))


def kallsyms() -> Kallsyms:
    """The running kernel's symbols: the one reader of ``/proc/kallsyms`` (read once)."""
    return _parse_kallsyms(_kallsyms_text())


def bpf_symbols() -> dict[int, str]:
    """The kernel's BPF symbols now (``bpf_prog_TAG_NAME`` of JIT-compiled programs, from
    the ``[bpf]`` lines of ``/proc/kallsyms``) by address; read anew each call, since they
    come and go with programs; empty when the file hides addresses."""
    out: dict[int, str] = {}
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                if not line.rstrip().endswith("[bpf]"):
                    continue
                parts = line.split()
                if len(parts) >= 3 and int(parts[0], 16):
                    out.setdefault(int(parts[0], 16), parts[2])
    except (OSError, ValueError):
        return {}
    return out


def kernel_has_symbol(name: str) -> bool:
    """True if ``/proc/kallsyms`` lists the function ``name``."""
    return name in kallsyms().functions


def resolve_kernel_function(function: str) -> str:
    """The name this kernel gives ``function``: syscall wrappers are renamed, others kept."""
    syscall = syscall_name(function)
    if syscall is None:
        return function
    candidates = []
    arch = _ARCH_PREFIX.get(os.uname().machine)
    if arch:
        candidates.append(arch + syscall)
    candidates += [f"sys_{syscall}", f"SyS_{syscall}", function]
    for name in candidates:
        if kernel_has_symbol(name):
            return name
    raise KernelError(
        f"no kernel function for syscall {syscall!r} (tried {', '.join(candidates)} "
        f"in /proc/kallsyms)"
    )


@dataclass(frozen=True, slots=True)
class UserSymbol:
    """A function of a user-space binary, located for a uprobe."""

    path: str
    symbol: str
    address: int  # st_value (virtual address in the binary)
    offset: int  # file offset the uprobe is placed at


def resolve_user_symbol(path: str, symbol: str) -> UserSymbol:
    """Locate ``SYMBOL[+OFF]`` (or a raw ``0xADDR``) in the ELF binary at ``path``."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise KernelError(f"uprobe target {path}: {e.strerror}", e.errno) from None
    key = repr((os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, symbol))
    name = f"{zlib.crc32(key.encode()):08x}"
    body = cachedir.read(_CACHE, name)
    if body is not None:
        try:
            stored, address, offset = marshal.loads(body)
        except Exception:  # noqa: BLE001 - a damaged entry is a miss
            stored = None
        if stored == key and isinstance(address, int) and isinstance(offset, int):
            return UserSymbol(path, symbol, address, offset)
    found = _resolve_user_symbol(path, symbol)
    cachedir.write(_CACHE, name, marshal.dumps((key, found.address, found.offset)))
    return found


_CACHE = "uprobe"  # bpfkit.cachedir's kind of the entries


def _resolve_user_symbol(path: str, symbol: str) -> UserSymbol:
    # pyelftools is imported here: attaching anything but a uprobe does not need it.
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    name, plus, extra_text = symbol.partition("+")
    try:
        extra = int(extra_text, 0) if plus else 0
    except ValueError:
        raise KernelError(f"uprobe target {symbol!r}: bad offset {extra_text!r}") from None
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            if name.startswith("0x"):
                address = int(name, 16)
            else:
                address = _symbol_address(elf, path, name)
            address += extra
            for seg in elf.iter_segments():
                if seg["p_type"] != "PT_LOAD":
                    continue
                start = seg["p_vaddr"]
                if start <= address < start + seg["p_memsz"]:
                    offset = address - start + seg["p_offset"]
                    return UserSymbol(path, symbol, address, offset)
    except OSError as e:
        raise KernelError(f"uprobe target {path}: {e.strerror}", e.errno) from None
    except ELFError as e:
        raise KernelError(f"uprobe target {path} is not an ELF binary: {e}") from None
    raise KernelError(f"{path}: address {address:#x} of {symbol!r} is in no loadable segment")


def _symbol_address(elf: ELFFile, path: str, name: str) -> int:
    from elftools.elf.sections import SymbolTableSection

    if elf.get_section_by_name(".symtab") is None:
        # Stripped (libraries): .dynsym, looked up through .gnu.hash, which decodes a few
        # symbols, not thousands.  Its answer is the first defined symbol of that name
        # in table order, which the scan below would also take if it is a function.
        from elftools.elf.hash import GNUHashSection

        table = elf.get_section_by_name(".gnu.hash")
        sym = table.get_symbol(name) if isinstance(table, GNUHashSection) else None
        if (
            sym is not None
            and sym["st_shndx"] != "SHN_UNDEF"
            and sym["st_info"]["type"] in ("STT_FUNC", "STT_GNU_IFUNC", "STT_NOTYPE")
        ):
            return int(sym["st_value"])
    undefined = False
    for section_name in (".symtab", ".dynsym"):
        section = elf.get_section_by_name(section_name)
        if not isinstance(section, SymbolTableSection):
            continue
        for sym in section.get_symbol_by_name(name) or ():
            if sym["st_shndx"] == "SHN_UNDEF":
                undefined = True
                continue
            if sym["st_info"]["type"] in ("STT_FUNC", "STT_GNU_IFUNC", "STT_NOTYPE"):
                return int(sym["st_value"])
    if undefined:
        raise KernelError(
            f"{path}: {name!r} is imported, not defined there; probe the library "
            f"that defines it (for example /lib/x86_64-linux-gnu/libc.so.6:{name})"
        )
    raise KernelError(f"{path}: no function symbol {name!r} in .symtab or .dynsym")
