"""The on-disk cache of compiled program files: a second ``python prog.py`` skips compiling.

An entry holds what compiling produced (the object's bytes, the assembly text, the stack
sizes) and is found by everything compiling depends on: the program file's source and
path, the values its module-level names hold (map sizes, struct layouts, constants,
which may come from other modules), bpfkit's version and the size and time of every one of
its source files (an edited compiler invalidates the cache, as a new version does), the
Python version, and the running kernel (its release and build, and its BTF, which decides
tracepoint context layouts and CO-RE offsets).  The whole key is stored in the entry and
compared, so the file name's short hash may collide without harm; a checksum over the
entry catches a damaged file.  Anything unreadable, damaged or stale is a miss (the
program is compiled again and the entry rewritten), never an error.

Where and how entries are kept (``lang/`` of bpfkit's cache directory, owned by the user
and writable by nobody else, ``BPFKIT_NO_CACHE=1`` to turn it off): :mod:`bpfkit.cachedir`.
One entry per program file: a new one replaces the file's old one.

Stored with :mod:`marshal`, which costs no import (the point of the cache), except the
object as bpfkit reads it (its ObjectSpec, with the BTF parsed), which is pickled: loading
it back skips the ELF reader and the BTF parser.  Unpickling runs no code but the classes'
own; the ownership check above is what makes the file trustworthy, as for ``.pyc`` files.
"""

from __future__ import annotations

import marshal
import os
import sys
import zlib
from typing import TYPE_CHECKING, Any

from bpfkit import __version__, cachedir

if TYPE_CHECKING:
    from bpfkit.obj.spec import ObjectSpec

KIND = "lang"
VMLINUX = "/sys/kernel/btf/vmlinux"


def cache_dir() -> str | None:
    """The directory of entries, or None when caching is off."""
    return cachedir.cache_dir(KIND)


def _code_stamp() -> list[tuple[str, int, int]]:
    """(path, mtime, size) of every source file of the bpfkit package."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out: list[tuple[str, int, int]] = []
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.name.endswith(".py"):
                    st = e.stat()
                    out.append((e.path[len(root) :], st.st_mtime_ns, st.st_size))
                elif e.name != "__pycache__" and e.is_dir():
                    stack.append(e.path)
    out.sort()
    return out


def _kernel_stamp() -> tuple[str, ...]:
    u = os.uname()
    try:
        st = os.stat(VMLINUX)
        btf = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        btf = "-"
    return (u.release, u.version, u.machine, btf)


def _describe(value: Any) -> str:
    """What a module-level value contributes to the object (its type, size, layout)."""
    from bpfkit.lang.decl import MapDecl, section_of
    from bpfkit.lang.types import bpf_type

    if isinstance(value, (bool, int, float, str, bytes)):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, MapDecl):
        return (
            f"{type(value).__name__}[{_type(value.key)}, {_type(value.value)}]"
            f"({value.max_entries}, {value.flags})"
        )
    section = section_of(value)
    if section is not None:
        return repr(section)
    t = bpf_type(value)
    if t is not None:
        return _type(t)
    if isinstance(value, tuple):  # Const[T]
        return "(" + ", ".join(_describe(v) for v in value) + ")"
    return type(value).__name__


def _type(t: Any) -> str:
    from bpfkit.lang.types import ArrayType, StructType

    if isinstance(t, StructType):
        fields = ", ".join(f"{f.name}@{f.offset}:{_type(f.type)}" for f in t.fields.values())
        return f"struct {t.name}{{{fields}}}/{t.size}/{t.align}"
    if isinstance(t, ArrayType):
        return f"{_type(t.elem)}[{t.count}]"
    return repr(t)


def key(source: str, namespace: dict[str, Any], file: str) -> bytes:
    """Everything the object compiled from ``source`` depends on, as bytes."""
    names = sorted(
        f"{n}={_describe(v)}"
        for n, v in namespace.items()
        if not n.startswith("__") and type(v).__name__ != "module"
    )
    parts: list[Any] = [
        __version__,
        sys.version_info[:3],
        _kernel_stamp(),
        _code_stamp(),
        os.path.abspath(file),
        names,
    ]
    return marshal.dumps((repr(parts), source))


def _prefix(file: str) -> str:
    """Entries of one program file start with this (a new one replaces the old)."""
    return f"{zlib.crc32(os.path.abspath(file).encode()):08x}-"


def _name(k: bytes, file: str) -> str:
    return f"{_prefix(file)}{zlib.crc32(k):08x}.bpfc"


def load(k: bytes, file: str) -> dict[str, Any] | None:
    """The entry stored for key ``k`` of program ``file``, or None (no cache, no entry,
    damaged, stale)."""
    body = cachedir.read(KIND, _name(k, file))
    if body is None:
        return None
    try:
        stored_key, entry = marshal.loads(body)
    except Exception:  # noqa: BLE001 - a damaged entry is a miss
        return None
    if stored_key != k or not isinstance(entry, dict):
        return None
    if not isinstance(entry.get("obj"), bytes) or not isinstance(entry.get("asm"), str):
        return None
    return entry


def store(k: bytes, file: str, entry: dict[str, Any]) -> None:
    """Write ``entry`` for key ``k`` of program ``file`` (atomically; silently nothing if
    it cannot), replacing the file's older entries."""
    try:
        body = marshal.dumps((k, entry))
    except ValueError:  # not a plain value: nothing to store
        return
    cachedir.write(KIND, _name(k, file), body, replaces=_prefix(file))


def dump_spec(spec: ObjectSpec) -> bytes | None:
    """``spec`` (with its BTF parsed) as bytes for an entry; None if it cannot be."""
    import pickle

    try:
        spec.parsed_btf()
        spec.parsed_btf_ext()
        return pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - the entry is still good without it
        return None


def load_spec(data: object) -> ObjectSpec | None:
    """The ObjectSpec :func:`dump_spec` stored, or None (then the object is read again)."""
    if not isinstance(data, bytes):
        return None
    import pickle

    from bpfkit.obj.spec import ObjectSpec

    try:
        spec = pickle.loads(data)  # noqa: S301 - our own entry, in a directory only we write
    except Exception:  # noqa: BLE001 - damaged: read the object instead
        return None
    return spec if isinstance(spec, ObjectSpec) else None
