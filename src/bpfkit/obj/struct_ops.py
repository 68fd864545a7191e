"""Where a ``struct_ops`` program plugs into the kernel (libbpf's rules, for loading).

A ``SEC("struct_ops/NAME")`` program is a method of a kernel operations table such as
``struct tcp_congestion_ops``.  The object says which one: a variable in ``.struct_ops``
(or ``.struct_ops.link``) of that struct type holds, at the member's offset, a relocation
to the program.  The kernel loads the program with ``attach_btf_id`` = the kernel's id of
the struct and ``expected_attach_type`` = the index of the member (by name) in the
kernel's struct, as libbpf sets them.  Registering the table (the struct_ops map) is not
done here.

API::

    struct_ops_target(obj, program, kernel) -> (kernel struct type id, member index)

Pure: the object's parsed BTF (carried on the spec) and the kernel's BTF are given.
"""

from __future__ import annotations

from bpfkit.btf import types as T
from bpfkit.btf.btf import Btf
from bpfkit.errors import KernelError, ObjectError
from bpfkit.obj.spec import ObjectSpec

_SECTIONS = (".struct_ops", ".struct_ops.link")


def _essential(name: str) -> str:
    i = name.find("___")
    return name[:i] if i > 0 else name


def _local_member(obj: ObjectSpec, local: Btf, program: str) -> tuple[T.Struct, str]:
    """The local struct type and member name whose slot points to ``program``."""
    for sec_name in _SECTIONS:
        for rel in obj.relocations.get(sec_name, ()):
            if rel.symbol != program:
                continue
            # The variable holding the slot, by its ELF symbol (the compiler leaves the
            # DATASEC's offsets to the loader).
            for sym in obj.symbols:
                if sym.section != sec_name or not sym.value <= rel.offset < sym.value + sym.size:
                    continue
                for var in local.find_all(sym.name, T.Kind.VAR):
                    assert isinstance(var, T.Var)
                    st = local.resolve(var.type)
                    if not isinstance(st, T.Struct):
                        continue
                    bit = (rel.offset - sym.value) * 8
                    for m in st.members:
                        if m.bit_offset == bit:
                            return st, m.name
    raise ObjectError(
        f"{obj.path}: struct_ops program {program!r} is not used by any struct in "
        f"{' or '.join(_SECTIONS)}: nothing says which method it implements"
    )


def struct_ops_target(obj: ObjectSpec, program: str, kernel: Btf) -> tuple[int, int]:
    """``(attach_btf_id, expected_attach_type)`` for struct_ops program ``program``;
    ``kernel`` is the target kernel's BTF."""
    local = obj.parsed_btf()
    if local is None:
        raise ObjectError(f"{obj.path}: struct_ops programs need the object's .BTF (clang -g)")
    st, member = _local_member(obj, local, program)
    name = _essential(st.name)
    for cand in kernel.find_all(name, T.Kind.STRUCT):
        assert isinstance(cand, T.Struct)
        for i, m in enumerate(cand.members):
            if m.name == member:
                return cand.id, i
        raise KernelError(f"struct {name} of this kernel has no member {member!r}")
    raise KernelError(f"struct_ops: this kernel has no struct {name!r} (for {program!r})")
