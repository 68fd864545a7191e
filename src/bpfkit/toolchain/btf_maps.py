"""BTF for the ``.maps`` of a Rust program: what ``clang -g`` writes for C, written by hand.

A map declared with the prelude's ``map!`` is a static ``BtfMapDef`` (five ``u64``: type,
key size, value size, max entries, flags) in the ``.maps`` section.  libbpf and bpfkit's
loader read ``.maps`` through BTF, so ``bpfkit build`` assembles the program once, reads
those numbers back from the object, and adds a ``.BTF`` section (as assembler directives)
that describes each map the way libbpf's ``__uint``/``__type`` macros do::

    struct {                                  /* anonymous */
        int (*type)[TYPE];
        int (*max_entries)[MAX_ENTRIES];
        __uN *key;                            /* KEY_SIZE 1, 2, 4 or 8; else */
        unsigned char (*key)[KEY_SIZE];       /* (none if KEY_SIZE is 0) */
        __uN *value;                          /* the same for the value */
        int (*map_flags)[FLAGS];              /* only if FLAGS != 0 */
    } NAME SEC(".maps");

plus the ``VAR`` of each map and the ``DATASEC .maps`` holding them (layouts of the BTF
format: include/uapi/linux/btf.h).  Keys and values are byte arrays: only their sizes
are known here, so those of 1, 2, 4 or 8 bytes are described as unsigned integers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bpfkit.btf import types as T
from bpfkit.btf.encode import BtfBuilder
from bpfkit.errors import BuildError, ObjectError
from bpfkit.obj.reader import read_object

MAPS_SECTION = ".maps"
DEF_SIZE = 40  # five u64: the prelude's BtfMapDef


@dataclass(frozen=True, slots=True)
class MapDef:
    """One map of the ``.maps`` section, as the program defined it."""

    name: str
    offset: int  # in the section
    size: int  # of the static
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int


def read_map_defs(obj: bytes, filename: str = "<object>") -> list[MapDef]:
    """The ``.maps`` definitions of an object whose maps are ``BtfMapDef`` statics."""
    try:
        spec = read_object(obj, name=filename, programs=False)
    except ObjectError as e:
        raise BuildError(str(e)) from None
    section = next((s for s in spec.sections if s.name == MAPS_SECTION), None)
    if section is None:
        return []
    data = section.data
    endian = ">" if spec.big_endian else "<"
    defs = []
    for sym in spec.symbols:
        if sym.section_index != section.index or sym.type != "STT_OBJECT":
            continue
        off, size = sym.value, sym.size
        if size != DEF_SIZE or off + size > len(data):
            raise BuildError(
                f"{filename}: map {sym.name} in {MAPS_SECTION} is {size} bytes, not a "
                f"bpfkit map definition ({DEF_SIZE}); declare maps with map! and the "
                "prelude's map types"
            )
        fields = struct.unpack_from(f"{endian}5Q", data, off)
        defs.append(MapDef(sym.name, off, size, *fields))
    return sorted(defs, key=lambda d: d.offset)


def _int(btf: BtfBuilder, name: str, size: int, signed: bool) -> int:
    return btf.add(T.Int(0, name, size, T.INT_SIGNED if signed else 0, 0, size * 8))


def _array(btf: BtfBuilder, elem: int, index: int, count: int) -> int:
    return btf.add(T.Array(0, "", elem, index, count))


def _ptr(btf: BtfBuilder, target: int) -> int:
    return btf.add(T.Ptr(0, "", target))


def _data_type(btf: BtfBuilder, size: int, uchar_t: int, int_t: int) -> int:
    """A key or value type of ``size`` bytes: ``__uN`` for integer sizes (so tools show
    numbers, as for C's ``__type(key, __u32)``), else ``unsigned char[size]``."""
    if size in (1, 2, 4, 8):
        return _int(btf, f"__u{size * 8}", size, signed=False)
    return _array(btf, uchar_t, int_t, size)


def maps_btf(defs: list[MapDef], *, big_endian: bool = False) -> bytes:
    """The ``.BTF`` blob describing ``defs`` (each a pointer-member struct, see above)."""
    btf = BtfBuilder()
    int_t = _int(btf, "int", 4, signed=True)
    uchar_t = _int(btf, "unsigned char", 1, signed=False)
    entries = []
    section_size = 0
    for d in defs:
        # Every member is a pointer: 8 bytes, which is also the size of BtfMapDef's u64s.
        members = [
            ("type", _ptr(btf, _array(btf, int_t, int_t, d.type))),
            ("max_entries", _ptr(btf, _array(btf, int_t, int_t, d.max_entries))),
        ]
        if d.key_size:
            members.append(("key", _ptr(btf, _data_type(btf, d.key_size, uchar_t, int_t))))
        if d.value_size:
            members.append(("value", _ptr(btf, _data_type(btf, d.value_size, uchar_t, int_t))))
        if d.flags:
            members.append(("map_flags", _ptr(btf, _array(btf, int_t, int_t, d.flags))))
        layout = tuple(T.Member(name, tid, i * 8 * 8) for i, (name, tid) in enumerate(members))
        # Anonymous structs are never shared.
        st = btf.add(T.Struct(0, "", d.size, layout), share=False)
        var_id = btf.add(T.Var(0, d.name, st, T.Linkage.GLOBAL), share=False)
        entries.append(T.VarSecinfo(var_id, d.offset, d.size))
        section_size = max(section_size, d.offset + d.size)
    btf.add(T.Datasec(0, MAPS_SECTION, section_size, tuple(entries)), share=False)
    return btf.encode(big_endian=big_endian)


def btf_directives(blob: bytes) -> str:
    """``blob`` as a ``.BTF`` section in assembler directives (appended to rustc's output)."""
    lines = ['\t.section\t.BTF,"",@progbits']
    for i in range(0, len(blob), 16):
        lines.append("\t.byte\t" + ",".join(str(b) for b in blob[i : i + 16]))
    return "\n".join(lines) + "\n"
