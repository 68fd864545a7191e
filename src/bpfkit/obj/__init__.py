"""Reading (and, for the assembler, writing) BPF ELF relocatable objects.

``read_object(path_or_bytes, *, name=None) -> ObjectSpec`` is the entry point; the
object model lives in :mod:`bpfkit.obj.spec`.
"""

from bpfkit.obj.reader import read_object

__all__ = ["read_object"]
