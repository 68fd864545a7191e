"""The running kernel as :mod:`bpfkit.obj.prepare` sees it: its BTF, config, symbols.

API::

    running_kernel() -> RunningKernel     # a KernelView of this machine's kernel (shared)
    kernel_config() -> {CONFIG_*: value}   # /proc/config.gz or /boot/config-$(uname -r)
    kernel_btf_ids() -> {(kind, name): id} # the kernel's BTF names, read once

Everything is read on first use and cached: preparing an object without externs or CO-RE
reads none of it.
"""

from __future__ import annotations

import functools
import gzip
import os
from typing import TYPE_CHECKING

from bpfkit.errors import KernelError
from bpfkit.kernel.features import kernel_version, kernel_version_code

if TYPE_CHECKING:
    from bpfkit.btf.btf import Btf
    from bpfkit.btf.types import Kind

CONFIG_GZ = "/proc/config.gz"


@functools.cache
def kernel_config() -> dict[str, str]:
    """``CONFIG_*`` values of the running kernel (empty if no config is readable)."""
    text = ""
    try:
        with gzip.open(CONFIG_GZ, "rt") as f:
            text = f.read()
    except OSError:
        try:
            with open(f"/boot/config-{os.uname().release}") as f:
                text = f.read()
        except OSError:
            return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            k, _, v = line.partition("=")
            out[k] = v
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            out[line[2:].split()[0]] = "n"
    return out


@functools.cache
def kernel_btf_ids() -> dict[tuple[int, str], int]:
    """``(kind, name) -> type id`` of the kernel's functions, variables and typedefs
    (indexed from the raw BTF: no 5 MB parse for a kfunc's id)."""
    from bpfkit.btf import read_vmlinux
    from bpfkit.btf.parse import name_index
    from bpfkit.btf.types import Kind
    from bpfkit.errors import BtfError

    try:
        return name_index(read_vmlinux(), {Kind.FUNC, Kind.VAR, Kind.TYPEDEF})
    except BtfError as e:
        raise KernelError(str(e)) from e


class RunningKernel:
    """This machine's kernel (a :class:`bpfkit.obj.prepare.KernelView`)."""

    @property
    def version(self) -> tuple[int, int, int]:
        return kernel_version()

    @property
    def version_code(self) -> int:
        return kernel_version_code()

    @property
    def machine(self) -> str:
        return os.uname().machine

    @property
    def config_source(self) -> str:
        return CONFIG_GZ if os.path.exists(CONFIG_GZ) else "the kernel config"

    def btf(self) -> Btf:
        from bpfkit.btf import load_vmlinux

        return load_vmlinux()

    def btf_id(self, kind: Kind, name: str) -> int | None:
        return kernel_btf_ids().get((int(kind), name))

    def config(self) -> dict[str, str]:
        return kernel_config()

    def symbol_address(self, name: str) -> int | None:
        from bpfkit.kernel.symbols import kallsyms

        try:
            return kallsyms().addresses.get(name)
        except KernelError:
            return None


@functools.cache
def running_kernel() -> RunningKernel:
    """The running kernel's view (one per process)."""
    return RunningKernel()
