"""Reading (and, for the assembler, writing) BPF ELF relocatable objects.

``read_object(path_or_bytes, *, name=None) -> ObjectSpec`` is the entry point; the
object model lives in :mod:`bpfkit.obj.spec`.

The reader (pyelftools, BTF) is imported on first use of ``read_object``, so that modules
needing only the object model (``bpfkit.obj.spec``) do not pay for it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

    from bpfkit.obj.reader import read_object

__all__ = ["read_object"]


def __getattr__(name: str) -> Any:
    if name == "read_object":
        from bpfkit.obj.reader import read_object

        globals()["read_object"] = read_object  # later look-ups skip this function
        return read_object
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
