"""Emulated helpers, VM maps and whole objects in the VM (the seed, C examples)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfkit.asm.assemble import assemble_mnemonic
from bpfkit.errors import VmError
from bpfkit.isa.insn import Insn
from bpfkit.obj.reader import read_object
from bpfkit.vm import ArrayMap, Env, HashMap, PerfEventArray, ProgArray, RingBuf, Vm
from bpfkit.vm.maps import MAP_LRU_HASH, MAP_PERCPU_ARRAY
from bpfkit.vm.memory import Memory
from bpfkit.vm.printk import PrintkError, format_printk
from helpers import ROOT, clang_bpf

ROOT = ROOT
HELLO = ROOT / "examples" / "hello" / "hello.o"


def asm(text: str) -> list[Insn]:
    return assemble_mnemonic(text)


def with_map(text: str, fd: int = 1) -> list[Insn]:
    """Assemble, turning `lddw %rN, MAP` placeholders (imm 0xMA9) into map loads of ``fd``."""
    out = []
    for insn in asm(text):
        if insn.opcode == 0x18 and insn.imm == 0xA9:
            insn = Insn(0x18, insn.dst, 1, 0, fd)
        out.append(insn)
    return out


# --- printk ------------------------------------------------------------------------------


def _fmt(fmt: str, *args: int) -> str:
    return format_printk(fmt.encode(), args, lambda a, n: None)


@pytest.mark.parametrize(
    ("fmt", "args", "want"),
    [
        ("%d %i", (2**32 - 5, 7), "-5 7"),
        ("%u %x %X", (2**32 - 1, 255, 255), "4294967295 ff FF"),
        ("%ld %lu", (2**64 - 2, 2**64 - 2), f"-2 {2**64 - 2}"),
        ("%lld %llx", (2**63, 2**40), f"{-(2**63)} {2**40:x}"),
        ("%5d|%-5d|%05x", (42, 42, 255), "   42|42   |000ff"),
        ("100%% %c", (ord("A"),), "100% A"),
        ("%p", (0x1234,), "0000000000001234"),
        ("%lli %llu %li", (2**64 - 1, 3, 2**64 - 9), "-1 3 -9"),
    ],
)
def test_printk_formats_like_c(fmt: str, args: tuple[int, ...], want: str) -> None:
    assert _fmt(fmt, *args) == want


@pytest.mark.parametrize(
    "fmt", ["%d %d %d %d", "%f", "%lf", "%n", "\x1b[0m", "%hd", "\x01", "%pa", "%#x", "%.3d"]
)
def test_printk_refuses_what_the_kernel_refuses(fmt: str) -> None:
    with pytest.raises(PrintkError):
        format_printk(fmt.encode("latin-1"), (1, 2, 3), lambda a, n: None)


def test_printk_in_a_program_with_strings_and_errors() -> None:
    vm = Vm(
        asm("""
        stdw [%r10-16], 0
        stdw [%r10-8], 0
        stw [%r10-16], 0x656d616e    # "name", little-endian
        stw [%r10-32], 0x73252020    # "  %s"
        stw [%r10-28], 0x0a64253d    # "=%d\\n"
        stb [%r10-24], 0
        mov %r1, %r10
        add %r1, -32
        mov %r2, 9
        mov %r3, %r10
        add %r3, -16
        mov %r4, -3
        call 6
        mov %r6, %r0
        mov %r1, %r10
        add %r1, -32
        mov %r2, 4                   # no NUL within 4 bytes: -EINVAL
        call 6
        mov32 %r0, %r0
        lsh %r6, 32
        or %r0, %r6
        exit
        """)
    )
    res = vm.run()
    assert res.output == ["  name=-3\n"]
    assert res.r0 >> 32 == len("  name=-3\n")
    assert res.r0 & 0xFFFF_FFFF == (-22) & 0xFFFF_FFFF


# --- maps --------------------------------------------------------------------------------

COUNTER = """
    stw [%r10-4], 7              # key = 7
    lddw %r1, 0xa9
    mov %r2, %r10
    add %r2, -4
    call 1                       # lookup
    jeq %r0, 0, insert
    ldxdw %r1, [%r0]
    add %r1, 1
    stxdw [%r0], %r1
    mov %r0, 1
    exit
