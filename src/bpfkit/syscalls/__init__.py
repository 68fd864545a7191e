"""The one place calling ``bpf()`` (perf_event_open and ioctls live in :mod:`.perf`).

API::

    from bpfkit.syscalls import bpf, Cmd, Fd, attrs
    attr = attrs.MapCreateAttr(map_type=1, key_size=4, value_size=8, max_entries=16)
    with Fd(bpf(Cmd.MAP_CREATE, attr), "map") as fd: ...

- :func:`bpf` ``(cmd, attr, context="") -> int`` raises :class:`BpfSyscallError`
  (a :class:`~bpfkit.errors.KernelError` with ``.cmd`` and ``.errno``) whose message names
  the command and the likely cause; :func:`bpf_errno` returns ``(result, errno)`` instead.
- :func:`set_backend` / :func:`use_backend` swap the function that really calls the kernel
  (``backend(cmd, attr) -> int`` raising ``OSError``) for a fake one.
- :mod:`.attrs`: one ctypes structure per command (``ProgLoadAttr``, ``MapCreateAttr``,
  ``MapElemAttr``, ``MapFdAttr``, ``ObjAttr``, ``LinkCreateAttr``, ``RawTracepointAttr``,
  ``TestRunAttr``, ``BtfLoadAttr``, ``InfoAttr``, ``GetIdAttr``) and the info structures
  (``ProgInfo``, ``MapInfo``, ``BtfInfo``).
- :class:`Fd`: an owned descriptor (``close()``, context manager, finalizer safety net).
"""

from __future__ import annotations

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

    from bpfkit.syscalls import attrs
    from bpfkit.syscalls.attrs import Cmd
    from bpfkit.syscalls.backend import (
        Backend,
        bpf,
        bpf_errno,
        get_backend,
        real_backend,
        set_backend,
        syscall_number,
        use_backend,
    )
    from bpfkit.syscalls.causes import BpfSyscallError, describe
    from bpfkit.syscalls.fd import Fd

# name -> the module that owns it, imported on first use: importing a module of this
# package (``bpfkit.syscalls.raw`` for a replayed load) runs this file, which must stay cheap.
_LAZY = {
    "attrs": "bpfkit.syscalls.attrs",
    "Cmd": "bpfkit.syscalls.attrs",
    "Backend": "bpfkit.syscalls.backend",
    "bpf": "bpfkit.syscalls.backend",
    "bpf_errno": "bpfkit.syscalls.backend",
    "get_backend": "bpfkit.syscalls.backend",
    "real_backend": "bpfkit.syscalls.backend",
    "set_backend": "bpfkit.syscalls.backend",
    "syscall_number": "bpfkit.syscalls.backend",
    "use_backend": "bpfkit.syscalls.backend",
    "BpfSyscallError": "bpfkit.syscalls.causes",
    "describe": "bpfkit.syscalls.causes",
    "Fd": "bpfkit.syscalls.fd",
}

__all__ = [
    "Backend",
    "BpfSyscallError",
    "Cmd",
    "Fd",
    "attrs",
    "bpf",
    "bpf_errno",
    "describe",
    "get_backend",
    "real_backend",
    "set_backend",
    "syscall_number",
    "use_backend",
]


def __getattr__(name: str) -> Any:
    import importlib

    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name == "attrs":
        return importlib.import_module(module)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
