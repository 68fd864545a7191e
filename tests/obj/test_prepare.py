"""bpfkit.obj.prepare without root: objects prepared for a kernel recorded in the tests
(tests/data/kernel: a trimmed copy of a real kernel's BTF and a few of its facts, written
by scripts/record_kernel_btf.py), then checked by running the prepared instructions in
bpfkit's VM, against the recorded kernel's own types, and with bpftool reading the BTF.

The same C programs load into the real kernel in tests/kernel/test_load_kernel.py.
"""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import pytest

from bpfkit.btf import Kind, parse_btf
from bpfkit.btf import types as T
from bpfkit.btf.btf import Btf
from bpfkit.btf.dump import dump_raw
from bpfkit.btf.encode import BtfBuilder
from bpfkit.errors import KernelError, ObjectError
from bpfkit.isa.insn import Insn
from bpfkit.obj import read_object
from bpfkit.obj.core_relocate import POISON_HELPER
from bpfkit.obj.prepare import PreparedObject, PreparedProgram, RecordedKernel, prepare
from bpfkit.obj.spec import ObjectSpec
from bpfkit.uapi import AttachType, ProgType
from bpfkit.vm.maps import VmMap, map_from_data, map_from_spec
from bpfkit.vm.vm import Vm
from helpers import TESTS, clang_bpf

RECORDED = TESTS / "data" / "kernel"
PROGS = TESTS / "kernel" / "load_progs"
CALL, LDDW = 0x85, 0x18

KSYMS_C = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
extern const int bpf_prog_active __ksym;        /* typed: its kernel BTF id */
extern const void _stext __ksym;                /* typeless: its kallsyms address */
extern const void bpfkit_not_there __ksym __weak;
__u64 out[3];
SEC("socket") int ksyms(void *ctx)
{
	out[0] = (__u64)&bpf_prog_active;
	out[1] = (__u64)&_stext;
	out[2] = (__u64)&bpfkit_not_there;
	return 0;
}
char _license[] SEC("license") = "GPL";
"""

STRUCT_OPS_C = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct tcp_congestion_ops {   /* members in another order than the kernel's */
    __u32 (*undo_cwnd)(void *sk);
    __u32 (*ssthresh)(void *sk);
    char name[16];
};
SEC("struct_ops/my_undo") __u32 my_undo(unsigned long long *ctx) { return 2; }
SEC("struct_ops/my_ssthresh") __u32 my_ssthresh(unsigned long long *ctx) { return 2; }
SEC(".struct_ops") struct tcp_congestion_ops bpfkit_ca = {
    .undo_cwnd = (void *)my_undo, .ssthresh = (void *)my_ssthresh, .name = "bpfkit_ca",
};
char LICENSE[] SEC("license") = "GPL";
"""

pytestmark = pytest.mark.requires("clang19")


@pytest.fixture(scope="module")
def kernel() -> RecordedKernel:
    desc = json.loads((RECORDED / "kernel.json").read_text())
    return RecordedKernel(
        parse_btf((RECORDED / "vmlinux.btf").read_bytes()),
        kallsyms=desc["kallsyms"],
        kconfig=desc["config"],
        version=tuple(desc["version"]),
        machine=desc["machine"],
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ObjectSpec]:
    out = tmp_path_factory.mktemp("prepare")
    objs = {}
    for src in PROGS.glob("*.c"):
        objs[src.stem] = read_object(clang_bpf(src, out / f"{src.stem}.o"))
    for name, text in (("ksyms", KSYMS_C), ("struct_ops", STRUCT_OPS_C)):
        (out / f"{name}.c").write_text(text)
        objs[name] = read_object(clang_bpf(out / f"{name}.c", out / f"{name}.o"))
    return objs


def _run(prepared: PreparedObject, name: str, packet: bytes) -> tuple[int, dict[str, VmMap]]:
    """Run prepared program ``name`` in the VM, its maps bound to made-up descriptors."""
    prog = next(p for p in prepared.programs if p.name == name)
    maps = {m.name: map_from_spec(m) for m in prepared.spec.maps}
    maps.update({d.name: map_from_data(d) for d in prepared.data})
    fds = {n: 100 + i for i, n in enumerate(maps)}
    vm = Vm(
        prog.bind(fds),
        maps={fds[n]: m for n, m in maps.items()},
        prog_type="socket_filter",
    )
    return vm.run(packet=packet).r0, maps


