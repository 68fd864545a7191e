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

Next to an entry, a *prepared* entry (``.prep``) keeps what
:func:`bpfkit.obj.prepare.prepare` made of the object for the running kernel (CO-RE
applied, BTF fixed up, programs linked: a :class:`~bpfkit.obj.prepare.PreparedObject`,
pickled without its parsed BTF), found by the entry's key, the kernel's identity *including
its boot* (``/proc/sys/kernel/random/boot_id``: kernel symbol addresses and module BTF
change with each boot) and the load's options.  A second run then loads it as it is:
neither the BTF parser, nor CO-RE, nor the linker is imported before the programs are
attached.  Loads that tag printk lines (``trace=True``: the tag names the process) are not
kept.
"""

from __future__ import annotations

import marshal
import os
import sys
import zlib

from bpfkit import __version__, cachedir

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

    from bpfkit.obj.prepare import PreparedObject
    from bpfkit.obj.spec import ObjectSpec

KIND = "lang"


def cache_dir() -> str | None:
    """The directory of entries, or None when caching is off."""
    return cachedir.cache_dir(KIND)


def _kernel_stamp() -> tuple[str, ...]:
    u = os.uname()
    return (u.release, u.version, u.machine, cachedir.vmlinux_stamp())


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
        cachedir.code_stamp(),
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


def _boot() -> tuple[str, ...]:
    """The running kernel and this boot of it (a prepared object is good for one boot)."""
    return (*_kernel_stamp(), cachedir.boot_id() or "")


def _prep_name(k: bytes, file: str) -> str:
    return f"{_prefix(file)}{zlib.crc32(k):08x}.prep"


def load_prepared(k: bytes, file: str, options: str) -> PreparedObject | None:
    """The prepared object stored for entry key ``k`` of ``file``, this kernel's boot and
    ``options`` (how it is loaded), or None."""
    boot = _boot()
    if not boot[-1]:
        return None  # no boot id: a stored object could be another boot's
    body = cachedir.read(KIND, _prep_name(k, file))
    if body is None:
        return None
    try:
        stored_key, stored_boot, stored_options, data = marshal.loads(body)
    except Exception:  # noqa: BLE001 - a damaged entry is a miss
        return None
    if (stored_key, stored_boot, stored_options) != (k, boot, options):
        return None
    if not isinstance(data, bytes):
        return None
    import pickle

    from bpfkit.obj.prepare import PreparedObject

    try:
        prepared = pickle.loads(data)  # noqa: S301 - our own entry, in a directory only we write
    except Exception:  # noqa: BLE001 - damaged: prepare again
        return None
    return prepared if isinstance(prepared, PreparedObject) else None


def store_prepared(k: bytes, file: str, options: str, prepared: PreparedObject) -> None:
    """Keep ``prepared`` (see :func:`load_prepared`); silently nothing if it cannot be."""
    boot = _boot()
    if not boot[-1]:
        return
    import pickle
    from dataclasses import replace

    try:
        # Without the parsed BTF: loading needs only the bytes (prepared.btf).
        bare = replace(prepared, spec=replace(prepared.spec, parsed={}))
        data = pickle.dumps(bare, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - not storable: every run prepares
        return
    cachedir.write(KIND, _prep_name(k, file), marshal.dumps((k, boot, options, data)))