insert:
    stdw [%r10-16], 100
    lddw %r1, 0xa9
    mov %r2, %r10
    add %r2, -4
    mov %r3, %r10
    add %r3, -16
    mov %r4, 1                   # BPF_NOEXIST
    call 2
    exit
"""


def test_hash_map_lookup_update_in_place() -> None:
    counts = HashMap("counts", 4, 8, 16)
    vm = Vm(with_map(COUNTER), maps={1: counts})
    assert vm.run().r0 == 0  # inserted
    assert vm.run().r0 == 1
    assert vm.run().r0 == 1
    assert counts.items() == [((7).to_bytes(4, "little"), (102).to_bytes(8, "little"))]


def test_array_map_and_percpu_array() -> None:
    small = ArrayMap("small", 4, 8, 4)
    # key 7 is past max_entries: lookup gives NULL, update -E2BIG
    assert Vm(with_map(COUNTER), maps={1: small}).run().r0 == (-7) & (2**64 - 1)
    for arr in (ArrayMap("arr", 4, 8, 8), ArrayMap("pc", 4, 8, 8, type=MAP_PERCPU_ARRAY)):
        vm = Vm(with_map(COUNTER), maps={1: arr})
        assert [vm.run().r0 for _ in range(3)] == [1, 1, 1]  # elements always exist
        assert arr.get(7) == (3).to_bytes(8, "little")


def test_hash_map_flags_and_full_map() -> None:
    m = HashMap("h", 4, 4, 2)
    assert m.update(b"\1\0\0\0", b"aaaa", 2) == -2  # BPF_EXIST on a missing key: -ENOENT
    assert m.update(b"\1\0\0\0", b"aaaa", 0) == 0
    assert m.update(b"\1\0\0\0", b"bbbb", 1) == -17  # BPF_NOEXIST: -EEXIST
    assert m.update(b"\2\0\0\0", b"cccc", 0) == 0
    assert m.update(b"\3\0\0\0", b"dddd", 0) == -7  # full: -E2BIG
    assert m.delete(b"\3\0\0\0") == -2
    lru = HashMap("l", 4, 4, 2, type=MAP_LRU_HASH, lru=True)
    lru.bind(Memory())
    for k in (b"\1\0\0\0", b"\2\0\0\0"):
        lru.update(k, b"xxxx", 0)
    lru.lookup(b"\1\0\0\0")  # 1 is now the most recently used: 2 goes
    assert lru.update(b"\3\0\0\0", b"yyyy", 0) == 0
    assert [k for k, _ in lru.items()] == [b"\1\0\0\0", b"\3\0\0\0"]


def test_ringbuf_reserve_submit_discard_and_output() -> None:
    rb = RingBuf("events", 4096)
    prog = with_map("""
        lddw %r1, 0xa9
        mov %r2, 8
        mov %r3, 0
        call 131                 # reserve
        jeq %r0, 0, out
        stdw [%r0], 0x1234
        mov %r1, %r0
        mov %r2, 0
        call 132                 # submit
        lddw %r1, 0xa9
        mov %r2, 4
        mov %r3, 0
        call 131
        mov %r1, %r0
        mov %r2, 0
        call 133                 # discard
        stw [%r10-4], 0x41424344
        lddw %r1, 0xa9
        mov %r2, %r10
        add %r2, -4
        mov %r3, 4
        mov %r4, 0
        call 130                 # output
    out:
        exit
    """)
    Vm(prog, maps={1: rb}).run()
    assert rb.records == [(0x1234).to_bytes(8, "little"), b"DCBA"]


def test_ringbuf_record_is_gone_after_submit() -> None:
    rb = RingBuf("events", 4096)
    prog = with_map("""
        lddw %r1, 0xa9
        mov %r2, 8
        mov %r3, 0
        call 131
        mov %r6, %r0
        mov %r1, %r0
        mov %r2, 0
        call 132
        ldxdw %r0, [%r6]
        exit
    """)
    with pytest.raises(VmError, match="out of bounds"):
        Vm(prog, maps={1: rb}).run()


def test_perf_event_output() -> None:
    pe = PerfEventArray("events", 4)
    prog = with_map("""
        stdw [%r10-8], 0x55
        lddw %r2, 0xa9
        lddw %r3, 0xffffffff
        mov %r4, %r10
        add %r4, -8
        mov %r5, 8
        call 25
        exit
    """)
    assert Vm(prog, maps={1: pe}, env=Env(cpu=2)).run().r0 == 0
    assert pe.events == [(2, (0x55).to_bytes(8, "little"))]


def test_tail_call_replaces_the_program() -> None:
    jt = ProgArray("jt", 4)
    jt.set(2, asm("mov %r0, 77\nexit"))
    prog = with_map("""
        lddw %r2, 0xa9
        mov %r3, 2
        call 12
        mov %r0, 1               # only after a failed tail call
        exit
    """)
    res = Vm(prog, maps={1: jt}).run()
    assert res.r0 == 77
    jt.slots.clear()
    assert Vm(prog, maps={1: jt}).run().r0 == 1


def test_task_identity_clock_and_random_come_from_the_env() -> None:
    env = Env(pid=11, tgid=22, uid=33, gid=44, comm=b"mycomm", ktime_ns=500, seed=3)
    prog = asm("""
        call 14
        mov %r6, %r0
        call 15
        mov %r7, %r0
        call 5
        mov %r8, %r0
        call 5
        sub %r0, %r8
        exit
    """)
    vm = Vm(prog, env=env)
    assert vm.run().r0 == env.ktime_step_ns
    assert vm.interpreter.regs[6] == 22 << 32 | 11
    assert vm.interpreter.regs[7] == 44 << 32 | 33
    assert vm.interpreter.regs[8] == 500
    a = Vm(asm("call 7\nexit"), env=Env(seed=9)).run().r0
    b = Vm(asm("call 7\nexit"), env=Env(seed=9)).run().r0
    assert a == b < 2**32


def test_get_current_comm_and_probe_read() -> None:
    env = Env(comm=b"worker", kernel_memory=[(0xFFFF_8880_0000_1000, b"kernel bytes!")])
    prog = asm("""
        mov %r1, %r10
        add %r1, -16
        mov %r2, 16
        call 16
        mov %r1, %r10
        add %r1, -32
        mov %r2, 6
        lddw %r3, 0xffff888000001007
        call 113
        mov %r6, %r0
        mov %r1, %r10
        add %r1, -40
        mov %r2, 8
        lddw %r3, 0xdead000000000000
        call 113
        exit
    """)
    vm = Vm(prog, env=env)
    res = vm.run()
    assert res.r0 == (-14) & 2**64 - 1  # -EFAULT for memory nobody gave
    stack = vm.interpreter.stacks[0].buf
    assert bytes(stack[512 - 16 : 512]) == b"worker" + bytes(10)
    assert bytes(stack[512 - 32 : 512 - 26]) == b"bytes!"
    assert vm.interpreter.regs[6] == 0


# --- objects -----------------------------------------------------------------------------


def test_the_seed_prints_hello_from_rust() -> None:
    obj = read_object(HELLO)
    res = Vm(obj.program("kprobe__sys_clone"), obj=obj).run()
    assert res.lines == ["hello from rust"]
    assert res.r0 == 0


def test_cli_vm_command_and_run_vm(capsys: pytest.CaptureFixture[str]) -> None:
    from bpfkit.cli.main import main

    assert main(["vm", str(HELLO)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "hello from rust"
    assert "retval: 0" in out
    assert main(["vm", str(HELLO), "--program", "nope"]) == 1
    assert "no program named" in capsys.readouterr().err


PACKETS = [
    bytes(12) + b"\x08\x00" + bytes([0x45] + [0] * 8 + [17] + [0] * 10),  # IPv4 UDP
    bytes(12) + b"\x08\x00" + bytes([0x45] + [0] * 8 + [6] + [0] * 10),  # IPv4 TCP
    bytes(12) + b"\x86\xdd" + bytes([0x60, 0, 0, 0, 0, 0, 58]) + bytes(33),  # IPv6 ICMPv6
    bytes(12) + b"\x08\x00",  # IPv4 but too short for its header
    bytes(12) + b"\x08\x00" + bytes([0x45] + [0] * 8 + [17] + [0] * 10),
]


@pytest.mark.requires("clang19")
def test_xdp_count_example_counts_in_the_vm(tmp_path: Path) -> None:
    obj = read_object(clang_bpf(ROOT / "examples/xdp_count/xdp_count.c", tmp_path / "x.o"))
    vm = Vm(obj.program("xdp_count"), obj=obj)
    for pkt in PACKETS:
        assert vm.run(packet=pkt).r0 == 2  # XDP_PASS
    counts = vm.maps["counts"]
    assert isinstance(counts, ArrayMap)
    got = {i: int.from_bytes(counts.get(i), "little") for i in range(256) if any(counts.get(i))}
    assert got == {17: 2, 6: 1, 58: 1, 0: 1}


def _int(v: object) -> int:
    return int.from_bytes(v, "little") if isinstance(v, bytes) else int(v)  # type: ignore[call-overload]


@pytest.mark.requires("bpf", "clang19")
def test_xdp_count_maps_match_the_kernel(tmp_path: Path) -> None:
    from bpfkit.kernel.collection import load_collection

    path = clang_bpf(ROOT / "examples/xdp_count/xdp_count.c", tmp_path / "x.o")
    obj = read_object(path)
    vm = Vm(obj.program("xdp_count"), obj=obj)
    with load_collection(obj) as coll:
        prog = coll.programs["xdp_count"]
        for pkt in PACKETS:
            k = prog.test_run(pkt)
            assert vm.run(packet=pkt).r0 == k.retval
        kmap = coll.maps["counts"]
        kernel = {_int(i): _int(v) for i, v in kmap.items() if _int(v)}
    counts = vm.maps["counts"]
    assert isinstance(counts, ArrayMap)
    mine = {i: int.from_bytes(counts.get(i), "little") for i in range(256) if any(counts.get(i))}
    assert mine == kernel and kernel


@pytest.mark.requires("clang19")
def test_execsnoop_example_writes_a_ringbuf_record(tmp_path: Path) -> None:
    obj = read_object(clang_bpf(ROOT / "examples/execsnoop/execsnoop.c", tmp_path / "e.o"))
    env = Env(tgid=1234, uid=1000, comm=b"bash", user_memory=[(0x7FFF_0000, b"/bin/ls\0")])
    ctx = bytearray(48)
    ctx[16:24] = (0x7FFF_0000).to_bytes(8, "little")  # ctx->filename
    vm = Vm(obj.program("trace_execve"), obj=obj, ctx=bytes(ctx), env=env)
    assert vm.run().r0 == 0
    events = vm.maps["events"]
    assert isinstance(events, RingBuf) and len(events.records) == 1
    rec = events.records[0]
    assert int.from_bytes(rec[0:4], "little") == 1234
    assert int.from_bytes(rec[4:8], "little") == 1000
    assert rec[8:24] == b"bash" + bytes(12)
    assert rec[24:32] == b"/bin/ls\0"


MIXED_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

static const char greeting[] = "pkt %d sum %d\n";
__u64 total = 7;        /* .data */
__u32 calls;            /* .bss */
const volatile __u32 scale = 3;  /* .rodata */

static __attribute__((noinline)) __u32 sum_bytes(unsigned char *p, unsigned char *end, __u32 n)
{
	__u32 s = 0;
	for (__u32 i = 0; i < 32 && i < n; i++) {
		if (p + i + 1 > end)
			break;
		s += p[i] * scale;
	}
	return s;
}

SEC("xdp")
int mixed(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 s = sum_bytes(data, end, 24);
	__u32 key = s & 31;
	__u64 one = 1, *v;

	calls++;
	total += s;
	v = bpf_map_lookup_elem(&seen, &key);
	if (v)
		*v += 1;
	else
		bpf_map_update_elem(&seen, &key, &one, BPF_NOEXIST);
	bpf_trace_printk(greeting, sizeof(greeting), calls, s);
	if (data + 4 <= end)
		data[0] = (unsigned char)s;
	return (total & 1) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
"""