def _u64s(vmap: VmMap) -> tuple[int, ...]:
    (_, value), *_ = vmap.items()
    return struct.unpack(f"<{len(value) // 8}Q", value)


def _records(blob: bytes, size: int) -> list[tuple[int, ...]]:
    return [struct.unpack_from(f"<{size // 4}I", blob, i) for i in range(0, len(blob), size)]


def _starts(prog: PreparedProgram) -> list[int]:
    """Instruction slots at which the linked program's calls land."""
    out, slot = [], 0
    for insn in prog.insns:
        if insn.opcode == CALL and insn.src == 1:
            out.append(slot + insn.imm + 1)
        slot += insn.width
    return out


# -- CO-RE -------------------------------------------------------------------------------


def test_core_follows_the_recorded_kernel(
    built: dict[str, ObjectSpec], kernel: RecordedKernel
) -> None:
    prepared = prepare(built["core"], kernel, programs=["core"])
    assert not prepared.notes and not prepared.core_failures
    _, maps = _run(prepared, "core", bytes(64))
    out = _u64s(maps[".bss"])
    task = kernel.types.find("task_struct", "struct")
    assert isinstance(task, T.Struct)
    offsets = []
    for name in ("pid", "tgid", "real_parent"):
        m = task.member(name)
        assert m is not None
        offsets.append(m.bit_offset // 8)
    tgid = kernel.types.find("pid_type", "enum")
    assert isinstance(tgid, T.Enum)
    assert out[:3] == tuple(offsets)
    assert out[3:] == (8, 0, task.size, 1, tgid.value("PIDTYPE_TGID"), 0)
    # The local definitions said otherwise: nothing was left as compiled.
    assert offsets != [0, 4, 8]


def test_a_missing_field_poisons_its_instruction(
    built: dict[str, ObjectSpec], kernel: RecordedKernel
) -> None:
    prepared = prepare(built["core"], kernel, programs=["poisoned"])
    assert any("bpfkit_no_such_field" in why for why in prepared.core_failures)
    (prog,) = prepared.programs
    assert Insn(CALL, 0, 0, 0, POISON_HELPER) in prog.insns


def test_core_against_another_kernel_gives_other_offsets(built: dict[str, ObjectSpec]) -> None:
    b = BtfBuilder()
    i32 = b.add(T.Int(0, "int", 4, T.INT_SIGNED, 0, 32))
    task = b.add(T.Struct(0, "task_struct", 64, ()), share=False)
    ptr = b.add(T.Ptr(0, "", task))
    members = (T.Member("real_parent", ptr, 0), T.Member("tgid", i32, 64), T.Member("pid", i32, 96))
    b.types[task - 1] = T.Struct(task, "task_struct", 64, members)
    b.add(T.Enum(0, "pid_type", 4, (T.EnumValue("PIDTYPE_PID", 0), T.EnumValue("PIDTYPE_TGID", 5))))
    small = RecordedKernel(parse_btf(b.encode()))
    prepared = prepare(built["core"], small, programs=["core"])
    out = _u64s(_run(prepared, "core", bytes(64))[1][".bss"])
    assert out == (12, 8, 0, 8, 0, 64, 1, 5, 0)


# -- sub-programs, maps, func_info/line_info -----------------------------------------------


def test_subprograms_linked_and_maps_bound(
    built: dict[str, ObjectSpec], kernel: RecordedKernel
) -> None:
    prepared = prepare(built["globals"], kernel)
    assert [p.name for p in prepared.programs] == ["globals", "xdp_len"]
    retval, maps = _run(prepared, "globals", bytes(64))
    assert retval == 50 * 3 + 5 + 1  # plus_one(scale(skb->len)) with factor 3, bias 5
    assert _u64s(maps[".bss"]) == (1,)  # calls
    prog = prepared.programs[0]
    assert {name for _, name in prog.map_refs} == {"counts", ".rodata", ".data", ".bss"}
    for index, _ in prog.map_refs:
        assert prog.insns[index].opcode == LDDW and prog.insns[index].src in (1, 2)
    assert prog.prog_type == ProgType.SOCKET_FILTER and prog.license == "GPL"
    with pytest.raises(ObjectError, match="'counts' was not created"):
        prog.bind({".bss": 3, ".data": 4, ".rodata": 5})


def test_func_and_line_info_follow_the_linked_functions(
    built: dict[str, ObjectSpec], kernel: RecordedKernel
) -> None:
    prog = prepare(built["globals"], kernel, programs=["globals"]).programs[0]
    func = _records(prog.func_info, 8)
    # One record per function, at its first instruction: the program, scale, plus_one.
    assert [off for off, _ in func] == [0, *sorted(set(_starts(prog)))]
    btf = built["globals"].parsed_btf()
    assert btf is not None
    names = [btf.type(type_id).name for _, type_id in func]
    assert names[0] == "globals" and sorted(names[1:]) == ["plus_one", "scale"]
    lines = _records(prog.line_info, 16)
    assert lines[0][0] == 0 and [r[0] for r in lines] == sorted(r[0] for r in lines)
    assert max(r[0] for r in lines) < sum(i.width for i in prog.insns)
    assert all(btf.string(r[1]).endswith("globals.c") for r in lines)


# -- externs -------------------------------------------------------------------------------


def test_kconfig_and_kfuncs_resolve_against_the_recording(
    built: dict[str, ObjectSpec], kernel: RecordedKernel
) -> None:
    prepared = prepare(built["externs"], kernel)
    assert not prepared.notes
    kconfig = next(d for d in prepared.data if d.name == ".kconfig")
    assert kconfig.readonly
    assert prepared.btf is not None
    sec = parse_btf(prepared.btf).find(".kconfig", "datasec")  # what the kernel is told
    assert isinstance(sec, T.Datasec) and sec.size == kconfig.size
    fixed = parse_btf(prepared.btf)
    values = {}
    for vi in sec.vars:
        raw = kconfig.data[vi.offset : vi.offset + vi.size]
        values[fixed.type(vi.type).name] = int.from_bytes(raw, "little")
    a, b, c = kernel.version
    assert values == {
        "LINUX_KERNEL_VERSION": (a << 16) | (b << 8) | min(c, 255),
        "CONFIG_HZ": int(kernel.kconfig["CONFIG_HZ"]),
        "CONFIG_BPF_SYSCALL": 1,
        "CONFIG_BPFKIT_NOT_A_THING": 0,  # __weak and unknown
    }
    (prog,) = prepared.programs
    kfuncs = {i.imm for i in prog.insns if i.opcode == CALL and i.src == 2}
    want = {
        kernel.types.find(n, Kind.FUNC).id
        for n in ("bpf_iter_num_new", "bpf_iter_num_next", "bpf_iter_num_destroy")
    }
    assert kfuncs == want
    assert ".kconfig" in {name for _, name in prog.map_refs}


def test_missing_externs_are_refused_before_loading(
    built: dict[str, ObjectSpec], kernel: RecordedKernel
) -> None:
    no_config = RecordedKernel(kernel.types, version=kernel.version)
    with pytest.raises(ObjectError, match="CONFIG_[A-Z_]+ is not set in the recorded config"):
        prepare(built["externs"], no_config)
    b = BtfBuilder()
    b.add(T.Int(0, "int", 4, T.INT_SIGNED, 0, 32))
    bare = RecordedKernel(parse_btf(b.encode()), kconfig=kernel.kconfig)
    with pytest.raises(ObjectError, match="kfunc 'bpf_iter_num_new' does not exist"):
        prepare(built["externs"], bare)


def test_ksyms_typed_typeless_and_weak(
    built: dict[str, ObjectSpec], kernel: RecordedKernel
) -> None:
    (prog,) = prepare(built["ksyms"], kernel).programs
    lddws = {
        (i.src, (i.imm & 0xFFFFFFFF) | (i.imm_hi & 0xFFFFFFFF) << 32)
        for i in prog.insns
        if i.opcode == LDDW and i.src != 2
    }
    var = kernel.types.find("bpf_prog_active", Kind.VAR)
    assert lddws == {
        (3, var.id),  # typed: BPF_PSEUDO_BTF_ID
        (0, kernel.kallsyms["_stext"]),  # typeless: the address
        (0, 0),  # weak and absent
    }
    with pytest.raises(ObjectError, match="ksym '_stext' does not exist"):
        prepare(built["ksyms"], RecordedKernel(kernel.types))


# -- BTF for the kernel ----------------------------------------------------------------------


@pytest.mark.requires("bpftool")
def test_btf_sanitized_for_what_the_kernel_predates(
    built: dict[str, ObjectSpec], kernel: RecordedKernel, tmp_path: Path
) -> None:
    obj = built["btf_kinds"]
    newer = {Kind.FLOAT, Kind.DECL_TAG, Kind.TYPE_TAG, Kind.ENUM64}
    now = prepare(obj, kernel)
    assert now.btf is not None and not now.notes
    assert {t.kind for t in parse_btf(now.btf).types} >= newer  # 6.x knows them all
    old = prepare(obj, RecordedKernel(kernel.types, version=(5, 15, 0)))
    assert old.btf is not None and old.btf_fallback is not None
    kinds = {t.kind for t in parse_btf(old.btf).types}
    assert Kind.FLOAT in kinds and not kinds & (newer - {Kind.FLOAT})  # FLOAT is 5.13
    assert "DECL_TAG, ENUM64, TYPE_TAG" in old.notes[0]
    assert not {t.kind for t in parse_btf(old.btf_fallback).types} & newer
    path = tmp_path / "sanitized.btf"
    path.write_bytes(old.btf)
    theirs = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(path)], check=True, capture_output=True, text=True
    ).stdout
    mine = parse_btf(old.btf)
    assert theirs == dump_raw(mine)
    tagged = mine.find("tagged", "struct")
    before = obj.parsed_btf()
    assert isinstance(before, Btf) and before.find("tagged", "struct").id == tagged.id


