"""What the VM refuses, as the kernel does: writes to read-only maps, values of the wrong
size from the host, and programs that would need more memory than its budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfkit.asm.assemble import assemble_mnemonic
from bpfkit.errors import VerifierError, VmError
from bpfkit.isa.insn import Insn
from bpfkit.obj.spec import DataSpec, MapSpec, ObjectSpec, ProgramSpec
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
HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello" / "hello.o"


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


@pytest.fixture(scope="module")
def hungry(tmp_path_factory: pytest.TempPathFactory) -> ObjectSpec:
    """Twelve arrays of 256 MiB, a hash of 1 MiB values, a perf event array, a 2 GiB ring."""
    from bpfkit.obj.reader import read_object
    from helpers import clang_bpf

    src = Path(__file__).parent / "memory_hungry.c"
    return read_object(str(clang_bpf(src, tmp_path_factory.mktemp("vm") / "hungry.o")))


def _program(obj: ObjectSpec, name: str) -> ProgramSpec:
    return next(p for p in obj.programs if p.name == name)


@pytest.mark.requires("clang19")
def test_large_arrays_cost_only_the_elements_used(hungry: ObjectSpec) -> None:
    """3 GiB of declared arrays; the program touches one 1 MiB element (it was a
    MemoryError, or 3 GiB and many seconds)."""
    vm = Vm(_program(hungry, "touch_one"), obj=hungry)
    assert vm.run().r0 == 1
    assert (1 << 20) <= vm.memory.used < (1 << 20) + 4096  # the element and .rodata
    value = bytes(5) + b"\1" + bytes((1 << 20) - 6)
    assert vm.maps["a11"].items() == [((7).to_bytes(4, "little"), value)]


@pytest.mark.requires("clang19")
@pytest.mark.parametrize(
    ("program", "what"),
    [
        ("fill_hash", "hash map big_hash"),  # 2,000 entries of 1 MiB
        ("many_samples", "perf_event_array map samples"),  # 2,000 samples of 1 MiB
        ("big_records", "ringbuf map ring"),  # 60 records of 64 MiB
    ],
)
def test_the_memory_budget_stops_a_program_naming_the_map(
    hungry: ObjectSpec, program: str, what: str
) -> None:
    vm = Vm(_program(hungry, program), obj=hungry, memory=96 << 20)
    with pytest.raises(VmError, match=f"{what} needs .* exceeds the VM's memory budget of 96 MiB"):
        vm.run()
    assert vm.memory.used <= 96 << 20


@pytest.mark.requires("clang19")
def test_a_printk_loop_uses_its_budget_without_allocating(hungry: ObjectSpec) -> None:
    vm = Vm(_program(hungry, "printk_loop"), obj=hungry, budget=200_000)
    with pytest.raises(VmError, match="instruction budget of 200000 exhausted"):
        vm.run()
    assert vm.memory.used < 4096  # .rodata: the format string


def test_cli_memory_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bpfkit.cli.main import main

    assert main(["vm", "--memory", "-1", str(HELLO)]) == 1
    assert "--memory must be at least 0 MiB" in capsys.readouterr().err
    assert main(["vm", "--memory", "1", str(HELLO)]) == 0