def _bytes(v: object) -> bytes:
    if isinstance(v, int):
        return v.to_bytes(8, "little")
    assert isinstance(v, (bytes, bytearray, memoryview)), type(v)
    return bytes(v)


@pytest.mark.requires("bpf", "clang19")
def test_subprograms_global_data_and_maps_match_the_kernel(tmp_path: Path) -> None:
    """A C program with a .text subprogram, .data/.rodata/.bss and a hash map."""
    from bpfkit.kernel.collection import load_collection

    src = tmp_path / "mixed.c"
    src.write_text(MIXED_C)
    obj = read_object(clang_bpf(src, tmp_path / "mixed.o"))
    vm = Vm(obj.program("mixed"), obj=obj)
    packets = [bytes((i * 37 + j) & 0xFF for j in range(20 + i)) for i in range(12)]
    with load_collection(obj) as coll:
        prog = coll.programs["mixed"]
        for pkt in packets:
            k = prog.test_run(pkt)
            res = vm.run(packet=pkt)
            assert (res.r0, res.packet) == (k.retval, k.data_out[: len(pkt)])
            assert res.output and res.output[0].startswith("pkt ")
        kseen = sorted((_bytes(key)[:4], _bytes(v)[:8]) for key, v in coll.maps["seen"].items())
        kdata = {name: _bytes(next(iter(coll.maps[name].values()))) for name in (".data", ".bss")}
    assert vm.maps["seen"].items() == kseen and len(kseen) > 1
    for name, kvalue in kdata.items():
        mine = vm.maps[name].items()[0][1]
        assert mine == kvalue[: len(mine)], name


