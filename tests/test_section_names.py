"""Section names agree everywhere: every name of libbpf's table (obj/sections.py, the one
owner), and the legacy forms older libbpf accepted, read from a real object and run through
explain, the VM and the loader's BPF_PROG_LOAD (a fake kernel records what it is asked)
and the attach code: each says the program is of the type the loader loads it as."""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Iterator

import pytest

from bpfkit.asm.assemble import assemble
from bpfkit.errors import KernelError, ObjectError
from bpfkit.explain.sections import explain_program_section
from bpfkit.kernel import collection
from bpfkit.kernel.attach import from_program
from bpfkit.kernel.session import plan_programs
from bpfkit.obj.reader import read_object
from bpfkit.obj.sections import SECTION_DEFS, resolve
from bpfkit.obj.spec import ObjectSpec, ProgramSpec
from bpfkit.syscalls import Cmd, attrs, use_backend
from bpfkit.uapi import ProgType
from bpfkit.vm.vm import Vm

# What an extensible row's target looks like in each row's own syntax.
_TARGETS = {
    "tracepoint": "syscalls/sys_enter_execve",
    "tp": "sched/sched_switch",
    "uprobe": "/bin/bash:readline",
    "uretprobe": "/bin/bash:readline",
    "kprobe": "do_sys_open+8",
}
# Names that must load, and be explained, as the row they match (issue 9).
_NAMED = {
    "cgroup/skb": ProgType.CGROUP_SKB,
    "tcx/ingress": ProgType.SCHED_CLS,
    "socket1": ProgType.SOCKET_FILTER,
    "xdpfoo": ProgType.XDP,
    "socket/0": ProgType.SOCKET_FILTER,
    "kprobe__sys_clone": ProgType.KPROBE,
    "kprobe/SyS_clone": ProgType.KPROBE,
    "?xdp": ProgType.XDP,
}


def _names() -> list[str]:
    names = list(_NAMED)
    for d in SECTION_DEFS:
        names.append(d.name)
        if d.extensible:
            base = d.name.split(".")[0]
            names.append(f"{d.name}/{_TARGETS.get(base, 'target_fn')}")
        else:
            names.append(f"{d.name}/1")  # libbpf < 1.0: "type/suffix"
        if "/" not in d.name and "." not in d.name:
            names.append(f"{d.name}_legacy")  # libbpf < 1.0: a plain prefix
    return list(dict.fromkeys(names))


NAMES = _names()


def _object(names: list[str]) -> ObjectSpec:
    text = []
    for i, name in enumerate(names):
        text += [
            f'\t.section "{name}","ax",@progbits',
            f"\t.globl p{i}",
            f"\t.type p{i},@function",
            f"p{i}:",
            "\tr0 = 0",
            "\texit",
            f"\t.size p{i}, 16",
        ]
    text += ['\t.section "license","aw",@progbits', '\t.asciz "GPL"']
    return read_object(assemble("\n".join(text) + "\n", "names.s"), name="names.o")


@pytest.fixture(scope="module")
def programs() -> dict[str, ProgramSpec]:
    obj = _object(NAMES)
    by_section = {p.section: p for p in obj.programs}
    assert set(by_section) == set(NAMES)
    return by_section


@pytest.fixture(scope="module")
def obj() -> ObjectSpec:
    return _object(NAMES)


