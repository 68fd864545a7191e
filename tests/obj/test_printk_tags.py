"""Tagged printk formats (bpfkit.obj.printk_tags), without root: the calls ``bpfkit run``
rewrites, the stubs and the data section they use, the BTF func_info/line_info the
kernel then wants for the stubs, and the tagged lines the rewritten programs print when
bpfkit's VM runs them.  The kernel runs them in tests/kernel/test_printk_tags_kernel.py.
"""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import pytest

import probes
from bpfkit.btf import parse_btf
from bpfkit.btf import types as T
from bpfkit.btf.dump import dump_raw
from bpfkit.errors import ObjectError
from bpfkit.events.printk import TagFilter, printk_sites
from bpfkit.isa.insn import Insn
from bpfkit.obj import read_object
from bpfkit.obj.prepare import PreparedObject, RecordedKernel, prepare
from bpfkit.obj.printk_tags import (
    STUB_NAME,
    TAG_SECTION,
    PrintkSite,
    PrintkTagging,
    run_tag,
    tag_program,
)
from bpfkit.obj.spec import ObjectSpec, ProgramSpec
from bpfkit.vm.maps import map_from_data, map_from_spec
from bpfkit.vm.vm import Vm
from helpers import ROOT, TESTS, clang_bpf

HELLO = ROOT / "examples" / "hello" / "hello.o"
RECORDED = TESTS / "data" / "kernel"
CALL, LDDW = 0x85, 0x18