# -- program types and attach targets ----------------------------------------------------------


def test_btf_attach_targets_from_the_recorded_kernel(
    built: dict[str, ObjectSpec], kernel: RecordedKernel
) -> None:
    progs = {p.name: p for p in prepare(built["btf_targets"], kernel).programs}
    switch, task = progs["on_switch"], progs["dump_task"]
    typedef = kernel.types.find("btf_trace_sched_switch", Kind.TYPEDEF)
    assert (switch.prog_type, switch.expected_attach_type, switch.attach_btf_id) == (
        ProgType.TRACING,
        AttachType.TRACE_RAW_TP,
        typedef.id,
    )
    func = kernel.types.find("bpf_iter_task", Kind.FUNC)
    assert (task.expected_attach_type, task.attach_btf_id) == (AttachType.TRACE_ITER, func.id)
    with pytest.raises(KernelError, match="no typedef 'btf_trace_sched_switch'"):
        prepare(built["btf_targets"], RecordedKernel(parse_btf(BtfBuilder().encode())))


def test_struct_ops_methods_by_member_name(
    built: dict[str, ObjectSpec], kernel: RecordedKernel
) -> None:
    ops = kernel.types.find("tcp_congestion_ops", Kind.STRUCT)
    assert isinstance(ops, T.Struct)
    names = [m.name for m in ops.members]
    progs = {p.name: p for p in prepare(built["struct_ops"], kernel).programs}
    assert {n: (p.attach_btf_id, p.expected_attach_type) for n, p in progs.items()} == {
        "my_undo": (ops.id, names.index("undo_cwnd")),
        "my_ssthresh": (ops.id, names.index("ssthresh")),
    }
    assert {p.prog_type for p in progs.values()} == {ProgType.STRUCT_OPS}


def test_overrides_and_errors_before_anything_is_created(
    built: dict[str, ObjectSpec], kernel: RecordedKernel
) -> None:
    obj = built["legacy_maps"]
    (prog,) = prepare(obj, kernel, programs=["on_clone"], prog_types={"on_clone": 5}).programs
    assert (prog.prog_type, prog.expected_attach_type, prog.prog_flags) == (5, 0, 0)
    assert prog.kern_version == kernel.version_code  # the `version` section says "any"
    with pytest.raises(ObjectError, match="no program named 'nope'"):
        prepare(obj, kernel, programs=["nope"])
