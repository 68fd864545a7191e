"""Preparing an object for a kernel: pure data in, pure data out (no bpf(), no files).

API::

    btf_for_kernel(obj, btf, *, layouts=None, unsupported=()) -> bytes
        the object's .BTF as the kernel takes it: DATASECs laid out from the ELF, extern
        linkage rewritten (bpfkit.btf.fixup), the kinds in ``unsupported`` replaced
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from bpfkit.btf.btf import Btf
from bpfkit.btf.encode import encode_btf
from bpfkit.btf.fixup import fixup_types, sanitize_types
from bpfkit.btf.types import Kind
from bpfkit.obj.spec import ObjectSpec


def btf_for_kernel(
    obj: ObjectSpec,
    btf: Btf,
    *,
    layouts: Mapping[str, tuple[int, Mapping[str, int]]] | None = None,
    unsupported: Collection[Kind] = (),
) -> bytes:
    """``btf`` (the object's parsed ``.BTF``) fixed up with the object's ELF sections and
    symbols, the kinds in ``unsupported`` replaced, and encoded."""
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
    types = fixup_types(
        btf,
        section_sizes={s.name: s.size for s in obj.sections},
        symbol_offsets=symbols,
        hidden_funcs=hidden,
        layouts=layouts,
    )
    if unsupported:
        types = sanitize_types(types, unsupported)
    return encode_btf(types, big_endian=btf.big_endian, strings=btf.strings.data)