PRINTS_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
static __attribute__((noinline)) int twice(int x)
{
	bpf_printk("twice %d", x);
	return 2 * x;
}
SEC("socket") int prints(void *ctx)
{
	bpf_printk("first %d", 1);
	int y = twice(21);
	bpf_printk("second %d and %d", y, 3);
	return y;
}
char LICENSE[] SEC("license") = "GPL";
"""


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
@probes.needs("clang19")
def prints(tmp_path_factory: pytest.TempPathFactory) -> ObjectSpec:
    out = tmp_path_factory.mktemp("printk_tags")
    (out / "prints.c").write_text(PRINTS_C)
    return read_object(clang_bpf(out / "prints.c", out / "prints.o"))


def _tagging(obj: ObjectSpec, tag: str = "[bpfkit 42] ") -> PrintkTagging:
    return PrintkTagging(tag, tuple(printk_sites(obj)))


def _vm_output(prepared: PreparedObject, name: str, prog_type: str) -> tuple[int, list[str]]:
    """Run prepared program ``name`` in the VM, its maps bound to made-up descriptors."""
    prog = next(p for p in prepared.programs if p.name == name)
    maps = {m.name: map_from_spec(m) for m in prepared.spec.maps}
    maps.update({d.name: map_from_data(d) for d in prepared.data})
    fds = {n: 100 + i for i, n in enumerate(maps)}
    vm = Vm(prog.bind(fds), maps={fds[n]: m for n, m in maps.items()}, prog_type=prog_type)
    result = vm.run(packet=bytes(64)) if prog_type == "socket_filter" else vm.run()
    return result.r0, result.output


def _records(blob: bytes, size: int) -> list[tuple[int, ...]]:
    return [struct.unpack_from(f"<{size // 4}I", blob, i) for i in range(0, len(blob), size)]


def _slots(insns: tuple[Insn, ...]) -> list[int]:
    out, slot = [], 0
    for i in insns:
        out.append(slot)
        slot += i.width
    return out


# -- the seed: a format built on the stack, no BTF ------------------------------------------


def test_the_seeds_call_goes_through_a_stub_printing_the_tagged_format(
    kernel: RecordedKernel,
) -> None:
    obj = read_object(str(HELLO))
    tagging = _tagging(obj)
    (site,) = tagging.sites
    assert (site.slot, site.helper, site.format) == (11, 6, b"hello from rust\n")
    data = tagging.data()
    assert data is not None and data.name == TAG_SECTION and data.readonly
    assert data.data == b"[bpfkit 42] hello from rust\n\0"

    plain = prepare(obj, kernel).programs[0]
    tagged_obj = prepare(obj, kernel, printk=tagging)
    prog = tagged_obj.programs[0]
    assert TAG_SECTION in {d.name for d in tagged_obj.data}
    # The call at slot 11 (instruction 9: two lddw before it) now calls the stub
    # appended after the program, at slot 14 ...
    assert len(plain.insns) == 12 and plain.insns[9] == Insn(CALL, imm=6)
    assert plain.insns[:9] == prog.insns[:9] and plain.insns[10:] == prog.insns[10:12]
    assert prog.insns[9] == Insn(CALL, src=1, imm=14 - 12)
    # ... which loads the tagged copy, its length, calls the same helper and returns.
    assert prog.insns[12:] == (
        Insn(LDDW, 1, 2, 0, 0, 0),
        Insn(0xB7, 2, 0, 0, len(data.data)),
        Insn(CALL, imm=6),
        Insn(0x95),
    )
    assert prog.map_refs == ((12, TAG_SECTION),)
    # No BTF: no func_info/line_info to extend.
    assert prog.func_info == b"" and prog.line_info == b""


def test_the_seed_tagged_prints_the_tag_in_the_vm(kernel: RecordedKernel) -> None:
    obj = read_object(str(HELLO))
    assert _vm_output(prepare(obj, kernel), "kprobe__sys_clone", "kprobe")[1] == [
        "hello from rust\n"
    ]
    tagged = prepare(obj, kernel, printk=_tagging(obj))
    assert _vm_output(tagged, "kprobe__sys_clone", "kprobe")[1] == ["[bpfkit 42] hello from rust\n"]


def test_without_printk_tagging_nothing_changes(kernel: RecordedKernel) -> None:
    obj = read_object(str(HELLO))
    assert prepare(obj, kernel) == prepare(obj, kernel, printk=None)
    assert TAG_SECTION not in {d.name for d in prepare(obj, kernel).data}


# -- C: formats in .rodata, a sub-program, BTF func_info and line_info ------------------------


@pytest.mark.requires("clang19")
def test_c_calls_in_the_program_and_its_subprogram_are_tagged_in_the_vm(
    prints: ObjectSpec, kernel: RecordedKernel
) -> None:
    tagging = _tagging(prints)
    assert sorted(s.format for s in tagging.sites if s.format) == [
        b"first %d",
        b"second %d and %d",
        b"twice %d",
    ]
    r0, plain = _vm_output(prepare(prints, kernel), "prints", "socket_filter")
    assert (r0, plain) == (42, ["first 1", "twice 21", "second 42 and 3"])
    tagged = prepare(prints, kernel, printk=tagging)
    r0, out = _vm_output(tagged, "prints", "socket_filter")
    assert r0 == 42
    assert out == [f"[bpfkit 42] {line}" for line in plain]


@pytest.mark.requires("clang19")
def test_stubs_get_a_static_func_and_the_line_of_their_call(
    prints: ObjectSpec, kernel: RecordedKernel
) -> None:
    plain = prepare(prints, kernel).programs[0]
    tagged_obj = prepare(prints, kernel, printk=_tagging(prints))
    prog = tagged_obj.programs[0]
    assert tagged_obj.btf is not None
    btf = parse_btf(tagged_obj.btf)
    end = sum(i.width for i in plain.insns)
    stubs = [end, end + 5, end + 10]
    # func_info: the program's records unchanged, then one per stub naming bpfkit_printk.
    func = _records(prog.func_info, 8)
    assert func[: len(plain.func_info) // 8] == _records(plain.func_info, 8)
    added = func[len(plain.func_info) // 8 :]
    assert [off for off, _ in added] == stubs
    (func_id,) = {type_id for _, type_id in added}
    stub = btf.type(func_id)
    assert isinstance(stub, T.Func) and stub.name == STUB_NAME
    assert stub.linkage == T.Linkage.STATIC
    proto = btf.type(stub.type)
    assert isinstance(proto, T.FuncProto) and proto.params == ()
    ret = btf.type(proto.return_type)
    assert isinstance(ret, T.Int) and (ret.name, ret.size, ret.signed) == ("long", 8, True)
    # line_info: one record at each stub, the line of the call it stands for.
    lines = _records(prog.line_info, 16)
    assert lines[: len(plain.line_info) // 16] == _records(plain.line_info, 16)
    added_lines = lines[len(plain.line_info) // 16 :]
    assert [r[0] for r in added_lines] == stubs
    calls = [
        slot + insn.imm + 1
        for slot, insn in zip(_slots(prog.insns), prog.insns, strict=True)
        if insn.opcode == CALL and insn.src == 1
    ]
    assert set(stubs) <= set(calls)
    for record in added_lines:
        (call_slot,) = [
            s
            for s, i in zip(_slots(prog.insns), prog.insns, strict=True)
            if i.opcode == CALL and i.src == 1 and s + i.imm + 1 == record[0]
        ]
        before = [r for r in lines if r[0] <= call_slot][-1]
        assert record[1:] == before[1:]
        assert "bpf_printk" in btf.string(record[2])  # the source line of the call
    # Every type id of the object is unchanged (the stubs' types come after them).
    original = prints.parsed_btf()
    assert original is not None and func_id == len(original.types) + 2
    assert [t.name for t in btf.types[: len(original.types)]] == [t.name for t in original.types]


@pytest.mark.requires("clang19", "bpftool")
def test_bpftool_reads_the_btf_with_the_stub_types(
    prints: ObjectSpec, kernel: RecordedKernel, tmp_path: Path
) -> None:
    tagged = prepare(prints, kernel, printk=_tagging(prints))
    assert tagged.btf is not None
    path = tmp_path / "tagged.btf"
    path.write_bytes(tagged.btf)
    theirs = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(path)], check=True, capture_output=True, text=True
    ).stdout
    assert theirs == dump_raw(parse_btf(tagged.btf))
    assert f"FUNC '{STUB_NAME}' type_id=" in theirs and "linkage=static" in theirs


# -- what is not tagged ---------------------------------------------------------------------


def _prog(insns: list[Insn]) -> ObjectSpec:
    prog = ProgramSpec("p", "tracepoint/a/b", 5, 0, tuple(insns), (), False)
    return ObjectSpec("t.o", False, (prog,), (), (), "GPL", None, (), (), {})


def test_a_call_whose_format_is_unknown_stays_as_it_is(kernel: RecordedKernel) -> None:
    obj = _prog([Insn(0x79, 1, 1, 0, 0), Insn(0xB7, 2, 0, 0, 8), Insn(CALL, imm=6), Insn(0x95)])
    tagging = _tagging(obj)
    (site,) = tagging.sites
    assert site.format is None and "not a known address" in site.why
    assert tagging.untaggable == (site,) and tagging.data() is None
    prog = prepare(obj, kernel, printk=tagging, prog_types={"p": 5}).programs[0]
    assert prog.insns == obj.programs[0].insns


def test_a_format_without_its_nul_within_r2_is_not_tagged() -> None:
    stores = [Insn(0x62, 10, 0, -8, int.from_bytes(b"abcd", "little"))]
    obj = _prog(
        stores
        + [
            Insn(0xBF, 1, 10),
            Insn(0x07, 1, 0, 0, -8),
            Insn(0xB7, 2, 0, 0, 4),  # no NUL in the 4 bytes: the kernel refuses the call
            Insn(CALL, imm=6),
            Insn(0x95),
        ]
    )
    (site,) = printk_sites(obj)
    assert site.format is None and "no NUL" in site.why


def test_a_site_that_is_not_the_call_it_names_is_left_alone() -> None:
    insns = (Insn(0xB7, 0), Insn(0x95))
    wrong = PrintkSite("s", 0, 0, 6, b"x")
    out = tag_program(insns, [("s", 0, 0)], (), b"", b"", PrintkTagging("[t] ", (wrong,)), None)
    assert out.insns == insns and out.tagged == 0


def test_func_info_without_a_stub_type_is_refused() -> None:
    insns = (Insn(CALL, imm=6), Insn(0x95))
    site = PrintkSite("s", 0, 0, 6, b"x")
    with pytest.raises(ObjectError, match="no stub FUNC type"):
        tag_program(insns, [("s", 0, 0)], (), b"\0" * 8, b"", PrintkTagging("[t] ", (site,)), None)


@pytest.mark.parametrize("tag", ["", "100% ", "caf\u00e9 ", "a\nb"])
def test_tags_bpf_trace_printk_would_refuse(tag: str) -> None:
    with pytest.raises(ObjectError, match="printable ASCII"):
        PrintkTagging(tag, ())


def test_run_tags_are_short_and_say_the_process() -> None:
    assert run_tag(4821) == "[bpfkit 4821] "
    assert run_tag(4821, 2) == "[bpfkit 4821.2] "


# -- the reader's side ------------------------------------------------------------------------


def test_a_run_shows_its_own_lines_without_the_tag_and_no_other_runs() -> None:
    site = PrintkSite("s", 0, 11, 6, b"hello from rust\n")
    mine = TagFilter("[bpfkit 7] ", [site])
    assert mine.message("[bpfkit 7] hello from rust\n") == "hello from rust\n"
    assert mine.message("[bpfkit 8] hello from rust\n") is None
    assert mine.message("[bpfkit 7.1] hello from rust\n") is None
    assert mine.message("hello from rust\n") is None  # untagged: not ours
    everything = TagFilter("[bpfkit 7] ", [site], all_lines=True)
    assert everything.message("[bpfkit 7] hi") == "hi"
    assert everything.message("[bpfkit 8] hi") == "[bpfkit 8] hi"
    assert everything.message("other") == "other"


def test_untagged_calls_show_untagged_lines_that_match_their_formats() -> None:
    tagged = PrintkSite("s", 0, 1, 6, b"a %d")
    untagged = PrintkSite("s", 0, 5, 6, None, "unknown")
    f = TagFilter("[bpfkit 7] ", [tagged, untagged])
    assert f.message("[bpfkit 7] a 1") == "a 1"
    assert f.message("anything at all") == "anything at all"  # the format is unknown
    assert f.message("[bpfkit 9] a 1") is None


def test_when_no_call_was_tagged_untagged_lines_match_by_format() -> None:
    site = PrintkSite("s", 0, 1, 6, b"a %d")
    f = TagFilter("[bpfkit 7] ", [site], tagged=False)
    assert f.message("a 12") == "a 12"
    assert f.message("b 12") is None
    assert f.message("[bpfkit 8] a 1") is None
