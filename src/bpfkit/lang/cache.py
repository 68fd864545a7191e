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

Where: ``$BPFKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/bpfkit``, else ``~/.cache/bpfkit``
(entries under ``lang/``, one per program file: a new entry replaces the file's old
one).  Only a directory owned by the user running bpfkit and not writable by others is
used (bpfkit often runs as root: it must not load a program somebody else could have
written).  ``BPFKIT_NO_CACHE=1`` turns the cache off.

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

from bpfkit import __version__

if TYPE_CHECKING:
    from bpfkit.obj.spec import ObjectSpec

MAGIC = b"bpfkit-lang-cache 1\n"
VMLINUX = "/sys/kernel/btf/vmlinux"


def cache_dir() -> str | None:
    """The directory of entries, or None when caching is off."""
    if os.environ.get("BPFKIT_NO_CACHE"):
        return None
    base = os.environ.get("BPFKIT_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "bpfkit")
    return os.path.join(base, "lang")


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


def _path(directory: str, k: bytes, file: str) -> str:
    return os.path.join(directory, f"{_prefix(file)}{zlib.crc32(k):08x}.bpfc")


def _trusted(path: str) -> bool:
    """A file or directory of ours that nobody else can write."""
    st = os.stat(path)
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def load(k: bytes, file: str) -> dict[str, Any] | None:
    """The entry stored for key ``k`` of program ``file``, or None (no cache, no entry,
    damaged, stale)."""
    directory = cache_dir()
    if directory is None:
        return None
    try:
        path = _path(directory, k, file)
        if not (_trusted(directory) and _trusted(path)):
            return None
        with open(path, "rb") as f:
            data = f.read()
        if not data.startswith(MAGIC):
            return None
        crc, body = data[len(MAGIC) : len(MAGIC) + 8], data[len(MAGIC) + 8 :]
        if crc != f"{zlib.crc32(body):08x}".encode():
            return None
        stored_key, entry = marshal.loads(body)
        if stored_key != k or not isinstance(entry, dict):
            return None
        if not isinstance(entry.get("obj"), bytes) or not isinstance(entry.get("asm"), str):
            return None
        return entry
    except Exception:  # noqa: BLE001 - a damaged or unreadable entry is a miss
        return None


def store(k: bytes, file: str, entry: dict[str, Any]) -> None:
    """Write ``entry`` for key ``k`` of program ``file`` (atomically; silently nothing if
    it cannot), replacing the file's older entries."""
    directory = cache_dir()
    if directory is None:
        return
    tmp = ""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not _trusted(directory):
            return
        body = marshal.dumps((k, entry))
        path = _path(directory, k, file)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + f"{zlib.crc32(body):08x}".encode() + body)
        os.replace(tmp, path)
        tmp = ""
        prefix = _prefix(file)
        with os.scandir(directory) as it:
            old = [e.path for e in it if e.name.startswith(prefix) and e.path != path]
        for stale in old:
            os.unlink(stale)
    except (OSError, ValueError):
        pass  # a read-only home, a full disk: compiling again next time is the cost
    finally:
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass


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
