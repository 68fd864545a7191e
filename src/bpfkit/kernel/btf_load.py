"""An object's BTF, fixed up for the kernel and loaded (BPF_BTF_LOAD).

API::

    fixup_btf(raw, obj) -> bytes        # DATASEC sizes and VAR offsets from the ELF (pure)
    load_btf(raw, *, what=".BTF") -> Fd # BTF_LOAD; on failure KernelError with the kernel's log

Compilers leave two things for the loader to fill in (libbpf's ``btf_fixup_datasec``):
a DATASEC's size, and the offsets of its variables, which only the ELF section and symbol
tables know.  The kernel rejects a DATASEC of size 0 or with variables out of order, so
they are filled in and sorted here.  It also rejects FUNC types with extern linkage and
VARs with extern linkage (kfunc/ksym/kconfig declarations), which become static
(libbpf rewrites them the same way before loading); so do global ``.text`` functions of
hidden visibility, as libbpf makes them.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Mapping

from bpfkit.errors import KernelError, ObjectError
from bpfkit.obj.spec import ObjectSpec
from bpfkit.syscalls import Cmd, Fd, attrs, bpf_errno
from bpfkit.syscalls.causes import describe

KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC = 12, 13, 14, 15
LOG_SIZE = 1 << 20


class BtfLoadError(KernelError):
    """The kernel refused BTF; ``log`` is its BTF log."""

    def __init__(self, message: str, errno: int, log: str) -> None:
        super().__init__(message, errno)
        self.log = log


def _string(raw: bytes | bytearray, str_start: int, str_len: int, off: int) -> str:
    if off >= str_len:
        return ""
    end = raw.find(b"\0", str_start + off, str_start + str_len)
    return raw[str_start + off : end if end >= 0 else str_start + str_len].decode(errors="replace")


def fixup_btf(
    raw: bytes,
    obj: ObjectSpec,
    layouts: Mapping[str, tuple[int, Mapping[str, int]]] | None = None,
) -> bytes:
    """``raw`` (the object's little-endian ``.BTF``) made acceptable to the kernel.

    ``layouts`` gives the size and variable offsets of DATASECs that have no ELF section
    (``.kconfig``: the loader lays it out).  DATASEC entries that are not variables (kfunc
    declarations in ``.ksyms``) are dropped, as the kernel accepts only VARs there.
    """
    if len(raw) < 24 or raw[:2] != b"\x9f\xeb":
        return raw  # not native little-endian BTF: left as is (the load decides)
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<IIIII", raw, 4)
    t0, s0 = hdr_len + type_off, hdr_len + str_off
    layouts = layouts or {}
    sections = {s.name: s for s in obj.sections}
    symbols: dict[tuple[str, str], int] = {}
    for sym in obj.symbols:
        if sym.section is not None and sym.type in ("STT_OBJECT", "STT_NOTYPE"):
            symbols.setdefault((sym.section, sym.name), sym.value)

    # Global sub-programs with hidden visibility are verified in their caller's context
    # when their FUNC is static (libbpf marks them so: usdt.bpf.h relies on it).
    hidden = {
        sym.name
        for sym in obj.symbols
        if sym.type == "STT_FUNC"
        and sym.section == ".text"
        and sym.bind != "STB_LOCAL"
        and sym.visibility in ("STV_HIDDEN", "STV_INTERNAL")
    }

    def name_of(off: int) -> str:
        return _string(raw, s0, str_len, off)

    from bpfkit.btf.parse import iter_records  # here: an object without BTF never needs it

    walk = list(iter_records(raw, t0, type_len))
    records = [bytearray(raw[pos : pos + n]) for pos, n, _, _ in walk]
    kinds = [(info >> 24) & 0x1F for _, _, _, info in walk]
    for rec in records:
        name_off, info, size = struct.unpack_from("<III", rec)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        if kind == KIND_FUNC and vlen > 1:  # extern linkage: a kfunc declaration
            struct.pack_into("<I", rec, 4, (info & ~0xFFFF) | 1)  # global, as libbpf does
            # The kernel wants every parameter of a FUNC's prototype named; declarations
            # often leave them unnamed, so they borrow the function's name (libbpf too).
            if 0 < size <= len(records) and kinds[size - 1] == KIND_FUNC_PROTO:
                proto = records[size - 1]
                nparams = struct.unpack_from("<I", proto, 4)[0] & 0xFFFF
                for k in range(nparams):
                    pname, ptype = struct.unpack_from("<II", proto, 12 + 8 * k)
                    if ptype and not pname:
                        struct.pack_into("<I", proto, 12 + 8 * k, name_off)
        elif kind == KIND_FUNC and vlen == 1 and hidden and name_of(name_off) in hidden:
            struct.pack_into("<I", rec, 4, info & ~0xFFFF)  # static
        elif kind == KIND_VAR:
            (linkage,) = struct.unpack_from("<I", rec, 12)
            if linkage > 1:
                struct.pack_into("<I", rec, 12, 0)
        elif kind == KIND_DATASEC:
            sec_name = name_of(name_off)
            size_given, offsets = layouts.get(sec_name, (0, {}))
            infos = []
            for i in range(vlen):
                vtype, voff, vsize = struct.unpack_from("<III", rec, 12 + 12 * i)
                if not 0 < vtype <= len(records) or kinds[vtype - 1] != KIND_VAR:
                    continue  # a kfunc (FUNC) in .ksyms
                var_name = name_of(struct.unpack_from("<I", records[vtype - 1])[0])
                voff = offsets.get(var_name, symbols.get((sec_name, var_name), voff))
                if voff > 0xFFFFFFFF:  # BTF offsets are u32: a corrupt symbol value
                    raise ObjectError(
                        f"{sec_name}: variable {var_name!r} is at offset {voff:#x}, "
                        "past any section: the object's symbol table is corrupt"
                    )
                infos.append((voff, vtype, vsize))
            infos.sort()
            sec = sections.get(sec_name)
            if size_given:
                size = size_given
            elif size == 0 and sec is not None:
                size = sec.size
            if size == 0:
                # No ELF section and no layout (typed ksyms): lay the variables out in order.
                off = 0
                for k, (_, vtype, vsize) in enumerate(infos):
                    infos[k] = (off, vtype, vsize)
                    off += max(vsize, 1)
                size = max(off, 1)
            body = bytearray(struct.pack("<III", name_off, (info & ~0xFFFF) | len(infos), size))
            for voff, vtype, vsize in infos:
                body += struct.pack("<III", vtype, voff, vsize)
            rec[:] = body
    types = b"".join(records)
    strings = raw[s0 : s0 + str_len]
    header = bytearray(raw[:hdr_len])
    struct.pack_into("<IIII", header, 8, 0, len(types), len(types), len(strings))
    return bytes(header) + types + strings


KIND_INT, KIND_STRUCT, KIND_UNION, KIND_CONST = 1, 4, 5, 10
KIND_FLOAT, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64 = 16, 17, 18, 19
# Kinds added after the kernels bpfkit may meet, with the version that added them.
NEWER_KINDS = {KIND_FLOAT: "5.13", KIND_DECL_TAG: "5.16", KIND_TYPE_TAG: "5.17", KIND_ENUM64: "6.0"}


def sanitize_btf(raw: bytes, kinds: frozenset[int] = frozenset(NEWER_KINDS)) -> bytes:
    """``raw`` with the BTF kinds in ``kinds`` replaced by ones older kernels know, as
    libbpf does for a kernel that refuses them: FLOAT becomes an empty struct of its size,
    DECL_TAG an anonymous 1-byte INT, TYPE_TAG a CONST, ENUM64 an empty union of its size.
    Type ids do not change, so func_info and map type ids stay valid."""
    if len(raw) < 24 or raw[:2] != b"\x9f\xeb":
        return raw
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<IIIII", raw, 4)
    t0, s0 = hdr_len + type_off, hdr_len + str_off
    out = bytearray()
    from bpfkit.btf.parse import iter_records

    for pos, n, _, info in iter_records(raw, t0, type_len):
        kind = (info >> 24) & 0x1F
        (size,) = struct.unpack_from("<I", raw, pos + 8)
        rec = raw[pos : pos + n]
        if kind in kinds:
            if kind == KIND_FLOAT:
                rec = struct.pack("<III", 0, KIND_STRUCT << 24, size)
            elif kind == KIND_DECL_TAG:
                rec = struct.pack("<IIII", 0, KIND_INT << 24, 1, 8)  # 8 bits, unsigned
            elif kind == KIND_TYPE_TAG:
                rec = struct.pack("<III", 0, KIND_CONST << 24, size)
            elif kind == KIND_ENUM64:
                rec = struct.pack("<III", 0, KIND_UNION << 24, size)
        out += rec
    header = bytearray(raw[:hdr_len])
    struct.pack_into("<IIII", header, 8, 0, len(out), len(out), str_len)
    return bytes(header) + bytes(out) + raw[s0 : s0 + str_len]


def load_btf(raw: bytes, *, what: str = ".BTF") -> Fd:
    """Load BTF into the kernel; on failure the KernelError carries the kernel's BTF log."""
    data = ctypes.create_string_buffer(raw, len(raw))
    attr = attrs.BtfLoadAttr(btf=ctypes.addressof(data), btf_size=len(raw))
    fd, err = bpf_errno(Cmd.BTF_LOAD, attr)
    if fd >= 0:
        return Fd(fd, "btf")
    # Again with a log, to say why.
    log = ctypes.create_string_buffer(LOG_SIZE)
    attr = attrs.BtfLoadAttr(
        btf=ctypes.addressof(data),
        btf_size=len(raw),
        btf_log_buf=ctypes.addressof(log),
        btf_log_size=LOG_SIZE,
        btf_log_level=1,
    )
    fd, err2 = bpf_errno(Cmd.BTF_LOAD, attr)
    if fd >= 0:
        return Fd(fd, "btf")
    text = log.value.decode(errors="replace").strip()
    last = text.splitlines()[-1] if text else ""
    msg = f"loading {what}: {describe(Cmd.BTF_LOAD, err2 or err)}"
    if last:
        msg += f"; kernel says: {last}"
    raise BtfLoadError(msg, err2 or err, text)
