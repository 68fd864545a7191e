"""The examples: each built with bpfkit build, checked against an external oracle
(the seed's listing, bpftool/libbpf, the kernel's verifier) and run on the kernel."""

from __future__ import annotations

import os
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bpfkit.isa.insn import Insn, decode_all
from bpfkit.toolchain import build

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FP = 10  # r10, the frame pointer


def _section(path: Path, name: str) -> bytes:
    with path.open("rb") as f:
        section = ELFFile(f).get_section_by_name(name)
        assert section is not None, f"{path} has no section {name}"
        return bytes(section.data())


Shape = tuple[int, int, int, int, int, int]


def _stack_offsets(insns: list[Insn]) -> tuple[list[Shape], list[int]]:
    """Each instruction with its stack offset zeroed, and the stack offsets in order.

    A stack offset is the ``off`` of a load/store based on r10, or the immediate added to a
    register that holds a copy of r10 (``r1 = r10; r1 += -32``)."""
    shapes: list[Shape] = []
    offsets: list[int] = []
    fp_copies: set[int] = set()
    for insn in insns:
        op, off, imm = insn.opcode, insn.off, insn.imm
        cls = op & 7
        base = insn.src if cls == 1 else insn.dst  # LDX reads [src+off], ST/STX write [dst+off]
        if cls in (1, 2, 3) and base == FP:
            offsets.append(off)
            off = 0
        if op == 0xBF:  # r = r
            if insn.src == FP:
                fp_copies.add(insn.dst)
            else:
                fp_copies.discard(insn.dst)
        elif op == 0x07 and insn.dst in fp_copies:  # r += imm on a copy of the frame pointer
            offsets.append(imm)
            imm = 0
        elif op == 0x85:
            fp_copies -= {0, 1, 2, 3, 4, 5}  # a call clobbers r0-r5
        elif cls in (4, 7) or op == 0x18:
            fp_copies.discard(insn.dst)
        shapes.append((op, insn.dst, insn.src, off, imm, insn.imm_hi))
    return shapes, offsets


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory where the tests build the examples (once per name)."""
    yield tmp_path_factory.mktemp("examples")


def _build(out_dir: Path, rel: str) -> Path:
    out = out_dir / (Path(rel).stem + ".o")
    if not out.exists():
        build(EXAMPLES / rel, out)
    return out


def _bpftool_loads(obj: Path, tmp: Path) -> None:
    """bpftool (libbpf) loads every program of ``obj`` through the kernel's verifier."""
    pin = Path("/sys/fs/bpf") / f"bpfkit-test-{os.getpid()}-{obj.stem}"
    try:
        res = subprocess.run(
            ["bpftool", "prog", "loadall", str(obj), str(pin)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr[-3000:]
        assert os.listdir(pin)
    finally:
        subprocess.run(["rm", "-rf", str(pin)], check=False)


@contextmanager
def _cloning(every: float = 0.05) -> Iterator[subprocess.Popen[bytes]]:
    """A shell that forks until the block ends: dash forks with the clone syscall, which
    the hello programs' tracepoint (syscalls:sys_enter_clone) sees.  (Python's subprocess
    uses vfork, which it does not: a test kicking with subprocess.run would depend on
    other processes of the machine calling clone.)"""
    proc = subprocess.Popen(["sh", "-c", f"while :; do /bin/true & wait; sleep {every}; done"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


# --- hello.rs: the seed, in Rust --------------------------------------------------------


@pytest.mark.requires("rustc")
def test_hello_rs_is_the_seeds_program_up_to_stack_offsets(built: Path) -> None:
    obj = _build(built, "hello/hello.rs")
    ours = decode_all(_section(obj, "kprobe/SyS_clone"))
    seed = decode_all(_section(EXAMPLES / "hello" / "hello.o", "kprobe/SyS_clone"))
    our_shapes, our_offsets = _stack_offsets(ours)
    seed_shapes, seed_offsets = _stack_offsets(seed)
    assert our_shapes == seed_shapes  # opcodes, registers, immediates (the string), call 6
    assert len(our_offsets) == len(seed_offsets) == 4
    # The same stack layout, moved: one constant shift maps the seed's slots onto ours.
    shift = {o - s for o, s in zip(our_offsets, seed_offsets, strict=True)}
    assert len(shift) == 1, (seed_offsets, our_offsets)
    assert _section(obj, "license") == b"GPL\0"
    assert _section(obj, "version") == struct.pack("<I", 0xFFFFFFFE)
    # Like the seed's object: no data section (rustc's unused copy of the string is dropped).
    with obj.open("rb") as f:
        names = {s.name for s in ELFFile(f).iter_sections()}
    assert not {n for n in names if n.startswith((".rodata", ".data", ".bss"))}, names


@pytest.mark.requires("rustc", "bpf", "bpftool")
def test_hello_rs_passes_the_verifier_via_bpftool(built: Path, tmp_path: Path) -> None:
    _bpftool_loads(_build(built, "hello/hello.rs"), tmp_path)


@pytest.mark.requires("rustc", "bpf", "tracepoint")
def test_hello_rs_prints_hello_from_rust(built: Path) -> None:
    from bpfkit.kernel.session import Session

    obj = _build(built, "hello/hello.rs")
    with Session(obj) as s, _cloning() as shell:
        # Every program's bpf_trace_printk reaches our instance, and other processes may
        # run hello too: count only the lines of our shell's clone() calls.
        hellos = 0
        for line in s.lines(duration=10):
            hellos += line.pid == shell.pid and line.message == "hello from rust"
            if hellos == 2:
                break
    assert hellos == 2


# --- counter.rs: a hash map from pid to count, in Rust -----------------------------------


@pytest.mark.requires("rustc", "bpf", "bpftool")
def test_counter_rs_maps_load_with_libbpf(built: Path, tmp_path: Path) -> None:
    # bpftool (libbpf 1.1) reads the .maps through the BTF bpfkit build wrote.
    _bpftool_loads(_build(built, "counter/counter.rs"), tmp_path)


@pytest.mark.requires("rustc", "bpf", "tracepoint")
def test_counter_rs_counts_openat_per_pid(built: Path) -> None:
    from bpfkit.kernel.session import Session

    obj = _build(built, "counter/counter.rs")
    with Session(obj, trace=False) as s:
        counts = s.maps["COUNTS"]
        before = counts.get(os.getpid())
        for _ in range(25):
            os.close(os.open("/etc/hostname", os.O_RDONLY))
        after = counts[os.getpid()]
    n_before = struct.unpack("<Q", before)[0] if before is not None else 0
    assert struct.unpack("<Q", after)[0] - n_before == 25


# --- execsnoop.c: a tracepoint sending events through a ring buffer -----------------------


@pytest.mark.requires("clang19", "bpf", "bpftool")
def test_execsnoop_passes_the_verifier_via_bpftool(built: Path, tmp_path: Path) -> None:
    _bpftool_loads(_build(built, "execsnoop/execsnoop.c"), tmp_path)


@pytest.mark.requires("clang19", "bpf", "tracepoint")
def test_execsnoop_sends_exec_events(built: Path, tmp_path: Path) -> None:
    from bpfkit.events.ringbuf import RingBufReader
    from bpfkit.kernel.session import Session

    true = tmp_path / "bpfkit-true"
    true.symlink_to("/bin/true")
    obj = _build(built, "execsnoop/execsnoop.c")
    with Session(obj, trace=False) as s:
        events = s.maps["events"]
        reader = RingBufReader(events.fd, 256 * 1024)
        try:
            subprocess.run([str(true)], check=True)
            records: list[bytes] = []
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                records += reader.poll(0.5)
                if any(str(true).encode()[:63] in r for r in records):  # 64-byte field
                    break
        finally:
            reader.close()
    seen = [struct.unpack("<II16s64s", r[:88]) for r in records]
    mine = [e for e in seen if e[3].split(b"\0")[0] == str(true).encode()[:63]]
    assert mine, [e[3] for e in seen]
    pid, uid, comm, _ = mine[0]
    assert uid == os.getuid() and pid > 0
    assert comm.split(b"\0")[0]  # the command that called execve (python, before the switch)


# --- xdp_count.c: XDP packet counter --------------------------------------------------------


def _eth(proto: int, payload: bytes) -> bytes:
    return b"\x02" * 6 + b"\x04" * 6 + struct.pack(">H", proto) + payload


def _ipv4(protocol: int) -> bytes:
    header = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, protocol, 0, bytes(4), bytes(4))
    return _eth(0x0800, header + bytes(8))


def _ipv6(nexthdr: int) -> bytes:
    header = struct.pack(">IHBB16s16s", 6 << 28, 8, nexthdr, 64, bytes(16), bytes(16))
    return _eth(0x86DD, header + bytes(8))


@pytest.mark.requires("clang19", "bpf", "bpftool")
def test_xdp_count_passes_the_verifier_via_bpftool(built: Path, tmp_path: Path) -> None:
    _bpftool_loads(_build(built, "xdp_count/xdp_count.c"), tmp_path)


@pytest.mark.requires("clang19", "bpf")
def test_xdp_count_counts_per_protocol(built: Path) -> None:
    from bpfkit.kernel.collection import load_collection
    from bpfkit.obj.reader import read_object

    obj = _build(built, "xdp_count/xdp_count.c")
    packets = {
        17: (_ipv4(17), 7),
        6: (_ipv4(6), 3),
        58: (_ipv6(58), 2),
        0: (_eth(0x0806, bytes(28)), 4),
    }
    with load_collection(read_object(str(obj))) as c:
        prog, counts = c.programs["xdp_count"], c.maps["counts"]
        for packet, n in packets.values():
            result = prog.test_run(packet, repeat=n)
            assert result.retval == 2  # XDP_PASS
            assert result.data_out == packet
        # A frame too short for its IPv4 header counts in slot 0 too.
        prog.test_run(_ipv4(17)[:20])
        got = {k: struct.unpack("<Q", counts[k])[0] for k in packets}
    assert got == {17: 7, 6: 3, 58: 2, 0: 5}


# --- the Rust examples' objects against llvm-mc-19's ------------------------------------


def _elf_summary(path: Path) -> dict[str, object]:
    """Sections (data), symbols and relocations of an object, by name, to compare."""
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection

    with path.open("rb") as f:
        elf = ELFFile(f)
        names = [s.name for s in elf.iter_sections()]
        sections = {
            s.name: bytes(s.data())
            for s in elf.iter_sections()
            if s["sh_type"] in ("SHT_PROGBITS", "SHT_NOBITS") and s.name
        }
        symbols, relocs = set(), set()
        for s in elf.iter_sections():
            if isinstance(s, SymbolTableSection):
                for sym in s.iter_symbols():
                    shndx = sym["st_shndx"]
                    where = names[shndx] if isinstance(shndx, int) else shndx
                    info = sym["st_info"]
                    if info["type"] in ("STT_FILE", "STT_SECTION") or not sym.name:
                        continue
                    symbols.add(
                        (
                            sym.name,
                            where,
                            sym["st_value"],
                            sym["st_size"],
                            info["bind"],
                            info["type"],
                        )
                    )
            elif isinstance(s, RelocationSection):
                table = elf.get_section(s["sh_link"])
                assert isinstance(table, SymbolTableSection)
                for r in s.iter_relocations():
                    sym = table.get_symbol(r["r_info_sym"])
                    target = sym.name or names[sym["st_shndx"]]
                    relocs.add((s.name, r["r_offset"], r["r_info_type"], target))
    return {"sections": sections, "symbols": symbols, "relocations": relocs}


@pytest.mark.requires("rustc", "llvm19")
@pytest.mark.parametrize("rel", ["hello/hello.rs", "counter/counter.rs"])
def test_rust_example_objects_match_llvm_mc(rel: str, tmp_path: Path) -> None:
    """bpfkit's assembler on rustc's output (with the .maps BTF) = llvm-mc-19's object."""
    ours = tmp_path / "ours.o"
    asm = tmp_path / "rustc.s"
    build(EXAMPLES / rel, ours, asm_out=asm)
    theirs = tmp_path / "llvm-mc.o"
    subprocess.run(
        [
            "llvm-mc-19",
            "-triple",
            "bpfel",
            "-mcpu=v4",
            "-filetype=obj",
            str(asm),
            "-o",
            str(theirs),
        ],
        check=True,
    )
    assert _elf_summary(ours) == _elf_summary(theirs)
    # .s is the same route: building rustc's assembly gives the same object again.
    again = build(asm, tmp_path / "again.o")
    assert again.read_bytes() == ours.read_bytes()


@pytest.mark.requires("rustc", "clang19", "bpf")
@pytest.mark.parametrize(
    "rel",
    ["hello/hello.rs", "counter/counter.rs", "execsnoop/execsnoop.c", "xdp_count/xdp_count.c"],
)
def test_bpfkit_load_loads_each_example(
    rel: str, built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bpfkit.cli.main import main

    obj = _build(built, rel)
    assert main(["load", str(obj)]) == 0
    out = capsys.readouterr().out
    assert f"{obj.name}: 1 program" in out


@pytest.mark.requires("clang19", "bpf")
def test_xdp_count_in_the_vm_agrees_with_the_kernel(built: Path) -> None:
    from bpfkit.kernel.collection import load_collection
    from bpfkit.obj.reader import read_object
    from bpfkit.vm import ArrayMap, Vm, VmMap

    obj = _build(built, "xdp_count/xdp_count.c")
    spec = read_object(str(obj))
    (program,) = [p for p in spec.programs if p.name == "xdp_count"]
    frames = [_ipv4(17), _ipv6(6), _ipv4(1), _eth(0x88CC, bytes(40)), _ipv4(17)[:30], _ipv6(17)]
    vm_maps: dict[str, VmMap] | None = None
    vm_r0 = []
    for frame in frames:
        result = Vm(program, obj=spec, packet=frame, prog_type="xdp", maps=vm_maps).run()
        vm_maps = dict(result.maps)
        vm_r0.append(result.r0)
    with load_collection(spec) as c:
        kernel_r0 = [c.programs["xdp_count"].test_run(f).retval for f in frames]
        kernel_counts = {k: c.maps["counts"][k] for k in range(256)}
    assert vm_maps is not None
    vm_counts = vm_maps["counts"]
    assert isinstance(vm_counts, ArrayMap)
    assert vm_r0 == kernel_r0 == [2] * len(frames)
    assert {k: vm_counts.get(k) for k in range(256)} == kernel_counts
    assert struct.unpack("<Q", kernel_counts[17])[0] == 2


@pytest.mark.requires("rustc", "bpf", "tracepoint")
def test_cli_run_of_the_built_hello_prints_hello_from_rust(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The acceptance, as a user types it: bpfkit build hello.rs, then bpfkit run hello.o."""
    from bpfkit.cli.main import main

    obj = built / "cli-hello.o"
    assert main(["build", str(EXAMPLES / "hello" / "hello.rs"), "-o", str(obj)]) == 0
    with _cloning():
        assert main(["run", str(obj), "--count", "3", "--duration", "15"]) == 0
    out = capsys.readouterr().out
    assert "hello from rust" in out, out