class _Loads:
    """A fake kernel: records each BPF_PROG_LOAD and refuses it (nothing is created)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int]] = []

    def __call__(self, cmd: int, attr: ctypes.Structure) -> int:
        if cmd == Cmd.PROG_LOAD and isinstance(attr, attrs.ProgLoadAttr):
            self.seen.append((attr.prog_type, attr.expected_attach_type, attr.prog_flags))
        raise OSError(errno.EPERM, "refused by the test")


@pytest.fixture
def loader_decision(obj: ObjectSpec, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from bpfkit.obj.prepare import _Preparer

    # fentry/lsm/iter need a target's id in vmlinux BTF: any id will do for a fake kernel.
    monkeypatch.setattr(_Preparer, "_attach_btf_id", lambda self, kind, target: 1)

    def decide(name: str) -> tuple[int, int, int] | None:
        fake = _Loads()
        with use_backend(fake), pytest.raises((KernelError, ObjectError)):
            collection.load_collection(obj, programs=[name])
        return fake.seen[0] if fake.seen else None

    yield decide


@pytest.mark.parametrize("section", NAMES)
def test_explain_vm_loader_and_attach_agree(
    section: str, programs: dict[str, ProgramSpec], loader_decision: object
) -> None:
    prog = programs[section]
    row = resolve(section)
    assert row is not None, section
    # The reader stored the one table's answer on the spec.
    assert (prog.prog_type, prog.expected_attach_type, prog.prog_flags) == (
        row.prog_type,
        row.attach_type,
        row.prog_flags,
    )
    assert prog.kind == row.kind and prog.attach_target == row.extras
    ptype = ProgType(prog.prog_type)
    if section in _NAMED:
        assert ptype == _NAMED[section], section
    # explain says the type it loads as, with a sentence of its own.
    info = explain_program_section(prog)
    assert info.prog_type == f"BPF_PROG_TYPE_{ptype.name}", section
    assert "not a section name" not in info.attach and info.context
    # The VM builds the context of that type.
    vm = Vm(prog)
    assert vm.prog_type == ptype.name.lower()
    # The loader asks the kernel for that type, attach type and flags.
    assert callable(loader_decision)
    if row.kind.startswith(("freplace", "struct_ops")):
        return  # need a target program / a struct_ops map: refused before loading
    assert loader_decision(prog.name) == (
        prog.prog_type,
        prog.expected_attach_type,
        prog.prog_flags,
    )
    # `bpfkit run` attaches it as that type (when the name says where).
    point = from_program(prog)
    if point is not None and point.kind in ("kprobe", "kretprobe"):
        assert point.prog_type == ptype, section  # (on this kernel a plan may fall back)
    elif point is not None:
        (planned,) = plan_programs([prog])
        assert planned.plan.prog_type == ptype, section


def test_packet_contexts_follow_the_type(programs: dict[str, ProgramSpec]) -> None:
    # cgroup/skb and socket1 get an __sk_buff around the packet; xdpfoo an xdp_md.
    pkt = bytes(range(64))
    for section in ("cgroup/skb", "socket1", "tcx/ingress"):
        res = Vm(programs[section], packet=pkt).run()
        assert res.ctx is not None and len(res.ctx) == 192, section  # sizeof(__sk_buff)
    res = Vm(programs["xdpfoo"], packet=pkt).run()
    assert res.ctx is not None and len(res.ctx) == 24  # sizeof(xdp_md)


def test_unknown_names_are_untyped_and_the_loader_says_so(obj: ObjectSpec) -> None:
    unknown = _object(["my_prog"])
    (prog,) = unknown.programs
    assert (prog.prog_type, prog.kind) == (0, "")
    assert "not a section name libbpf knows" in explain_program_section(prog).attach
    assert Vm(prog).prog_type is None
    with pytest.raises(ObjectError, match="unknown program section name") as e:
        collection.load_collection(unknown)
    # It says how to give the type instead, and does not list every name libbpf knows.
    assert "give the type with --type TYPE" in str(e.value)
    assert "cgroup/getsockname_unix" not in str(e.value)


def test_a_type_override_is_what_everyone_reads(loader_decision: object) -> None:
    from bpfkit.obj.sections import typed

    unknown = _object(["my_prog"])
    (prog,) = unknown.programs
    xdp = typed(prog, ProgType.XDP)
    assert explain_program_section(xdp).prog_type == "BPF_PROG_TYPE_XDP"
    assert Vm(xdp).prog_type == "xdp"
    fake = _Loads()
    with use_backend(fake), pytest.raises(KernelError):
        collection.load_collection(unknown, prog_types={"p0": "xdp"})
    assert fake.seen == [(ProgType.XDP, 0, 0)]
    # Another type than the name's drops the name's attach type and flags.
    (frags,) = _object(["xdp.frags"]).programs
    assert frags.prog_flags and frags.expected_attach_type
    as_tc = typed(frags, ProgType.SCHED_CLS)
    assert (as_tc.prog_type, as_tc.expected_attach_type, as_tc.prog_flags) == (3, 0, 0)
    assert typed(frags, ProgType.XDP) == frags
