"""What the VM refuses, as the kernel does: writes to read-only maps, values of the wrong
size from the host, and programs that would need more memory than its budget."""

from __future__ import annotations

import pytest

from bpfkit.asm.assemble import assemble_mnemonic
from bpfkit.errors import VerifierError, VmError
from bpfkit.isa.insn import Insn
from bpfkit.obj.spec import DataSpec, MapSpec
from bpfkit.vm import ArrayMap, HashMap, Vm, map_from_spec
from bpfkit.vm.maps import map_from_data

UPDATE = """
    stw [%r10-4], 0
    stdw [%r10-16], 5
    lddw %r1, 0xa9
    mov %r2, %r10
    add %r2, -4
    mov %r3, %r10
    add %r3, -16
    mov %r4, 0
    call 2
    exit
"""
RDONLY_PROG = 1 << 7


def with_map(text: str, fd: int = 1) -> list[Insn]:
    out = []
    for insn in assemble_mnemonic(text):
        if insn.opcode == 0x18 and insn.imm == 0xA9:
            insn = Insn(0x18, insn.dst, 1, 0, fd)
        out.append(insn)
    return out


def test_programs_cannot_update_read_only_maps() -> None:
    rodata = map_from_data(DataSpec(".rodata", 3, 8, bytes(8), readonly=True))
    flagged = map_from_spec(MapSpec("ro", ".maps", 0, 2, 4, 8, 1, flags=RDONLY_PROG))
    for vmap in (rodata, flagged):
        with pytest.raises(VmError, match="write into map forbidden"):
            Vm(with_map(UPDATE), maps={1: vmap}).run()
        assert vmap.items()[0][1] == bytes(8)  # unchanged
    writable = ArrayMap("rw", 4, 8, 1)
    assert Vm(with_map(UPDATE), maps={1: writable}).run().r0 == 0
    assert writable.get(0) == (5).to_bytes(8, "little")


@pytest.mark.requires("bpf")
def test_the_kernel_refuses_the_same_program() -> None:
    """The oracle: the verifier rejects updating a BPF_F_RDONLY_PROG map."""
    from bpfkit.kernel.maps import create_map
    from bpfkit.kernel.program import load_program

    with create_map("array", 4, 8, 1, flags=RDONLY_PROG) as m:
        with pytest.raises(VerifierError, match="write into map forbidden"):
            load_program(with_map(UPDATE, m.fd), "socket_filter").close()


def test_frozen_data_and_short_values_are_refused_from_the_host() -> None:
    rodata = map_from_data(DataSpec(".rodata", 3, 8, bytes(8), readonly=True))
    with pytest.raises(VmError, match="frozen"):
        rodata.update(bytes(4), bytes(8), 0)
    for vmap in (ArrayMap("a", 4, 8, 2), HashMap("h", 4, 8, 2)):
        with pytest.raises(VmError, match="8 bytes"):
            vmap.update(bytes(4), b"x", 0)  # was BufferError (array) / a short value (hash)
        assert vmap.update(bytes(4), bytes(8), 0) == 0
