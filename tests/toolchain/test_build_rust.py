"""Rust through bpfkit build, checked by the kernel: the prelude's operators, arrays, maps
(legacy and .maps) and helpers, run with BPF_PROG_TEST_RUN and compared with Python."""

from __future__ import annotations

import os
import random
import re
import struct
import subprocess
import threading
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bpfkit.errors import BuildError
from bpfkit.toolchain import build
from bpfkit.toolchain.rust import build_prelude, rust_to_asm
from bpfkit.toolchain.tools import find_rustc
from helpers import TESTS

HERE = TESTS
ROOT_EXAMPLES = HERE.parent / "examples"
M32, M64 = 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF


def _s32(v: int) -> int:
    v &= M32
    return v - (1 << 32) if v & 0x8000_0000 else v


def mix_model(buf: bytes) -> tuple[int, int, int]:
    """What tests/data/rust/mix.rs computes from the 16 bytes it reads: (retval, key, value)."""
    acc = 7
    for b in buf:
        acc = (acc * 31 + b) & M32
    acc ^= acc >> 7
    acc = (acc + sum(j * j for j in range(buf[4] & 31))) & M32
    wide = ((acc << 20) | buf[0]) & M64
    signed = -((wide % 1000003) // 3)  # Rust's / truncates toward zero
    result = _s32(signed) & 0x7FFF_FFFF
    if buf[2] > buf[3]:
        result |= 1
    elif buf[2] == buf[3]:
        result = _s32(result - ((buf[1] * 3 + 1) & 0xFFFF))
    return result & M32, acc & 15, wide


@pytest.mark.requires("rustc", "bpf")
def test_rust_prelude_semantics_on_the_kernel(tmp_path: Path) -> None:
    from bpfkit.kernel.collection import load_collection
    from bpfkit.obj.reader import read_object

    obj = build(HERE / "data" / "rust" / "mix.rs", tmp_path / "mix.o")
    rng = random.Random(4)
    packets = [bytes(rng.randrange(256) for _ in range(64)) for _ in range(40)]
    packets.append(bytes(64))  # buf[2] == buf[3]
    packets.append(bytes([0, 9, 5, 5]) * 16)
    with load_collection(read_object(str(obj))) as c:
        prog = c.programs["mix"]
        seen, totals = c.maps["SEEN"], c.maps["TOTALS"]
        for packet in packets:
            # A socket filter's test run starts past the 14-byte Ethernet header.
            want, key, value = mix_model(packet[14:30])
            assert prog.test_run(packet).retval == want, packet[14:30].hex()
            assert struct.unpack("<Q", seen[key])[0] == value
        assert struct.unpack("<Q", totals[0])[0] == len(packets)
        assert struct.unpack("<Q", totals[1])[0] == 0


@pytest.mark.requires("rustc")
def test_prelude_compiles_in_a_fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPFKIT_CACHE_DIR", str(tmp_path / "cache"))
    rlib = build_prelude(find_rustc())
    assert rlib.is_file() and rlib.name == "libbpfkit.rlib"
    assert rlib.is_relative_to(tmp_path / "cache")
    assert build_prelude(find_rustc()) == rlib  # the second time from the cache
    assert [p.name for p in (tmp_path / "cache" / "rust-prelude").iterdir()] == [rlib.parent.name]


@pytest.mark.requires("rustc")
def test_unwritable_cache_builds_the_prelude_in_the_scratch_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("BPFKIT_CACHE_DIR", str(blocker / "cache"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    rlib = build_prelude(find_rustc(), scratch=scratch)
    assert rlib == scratch / "prelude" / "libbpfkit.rlib" and rlib.is_file()


@pytest.mark.requires("rustc")
def test_a_crate_without_no_core_gets_a_hint(tmp_path: Path) -> None:
    src = tmp_path / "plain.rs"
    src.write_text("pub fn f() -> u32 { 1 }\n")
    with pytest.raises(BuildError, match=r"(?s)can't find crate for `std`.*#!\[no_core\]"):
        rust_to_asm(src)


@pytest.mark.requires("rustc", "bpf")
def test_atomic_adds_on_a_map_value(tmp_path: Path) -> None:
    from bpfkit.kernel.collection import load_collection
    from bpfkit.obj.reader import read_object

    obj = build(HERE / "data" / "rust" / "atomics.rs", tmp_path / "atomics.o")
    with load_collection(read_object(str(obj))) as c:
        prog, counter = c.programs["atomics"], c.maps["COUNTER"]
        got = [prog.test_run(bytes(64)).retval for _ in range(4)]
        assert got == [100 + 3 + 8 * i for i in range(4)]
        assert struct.unpack("<Q", counter[0])[0] == 4 * 8


@pytest.mark.requires("rustc", "bpf", "tracepoint")
def test_printk_with_arguments(tmp_path: Path) -> None:
    from bpfkit.kernel.session import Session

    obj = build(HERE / "data" / "rust" / "printk.rs", tmp_path / "printk.o")
    want = f"bpfkit printk pid={os.getpid()} x=42 y=beef"
    with Session(obj) as s:
        threading.Timer(0.3, os.getppid).start()
        # trace_pipe is shared: other programs (other tests) may print meanwhile.
        seen = []
        for line in s.lines(duration=10):
            seen.append(line.message)
            if line.message == want:
                break
    assert want in seen


PANICKY = """#![feature(no_core)]
#![no_core]
use bpfkit::*;
license!("GPL");
program! {{ "socket", fn f(skb: *mut c_void) -> i32 {{
    let mut buf = [0u8; 8];
    if unsafe {{ bpf_skb_load_bytes(skb, 0, &mut buf, 8) }} != 0 {{ return 0; }}
    let i = buf[0] as usize;
    {body}
}} }}
"""


@pytest.mark.requires("rustc", "bpf")
def test_a_possible_panic_is_refused_by_the_verifier_and_a_check_fixes_it(
    tmp_path: Path,
) -> None:
    """The documented behaviour (examples/README.md): an unchecked index is a bounds check
    whose failure is an endless loop, which the verifier refuses; checking first is fine."""
    from bpfkit.errors import VerifierError
    from bpfkit.kernel.collection import load_collection
    from bpfkit.obj.reader import read_object

    unchecked, checked = tmp_path / "unchecked.rs", tmp_path / "checked.rs"
    unchecked.write_text(PANICKY.format(body="buf[i] as i32"))
    checked.write_text(PANICKY.format(body="if i < 8 { buf[i] as i32 } else { -1 }"))
    with pytest.raises(VerifierError) as info:
        with load_collection(read_object(str(build(unchecked, tmp_path / "u.o")))):
            pass
    assert "infinite loop detected" in info.value.log
    with load_collection(read_object(str(build(checked, tmp_path / "c.o")))) as c:
        packet = bytes(14) + bytes([3, 0, 0, 77]) + bytes(46)
        assert c.programs["f"].test_run(packet).retval == 77


@pytest.mark.requires("rustc", "bpf")
def test_ring_buffer_output_from_rust(tmp_path: Path) -> None:
    from bpfkit.events.ringbuf import RingBufReader
    from bpfkit.kernel.collection import load_collection
    from bpfkit.obj.reader import read_object

    obj = build(HERE / "data" / "rust" / "ringbuf.rs", tmp_path / "ringbuf.o")
    with load_collection(read_object(str(obj))) as c:
        events = c.maps["EVENTS"]
        reader = RingBufReader(events.fd, 4096)
        try:
            prog = c.programs["send_event"]
            for size in (64, 100, 64):
                assert prog.test_run(bytes(size)).retval == 0  # bpf_ringbuf_output's 0
            records = reader.poll(1.0)
        finally:
            reader.close()
        seen = {
            struct.unpack("<I", k)[0]: struct.unpack("<I", v)[0] for k, v in c.maps["SEEN"].items()
        }
    # A socket filter's test run starts past the Ethernet header: len is size - 14.
    assert [struct.unpack("<IIQ", r) for r in records] == [
        (n - 14, 0xABCD, 0x1122_3344_5566_7788) for n in (64, 100, 64)
    ]
    assert seen == {50: 2, 86: 1}


@pytest.mark.requires("rustc", "bpf")
def test_perf_event_output_from_rust(tmp_path: Path) -> None:
    from bpfkit.events.perf import PerfBufferReader
    from bpfkit.kernel.collection import load_collection
    from bpfkit.obj.reader import read_object

    obj = build(HERE / "data" / "rust" / "perf.rs", tmp_path / "perf.o")
    with load_collection(read_object(str(obj))) as c:
        with PerfBufferReader(c.maps["SAMPLES"].fd, pages=1) as reader:
            assert c.programs["send_sample"].test_run(bytes(70)).retval == 0
            samples = reader.poll(1.0)
    assert [struct.unpack("<II", data[:8]) for _, data in samples] == [(56, 0x5EED)]


@pytest.mark.requires("rustc", "bpf")
def test_out_of_line_functions_are_bpf_to_bpf_calls(tmp_path: Path) -> None:
    from bpfkit.kernel.collection import load_collection
    from bpfkit.obj.reader import read_object

    obj = build(HERE / "data" / "rust" / "subprog.rs", tmp_path / "subprog.o")
    spec = read_object(str(obj))
    # rustc's function sections are turned off: the callee is in .text, a sub-program.
    with obj.open("rb") as f:
        names = [s.name for s in ELFFile(f).iter_sections()]
    assert not [n for n in names if n.startswith(".text.")]
    assert ".text" in names
    with load_collection(spec) as c:
        light, heavy = c.programs["light"], c.programs["heavy"]
        assert light.test_run(bytes(64)).retval == 50 * 2
        assert heavy.test_run(bytes(64)).retval == 50 * 1000
        assert light.test_run(bytes(80)).retval == 66 * 2 + 1


@pytest.mark.requires("rustc", "bpf", "bpftool")
def test_out_of_line_functions_load_with_libbpf(tmp_path: Path) -> None:
    obj = build(HERE / "data" / "rust" / "subprog.rs", tmp_path / "subprog.o")
    pin = Path("/sys/fs/bpf") / f"bpfkit-test-{os.getpid()}-subprog"
    try:
        res = subprocess.run(
            ["bpftool", "prog", "loadall", str(obj), str(pin)], capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr[-2000:]
        assert sorted(os.listdir(pin)) == ["heavy", "light"]
    finally:
        subprocess.run(["rm", "-rf", str(pin)], check=False)


@pytest.mark.requires("rustc")
def test_concurrent_builds_share_one_prelude(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("BPFKIT_CACHE_DIR", str(tmp_path / "cache"))
    tool = find_rustc()
    with ThreadPoolExecutor(4) as pool:
        rlibs = list(pool.map(lambda _: build_prelude(tool), range(4)))
    assert len(set(rlibs)) == 1 and rlibs[0].is_file()
    # Only the finished directory is left (no .tmp-* from the builds that lost the race).
    assert [p.name for p in (tmp_path / "cache" / "rust-prelude").iterdir()] == [
        rlibs[0].parent.name
    ]


def test_assembly_bpfkit_cannot_read_is_a_build_error_with_the_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rustc's LLVM checks what it writes, so stand in for a rustc writing something new.
    import bpfkit.toolchain.rust

    monkeypatch.setattr(bpfkit.toolchain.rust, "rust_to_asm", lambda *a, **k: "\tfrobnicate r1\n")
    src = tmp_path / "weird.rs"
    src.write_text("")
    with pytest.raises(BuildError) as info:
        build(src, tmp_path / "weird.o")
    msg = str(info.value)
    assert "cannot assemble what rustc wrote for" in msg and "frobnicate r1" in msg
    assert re.search(r"weird\.s:1:\d+", msg) and "--asm FILE" in msg
    asm = tmp_path / "kept.s"
    with pytest.raises(BuildError, match=r"kept\.s:1:\d+"):
        build(src, tmp_path / "weird.o", asm_out=asm)
    assert asm.read_text() == "\tfrobnicate r1\n"
    assert not (tmp_path / "weird.o").exists()


@pytest.mark.requires("rustc", "clang19", "bpf")
def test_rust_packet_parsing_agrees_with_the_c_example(tmp_path: Path) -> None:
    """tests/data/rust/xdp.rs and examples/xdp_count/xdp_count.c count the same frames alike."""
    from bpfkit.kernel.collection import load_collection
    from bpfkit.obj.reader import read_object

    def eth(proto: int, payload: bytes) -> bytes:
        return b"\x02" * 6 + b"\x04" * 6 + struct.pack(">H", proto) + payload

    frames = [
        eth(0x0800, bytes([0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17]) + bytes(18)),  # UDP
        eth(0x0800, bytes([0x45, 0, 0, 28, 0, 1, 0, 0, 64, 6]) + bytes(18)),  # TCP
        eth(0x86DD, bytes([0x60, 0, 0, 0, 0, 8, 58, 64]) + bytes(40)),  # ICMPv6
        eth(0x0800, bytes(10)),  # too short for IPv4: slot 0
        eth(0x0806, bytes(28)),  # ARP: slot 0
    ]
    results = []
    for obj, prog, counts in (
        (build(HERE / "data" / "rust" / "xdp.rs", tmp_path / "rs.o"), "xdp_count_rs", "COUNTS"),
        (
            build(ROOT_EXAMPLES / "xdp_count" / "xdp_count.c", tmp_path / "c.o"),
            "xdp_count",
            "counts",
        ),
    ):
        with load_collection(read_object(str(obj))) as c:
            retvals = [c.programs[prog].test_run(f, repeat=3).retval for f in frames]
            table = {k: struct.unpack("<Q", c.maps[counts][k])[0] for k in (0, 6, 17, 58)}
        results.append((retvals, table))
    assert results[0] == results[1] == ([2] * len(frames), {0: 6, 6: 3, 17: 3, 58: 3})