@pytest.mark.requires("clang19")
def test_cli_packet_ctx_and_repeat(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bpfkit.cli.main import main

    obj = clang_bpf(ROOT / "examples/xdp_count/xdp_count.c", tmp_path / "x.o")
    pkt = tmp_path / "pkt.bin"
    pkt.write_bytes(PACKETS[0])
    assert main(["vm", str(obj), "--packet", str(pkt), "--repeat", "3", "--maps"]) == 0
    out = capsys.readouterr().out
    assert "retval: 2 (XDP_PASS)" in out
    assert "data_out: 34 bytes" in out
    assert "map counts (array): 256 slots" in out
    assert "  [17]: 3\n" in out  # proto 17 counted three times
    ctx = tmp_path / "ctx.hex"
    ctx.write_text("# pt_regs\n00 11 22 33\n")
    hello = str(HELLO)
    assert main(["vm", hello, "--ctx", str(ctx)]) == 0
    assert capsys.readouterr().out.startswith("hello from rust\n")
    assert main(["vm", hello, "--ctx", str(tmp_path / "missing")]) == 1
    assert "cannot read context" in capsys.readouterr().err
    # `bpfkit run --vm` goes through the same function.
    assert main(["run", "--vm", hello]) == 0
    assert capsys.readouterr().out.startswith("hello from rust\n")


LOOP_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct state { __u64 sum; __u32 stop; };

static long step(__u64 i, void *ctx)
{
	struct state *s = ctx;
	s->sum += i * i;
	return i == s->stop;
}

SEC("xdp")
int loop(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	struct state s = { .sum = 0, .stop = 1000 };
	__u32 n = 10;

	if (data + 2 <= end) {
		n = data[0];
		s.stop = data[1];
	}
	long done = bpf_loop(n, step, &s, 0);
	return (__u32)(done | (s.sum << 8));
}

char LICENSE[] SEC("license") = "GPL";
"""

LOOP_PACKETS = [
    bytes([n, stop]) + bytes(20) for n, stop in ((10, 200), (10, 3), (0, 0), (255, 254))
]


@pytest.mark.requires("clang19")
def test_bpf_loop_runs_its_callback_in_the_vm(tmp_path: Path) -> None:
    src = tmp_path / "loop.c"
    src.write_text(LOOP_C)
    obj = read_object(clang_bpf(src, tmp_path / "loop.o"))
    vm = Vm(obj.program("loop"), obj=obj)
    res = vm.run(packet=LOOP_PACKETS[1])  # stops after i == 3: 4 calls, sum 0+1+4+9
    assert res.r0 == (14 << 8) | 4
    assert vm.run(packet=LOOP_PACKETS[0]).r0 == (285 << 8) | 10


@pytest.mark.requires("bpf", "clang19")
def test_bpf_loop_matches_the_kernel(tmp_path: Path) -> None:
    from bpfkit.kernel.collection import load_collection

    src = tmp_path / "loop.c"
    src.write_text(LOOP_C)
    obj = read_object(clang_bpf(src, tmp_path / "loop.o"))
    vm = Vm(obj.program("loop"), obj=obj)
    with load_collection(obj) as coll:
        prog = coll.programs["loop"]
        for pkt in LOOP_PACKETS:
            assert vm.run(packet=pkt).r0 == prog.test_run(pkt).retval


SKB_LOAD_BYTES = """
    mov %r6, %r1
    mov %r1, %r6
    mov %r2, {offset}
    mov %r3, %r10
    add %r3, -8
    mov %r4, 8
    call 26
    ldxdw %r1, [%r10-8]
    mov32 %r0, %r0
    xor %r0, %r1
    exit
"""


@pytest.mark.parametrize("offset", [0, 3, 42, 43, 100])
def test_skb_load_bytes_reads_from_the_network_header(offset: int) -> None:
    pkt = bytes(range(64))
    res = Vm(asm(SKB_LOAD_BYTES.format(offset=offset)), prog_type="socket_filter", packet=pkt)
    r0 = res.run().r0
    if offset + 8 <= 64 - 14:
        assert r0 == int.from_bytes(pkt[14 + offset : 22 + offset], "little")
    else:
        assert r0 == (-14) & 0xFFFF_FFFF  # -EFAULT, buffer zeroed


@pytest.mark.requires("bpf")
@pytest.mark.parametrize("offset", [0, 3, 42, 43, 100])
def test_skb_load_bytes_matches_the_kernel(offset: int) -> None:
    from bpfkit.kernel.program import load_program

    pkt = bytes(range(64))
    insns = asm(SKB_LOAD_BYTES.format(offset=offset))
    with load_program(insns, "socket_filter", name="loadbytes") as prog:
        kernel = prog.test_run(pkt).retval
    assert Vm(insns, prog_type="socket_filter", packet=pkt).run().r0 & 0xFFFF_FFFF == kernel


@pytest.mark.requires("bpf", "tracepoint", "rustc")
def test_counter_example_same_map_contents_in_vm_and_kernel(tmp_path: Path) -> None:
    """examples/counter: the kernel counts this process's openat() calls at the tracepoint;
    the VM, given this process's identity, counts the same number for the same events."""
    import os

    from bpfkit.kernel.session import Session
    from bpfkit.toolchain import build

    obj = read_object(build(ROOT / "examples/counter/counter.rs", tmp_path / "counter.o"))
    events = 25
    me = os.getpid()
    with Session(obj, trace=False) as session:
        for _ in range(events):
            os.close(os.open("/dev/null", os.O_RDONLY))
        kernel = {_bytes(k)[:4]: _bytes(v) for k, v in session.maps["COUNTS"].items()}
    vm = Vm(obj.program("count_openat"), obj=obj, env=Env(pid=me, tgid=me))
    for _ in range(events):
        vm.run()
    mine = dict(vm.maps["COUNTS"].items())
    key = me.to_bytes(4, "little")
    assert mine == {key: events.to_bytes(8, "little")}
    assert kernel[key] == mine[key]


def test_unemulated_map_types_load_but_stop_when_used() -> None:
    from bpfkit.obj.spec import MapSpec
    from bpfkit.vm import map_from_spec

    stack_traces = map_from_spec(MapSpec("stacks", ".maps", 0, 7, 4, 8, 16))  # STACK_TRACE
    vm = Vm(with_map(COUNTER), maps={1: stack_traces})  # loads
    with pytest.raises(VmError, match="map type 7 is not emulated"):
        vm.run()


TAIL_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jt SEC(".maps");

SEC("xdp")
int second(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	if (data + 1 > (unsigned char *)(long)ctx->data_end)
		return 0;
	return 100 + data[0];
}

SEC("xdp")
int first(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jt, 1);
	return 3;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.requires("bpf", "clang19")
def test_tail_call_by_program_name_matches_the_kernel(tmp_path: Path) -> None:
    from bpfkit.kernel.collection import load_collection

    src = tmp_path / "tail.c"
    src.write_text(TAIL_C)
    obj = read_object(clang_bpf(src, tmp_path / "tail.o"))
    vm = Vm(obj.program("first"), obj=obj)
    pkt = b"\x05" + bytes(20)
    assert vm.run(packet=pkt).r0 == 3  # empty slot: the tail call fails, first goes on
    jt = vm.maps["jt"]
    assert isinstance(jt, ProgArray)
    jt.set(1, "second")
    assert vm.run(packet=pkt).r0 == 105
    with load_collection(obj) as coll:
        first = coll.programs["first"]
        assert first.test_run(pkt).retval == 3
        coll.maps["jt"][1] = coll.programs["second"].fd
        assert first.test_run(pkt).retval == 105


def test_vm_says_what_context_a_tracing_program_needs(capsys: pytest.CaptureFixture[str]) -> None:
    from bpfkit.cli.main import main

    assert main(["vm", str(HELLO)]) == 0
    err = capsys.readouterr().err
    assert "struct pt_regs" in err and "--ctx FILE" in err
