"""bpfkit on BPF objects no one here wrote: Debian's xdp-tools, libxdp1 and xdp-tests.

The packages are fetched at test time with ``apt-get download`` into
``~/.cache/bpfkit/realworld`` (``$XDG_CACHE_HOME`` honoured) and unpacked with
``dpkg-deb -x``; every BPF ELF object inside is checked (about 18 in xdp-tools 1.3.1):

* ``dump`` equals ``llvm-objdump-19 -d`` for ``--mcpu=v1..v4`` x ``--print-imm-hex`` /
  ``--no-print-imm-hex`` x ``-r`` / no ``-r``; the default (no ``--mcpu``) follows the
  rule of tests/disasm/test_objdump.py (LLVM's default line, or its ``--mcpu=v4`` line where the
  default prints ``<unknown>`` or another instruction);
* ``read_object`` and ``explain`` do not fail; ``btf`` equals ``bpftool btf dump file``;
* every object ``bpftool prog loadall`` loads, bpfkit loads too, with the same programs.

Nothing is tuned to these objects: a newer package version is checked the same way.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import probes
from bpfkit.btf import Btf
from bpfkit.cli.main import main
from bpfkit.disasm.objdump import dump
from bpfkit.explain import explain_object
from bpfkit.explain.render import render_json, render_terminal
from bpfkit.obj import read_object
from helpers import clang_bpf, llvm_objdump, realworld_objects

pytestmark = pytest.mark.requires("llvm19")


@pytest.fixture(scope="module")
@probes.needs("xdp-objects")
def objects() -> list[Path]:
    """The BPF objects of the packages, downloaded once and kept in the cache."""
    return realworld_objects()


# --- dump ---------------------------------------------------------------------------


@pytest.mark.parametrize("relocs", [False, True], ids=["plain", "r"])
@pytest.mark.parametrize("imm_hex", [False, True], ids=["dec", "hex"])
@pytest.mark.parametrize("mcpu", ["v1", "v2", "v3", "v4"])
def test_dump_equals_llvm_objdump_19(
    objects: list[Path], mcpu: str, imm_hex: bool, relocs: bool
) -> None:
    ref = llvm_objdump(objects, mcpu, imm_hex, relocs)
    for path in objects:
        ours = dump(read_object(str(path)), imm_hex=imm_hex, mcpu=mcpu, relocs=relocs)
        assert ours == ref[path], path.name


_REG = re.compile(r"\bw(\d+)\b")


def _text(line: str) -> str:
    return line.split("\t")[2] if line.count("\t") >= 2 and line[:1] == " " else line


@pytest.mark.parametrize("relocs", [False, True], ids=["plain", "r"])
@pytest.mark.parametrize("imm_hex", [False, True], ids=["dec", "hex"])
def test_default_dump_follows_the_rule(objects: list[Path], imm_hex: bool, relocs: bool) -> None:
    default, v4 = (
        llvm_objdump(objects, None, imm_hex, relocs),
        llvm_objdump(objects, "v4", imm_hex, relocs),
    )
    for path in objects:
        ours = dump(read_object(str(path)), imm_hex=imm_hex, relocs=relocs).split("\n")
        d, v = default[path].split("\n"), v4[path].split("\n")
        assert len(ours) == len(d) == len(v), path.name
        for mine, dl, vl in zip(ours, d, v, strict=True):
            if mine == dl:
                continue
            # Replaced only where LLVM's default cannot decode the instruction or
            # decodes it as another one; the replacement is the --mcpu=v4 line.
            dt, vt = _text(dl), _text(vl)
            other = dt != "<unknown>" and _REG.sub(r"r\1", dt) != _REG.sub(r"r\1", vt)
            assert dt == "<unknown>" or other, (path.name, dl, mine)
            assert mine == vl, (path.name, mine, vl)


# --- read, explain, btf -------------------------------------------------------------


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.long  # explain of every program of ~18 objects (value ranges: tens of seconds)
def test_read_and_explain(objects: list[Path]) -> None:
    for path in objects:
        obj = read_object(str(path))
        assert obj.programs, path.name
        # explain runs bpfkit's verifier over each program: once per object here, both
        # forms rendered from it (the command itself runs on the smallest object below).
        x = explain_object(obj)
        assert json.loads(render_json(x)) and render_terminal(x), path.name
        for p in x.programs:  # the verifier's states are shown; it accepts every XDP program
            assert p.verdict, (path.name, p.name)
            if p.section.startswith("xdp"):
                assert " accepts " in p.verdict, (path.name, p.name, p.verdict)
    smallest = min(objects, key=lambda p: p.stat().st_size)
    for args in (["--format", "json"], ["--color", "never"]):
        rc, out, err = _cli("explain", *args, str(smallest))
        assert rc == 0 and out, (smallest.name, err)


@pytest.mark.requires("bpftool")
def test_btf_equals_bpftool(objects: list[Path]) -> None:
    checked = 0
    for path in objects:
        ref = subprocess.run(
            ["bpftool", "btf", "dump", "file", str(path)], capture_output=True, text=True
        )
        rc, out, err = _cli("btf", str(path))
        if ref.returncode:
            continue
        assert rc == 0, (path.name, err)
        assert out == ref.stdout, path.name
        checked += 1
    assert checked >= len(objects) // 2


# --- load ---------------------------------------------------------------------------


@pytest.fixture
def bpffs(tmp_path: Path) -> Iterator[Path]:
    """A bpffs of this test's own (every mount of bpffs is a new, empty instance).  Both
    loaders pin LIBBPF_PIN_BY_NAME maps by fixed names (``filter_ports``, ...): in
    /sys/fs/bpf they would meet the pins of another run loading the same objects at the
    same moment.  Unmounting it at the end drops whatever is left."""
    from bpfkit.kernel.pins import ensure_bpffs

    d = tmp_path / "bpffs"
    d.mkdir()
    ensure_bpffs(str(d))
    try:
        yield d
    finally:
        subprocess.run(["umount", "--lazy", str(d)], check=True)


def _unpin_by_name(path: Path, bpffs: Path) -> None:
    """Remove the LIBBPF_PIN_BY_NAME pins loading ``path`` made in ``bpffs``."""
    for m in read_object(str(path)).maps:
        pin = bpffs / m.name
        if m.pinning == 1 and pin.exists():
            pin.unlink()


# bpftool (libbpf) pins LIBBPF_PIN_BY_NAME maps under /sys/fs/bpf whatever it is asked:
# it runs in a mount namespace of its own, where /sys/fs/bpf is the test's bpffs.
_IN_BPFFS = 'mount --bind "$0" /sys/fs/bpf && exec bpftool prog loadall "$1" /sys/fs/bpf/all'


def _bpftool_programs(path: Path, bpffs: Path) -> list[str] | None:
    """The programs ``bpftool prog loadall`` pins for ``path`` (its maps pinned by name
    in ``bpffs``), or None if it fails."""
    pin_dir = bpffs / "all"
    shutil.rmtree(pin_dir, ignore_errors=True)
    try:
        res = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", _IN_BPFFS]
            + [str(bpffs), str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if res.returncode:
            return None
        return sorted(p.name for p in pin_dir.iterdir() if not p.is_dir())
    finally:
        shutil.rmtree(pin_dir, ignore_errors=True)


@pytest.mark.requires("bpf", "bpftool")
def test_load_parity_with_bpftool(objects: list[Path], bpffs: Path) -> None:
    from bpfkit.kernel.collection import load_collection

    loaded = 0
    for path in objects:
        try:
            theirs = _bpftool_programs(path, bpffs)
        finally:
            _unpin_by_name(path, bpffs)
        if theirs is None:
            continue
        try:
            with load_collection(read_object(str(path)), pin_maps_dir=str(bpffs)) as coll:
                ours = sorted(coll.programs)
        finally:
            _unpin_by_name(path, bpffs)
        assert ours == theirs, path.name
        loaded += 1
    assert loaded >= len(objects) // 2, "bpftool loaded fewer than half of the objects"


# --- the VM against the kernel (BPF_PROG_TEST_RUN) ----------------------------------


def _packets() -> list[bytes]:
    """An IPv4/TCP and an IPv6/UDP frame."""
    mac = bytes(range(1, 7)) + bytes(range(11, 17))
    tcp = struct.pack("!HHIIBBHHH", 1234, 80, 1, 0, 0x50, 0x02, 8192, 0, 0)
    ip4 = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(tcp),
        1,
        0x4000,
        64,
        6,
        0,
        bytes([10, 0, 0, 1]),
        bytes([10, 0, 0, 2]),
    )
    udp = struct.pack("!HHHH", 5353, 53, 12, 0) + b"ping"
    ip6 = struct.pack(
        "!IHBB16s16s", 6 << 28, len(udp), 17, 64, bytes(15) + b"\1", bytes(15) + b"\2"
    )
    return [mac + b"\x08\x00" + ip4 + tcp, mac + b"\x86\xdd" + ip6 + udp]


@pytest.mark.requires("bpf")
def test_vm_agrees_with_the_kernel_on_xdp(objects: list[Path], bpffs: Path) -> None:
    """Every XDP program the VM can run: same return value and packet as the kernel."""
    from bpfkit.errors import VmError
    from bpfkit.kernel.collection import load_collection
    from bpfkit.vm import Vm

    compared = 0
    for path in objects:
        obj = read_object(str(path))
        progs = [p for p in obj.programs if not p.is_subprog and p.section.startswith("xdp")]
        if not progs:
            continue
        try:
            with load_collection(obj, pin_maps_dir=str(bpffs)) as coll:
                for prog in progs:
                    for pkt in _packets():
                        try:
                            mine = Vm(prog, obj=obj, packet=pkt).run()
                        except VmError as e:
                            assert "not emulated" in str(e), (path.name, prog.name, e)
                            continue
                        theirs = coll.programs[prog.name].test_run(pkt)
                        assert (mine.r0 & 0xFFFFFFFF, mine.packet) == (
                            theirs.retval,
                            theirs.data_out,
                        ), (path.name, prog.name)
                        compared += 1
        finally:
            _unpin_by_name(path, bpffs)
    assert compared >= 20


# --- found on the kernel's samples/bpf: a map libbpf would refuse -------------------

OLD_STYLE_MAP_C = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* samples/bpf/tcp_dumpstats_kern.c writes .maps with plain fields, which libbpf (and
   bpfkit's loader) refuse; llvm-objdump and bpftool btf still read the object. */
struct { __u32 type; __u32 map_flags; } old_map SEC(".maps") = { .type = 1 };

SEC("xdp")
int prog(struct xdp_md *ctx) { return (long)&old_map > 0 ? 2 : 1; }
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.requires("clang19", "bpftool")
def test_listing_does_not_need_loadable_maps(tmp_path: Path) -> None:
    src, obj = tmp_path / "old.c", tmp_path / "old.o"
    src.write_text(OLD_STYLE_MAP_C)
    clang_bpf(src, obj)
    for relocs in (False, True):
        flags = ["-r"] if relocs else []
        rc, out, err = _cli("dump", "--mcpu", "v3", *flags, str(obj))
        assert rc == 0, err
        assert out == llvm_objdump([obj], "v3", True, relocs)[obj]
    rc, out, err = _cli("btf", str(obj))
    ref = subprocess.run(["bpftool", "btf", "dump", "file", str(obj)], capture_output=True)
    assert rc == 0, err
    assert out == ref.stdout.decode()
    # Loading needs the map: a one-line error naming it, no traceback.
    rc, out, err = _cli("explain", str(obj))
    assert rc == 1 and "old_map" in err and "Traceback" not in err


# --- found on the kernel's selftests: usdt.bpf.h and test_snprintf.c ----------------

LIBBPF_CONVENTIONS_C = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* usdt.bpf.h: a global but hidden sub-program writes through its pointer argument
   without a NULL check; libbpf makes its FUNC static so the verifier checks it in the
   caller's context (as a global function it would be rejected). */
__attribute__((visibility("hidden"))) __attribute__((noinline)) int fill(long *res)
{
    *res = 7;
    return 0;
}

/* test_snprintf.c: a `const void` ksym is typeless (its address from kallsyms). */
extern const void schedule __ksym;

SEC("socket")
int prog(void *ctx)
{
    long v = 0;
    fill(&v);
    return v + ((unsigned long)&schedule >> 63);
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.requires("bpf", "bpftool", "clang19")
def test_libbpf_conventions_load_as_with_bpftool(tmp_path: Path, bpffs: Path) -> None:
    from bpfkit.kernel.collection import load_collection

    src, obj = tmp_path / "conv.c", tmp_path / "conv.o"
    src.write_text(LIBBPF_CONVENTIONS_C)
    clang_bpf(src, obj)
    theirs = _bpftool_programs(obj, bpffs)
    assert theirs == ["prog"]
    with load_collection(read_object(str(obj))) as coll:
        assert sorted(coll.programs) == theirs


BAD_PINNING_C = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* test_pinning_invalid.c: pinning 2 is neither none nor LIBBPF_PIN_BY_NAME. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} bpfkit_rw_pinned SEC(".maps");
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
    __uint(pinning, 2);
} bad_pin SEC(".maps");

SEC("socket")
int prog(void *ctx)
{
    __u32 k = 0;
    return bpf_map_lookup_elem(&bpfkit_rw_pinned, &k) != 0 && bpf_map_lookup_elem(&bad_pin, &k) != 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.requires("bpf", "bpftool", "clang19")
def test_invalid_pinning_refused_as_by_bpftool(tmp_path: Path, bpffs: Path) -> None:
    from bpfkit.errors import ObjectError
    from bpfkit.kernel.collection import load_collection

    src, obj = tmp_path / "pin.c", tmp_path / "pin.o"
    src.write_text(BAD_PINNING_C)
    clang_bpf(src, obj)
    assert _bpftool_programs(obj, bpffs) is None
    with pytest.raises(ObjectError, match="bad_pin.*pinning 2"):
        load_collection(read_object(str(obj)), pin_maps_dir=str(bpffs))
    assert "bpfkit_rw_pinned" not in os.listdir(bpffs)  # nothing pinned


# --- found on the kernel's selftests: struct_ops (bpf_cubic.o, bpf_dctcp.o, ...) -------

STRUCT_OPS_C = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Members in another order than the kernel's: the method is found by name. */
struct tcp_congestion_ops {
    __u32 (*undo_cwnd)(void *sk);
    __u32 (*ssthresh)(void *sk);
    char name[16];
};

SEC("struct_ops/my_undo")
__u32 my_undo(unsigned long long *ctx) { return 2; }

SEC("struct_ops/my_ssthresh")
__u32 my_ssthresh(unsigned long long *ctx) { return 2; }

SEC(".struct_ops")
struct tcp_congestion_ops bpfkit_ca = {
    .undo_cwnd = (void *)my_undo,
    .ssthresh = (void *)my_ssthresh,
    .name = "bpfkit_ca",
};
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.requires("bpf", "bpftool", "clang19")
def test_struct_ops_programs_load_as_with_bpftool(
    tmp_path: Path, vmlinux_btf: Btf, bpffs: Path
) -> None:
    from bpfkit.btf import Kind
    from bpfkit.btf.types import Struct
    from bpfkit.kernel.collection import load_collection
    from bpfkit.obj.struct_ops import struct_ops_target

    src, obj = tmp_path / "ops.c", tmp_path / "ops.o"
    src.write_text(STRUCT_OPS_C)
    clang_bpf(src, obj)
    spec = read_object(str(obj))
    kernel = vmlinux_btf
    ops = kernel.find("tcp_congestion_ops", Kind.STRUCT)
    assert isinstance(ops, Struct)
    names = [m.name for m in ops.members]
    assert struct_ops_target(spec, "my_undo", kernel) == (ops.id, names.index("undo_cwnd"))
    assert struct_ops_target(spec, "my_ssthresh", kernel) == (ops.id, names.index("ssthresh"))
    theirs = _bpftool_programs(obj, bpffs)
    assert theirs == ["my_ssthresh", "my_undo"]
    with load_collection(spec) as coll:
        assert sorted(coll.programs) == theirs


IFINDEX_C = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* test_global_func1.c returns a sum of skb->len and skb->ifindex. */
SEC("tc")
int tc_prog(struct __sk_buff *skb) { return skb->len * 16 + skb->ifindex; }

SEC("socket")
int sock_prog(struct __sk_buff *skb) { return skb->len * 16 + skb->ifindex; }

/* pkt_type comes from the destination MAC, as eth_type_trans() on loopback sets it. */
SEC("tc")
int tc_pkt_type(struct __sk_buff *skb) { return skb->pkt_type; }

/* XDP test runs arrive on the loopback device too. */
SEC("xdp")
int xdp_ingress(struct xdp_md *ctx) { return ctx->ingress_ifindex * 16 + ctx->rx_queue_index + 1; }

/* cgroup_skb programs start at the network header (len and data without Ethernet). */
SEC("cgroup_skb/ingress")
int cg_prog(struct __sk_buff *skb)
{
    unsigned char *p = (void *)(long)skb->data;
    if ((void *)(p + 1) > (void *)(long)skb->data_end)
        return 0;
    return (p[0] >> 4 == 4 && skb->len == 40) || (p[0] >> 4 == 6 && skb->len == 52);
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.requires("bpf", "clang19")
def test_vm_skb_context_as_test_run(tmp_path: Path) -> None:
    """BPF_PROG_TEST_RUN runs skb programs on the loopback device (ifindex 1, pkt_type
    from the destination MAC), and cgroup_skb programs from the network header: the VM
    too."""
    from bpfkit.kernel.collection import load_collection
    from bpfkit.vm import Vm

    src, obj = tmp_path / "ifx.c", tmp_path / "ifx.o"
    src.write_text(IFINDEX_C)
    clang_bpf(src, obj)
    spec = read_object(str(obj))
    with load_collection(spec) as coll:
        for pkt in _packets():
            for name in ("tc_prog", "sock_prog", "cg_prog", "xdp_ingress"):
                run = coll.programs[name].test_run(pkt)
                vm = Vm(spec.program(name), obj=spec, packet=pkt).run()
                assert vm.r0 & 0xFFFFFFFF == run.retval, (name, vm.r0, run.retval)
                assert run.retval & 0xF == 1
                # data_out: the L2 header an L3 program did not see comes back zeroed.
                assert vm.packet == run.data_out, name
            types = set()
            for dst in (pkt[:6], b"\xff" * 6, bytes(6), bytes([2, 0, 0, 0, 0, 1])):
                frame = dst + pkt[6:]
                theirs = coll.programs["tc_pkt_type"].test_run(frame).retval
                mine = Vm(spec.program("tc_pkt_type"), obj=spec, packet=frame).run().r0
                assert mine == theirs, ("pkt_type", dst.hex(), mine, theirs)
                types.add(theirs)
            assert len(types) == 3
