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
(entries under ``lang/``).  Only a directory owned by the user running bpfkit and not
writable by others is used (bpfkit often runs as root: it must not load a program somebody
else could have written).  ``BPFKIT_NO_CACHE=1`` turns the cache off.

Stored with :mod:`marshal` (plain values only, no code): no import costs here, which is the
point of the cache.
"""

from __future__ import annotations

import marshal
import os
import sys
import zlib
from typing import Any

from bpfkit import __version__

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


def _path(directory: str, k: bytes) -> str:
    return os.path.join(directory, f"{zlib.crc32(k):08x}-{len(k):x}.bpfc")


def _trusted(path: str) -> bool:
    """A file or directory of ours that nobody else can write."""
    st = os.stat(path)
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def load(k: bytes) -> dict[str, Any] | None:
    """The entry stored for key ``k``, or None (no cache, no entry, damaged, stale)."""
    directory = cache_dir()
    if directory is None:
        return None
    try:
        path = _path(directory, k)
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


def store(k: bytes, entry: dict[str, Any]) -> None:
    """Write ``entry`` for key ``k`` (atomically; silently nothing if it cannot)."""
    directory = cache_dir()
    if directory is None:
        return
    tmp = ""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not _trusted(directory):
            return
        body = marshal.dumps((k, entry))
        path = _path(directory, k)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + f"{zlib.crc32(body):08x}".encode() + body)
        os.replace(tmp, path)
        tmp = ""
    except (OSError, ValueError):
        pass  # a read-only home, a full disk: compiling again next time is the cost
    finally:
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass
