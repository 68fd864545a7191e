"""Attach points without attaching: --attach specs, libbpf section names, syscall names for
this kernel, uprobe symbol offsets (checked against binutils), the no-kprobes plan."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import probes
from bpfkit.errors import KernelError
from bpfkit.kernel import symbols
from bpfkit.kernel.attach import AttachPoint, Where, from_program, parse_spec, plan
from bpfkit.obj.sections import typed
from bpfkit.obj.spec import ProgramSpec
from bpfkit.uapi import ProgType


@pytest.mark.parametrize(
    ("spec", "point"),
    [
        ("kprobe:do_sys_open", AttachPoint("kprobe", "do_sys_open")),
        ("kprobe:do_sys_open+0x10", AttachPoint("kprobe", "do_sys_open", offset=16)),
        ("kretprobe:SyS_clone", AttachPoint("kretprobe", "SyS_clone")),
        (
            "tracepoint:syscalls:sys_enter_clone",
            AttachPoint("tracepoint", "syscalls:sys_enter_clone"),
        ),
        ("tp:sched:sched_switch", AttachPoint("tracepoint", "sched:sched_switch")),
        ("raw_tracepoint:sys_enter", AttachPoint("raw_tracepoint", "sys_enter")),
        ("raw_tp:sys_exit", AttachPoint("raw_tracepoint", "sys_exit")),
        ("uprobe:/bin/bash:readline", AttachPoint("uprobe", "/bin/bash", "readline")),
        ("uretprobe:./a.out:f+4", AttachPoint("uretprobe", "./a.out", "f+4")),
        ("socket", AttachPoint("socket")),
        ("socket:lo", AttachPoint("socket", "lo")),
    ],
)
def test_parse_spec(spec: str, point: AttachPoint) -> None:
    assert parse_spec(spec) == point
    assert parse_spec(str(point)) == point  # str() is the canonical spec


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("fentry:x", "unknown kind"),
        ("kprobe:", "no function"),
        ("kprobe:f+zz", "offset 'zz'"),
        ("tracepoint:sched", "CATEGORY:NAME"),
        ("raw_tracepoint:", "needs a NAME"),
        ("uprobe:/bin/true", "PATH:SYMBOL"),
    ],
)
def test_parse_spec_errors_list_the_forms(spec: str, why: str) -> None:
    with pytest.raises(KernelError, match=re.escape(why)) as e:
        parse_spec(spec)
    assert "tracepoint:CATEGORY:NAME" in str(e.value)


@pytest.mark.parametrize(
    ("section", "point"),
    [
        ("kprobe/SyS_clone", AttachPoint("kprobe", "SyS_clone")),
        ("kprobe/tcp_v4_connect+8", AttachPoint("kprobe", "tcp_v4_connect", offset=8)),
        ("kretprobe/do_exit", AttachPoint("kretprobe", "do_exit")),
        ("ksyscall/openat", AttachPoint("kprobe", "sys_openat")),
        ("kretsyscall/openat", AttachPoint("kretprobe", "sys_openat")),
        (
            "tracepoint/syscalls/sys_enter_execve",
            AttachPoint("tracepoint", "syscalls:sys_enter_execve"),
        ),
        ("tp/sched/sched_switch", AttachPoint("tracepoint", "sched:sched_switch")),
        ("raw_tracepoint/sys_enter", AttachPoint("raw_tracepoint", "sys_enter")),
        ("raw_tp/sys_exit", AttachPoint("raw_tracepoint", "sys_exit")),
        ("uprobe//usr/bin/bash:readline", AttachPoint("uprobe", "/usr/bin/bash", "readline")),
        ("uretprobe.s//lib/libc.so.6:malloc", AttachPoint("uretprobe", "/lib/libc.so.6", "malloc")),
        ("socket", AttachPoint("socket")),
        ("socket/1", AttachPoint("socket")),
        ("socket1", AttachPoint("socket")),
        ("raw_tp.w/x", AttachPoint("raw_tracepoint", "x")),
        ("kprobe", None),
        ("uprobe", None),
        ("tracepoint/syscalls", None),
        ("xdp", None),
        ("fentry/do_exit", AttachPoint("fentry", "do_exit")),
        ("tp_btf/sched_switch", AttachPoint("tp_btf", "sched_switch")),
        ("perf_event", AttachPoint("perf_event", offset=99)),
        ("cgroup_skb/ingress", None),
    ],
)
def test_from_program(section: str, point: AttachPoint | None) -> None:
    assert from_program(typed(ProgramSpec("f", section, 1, 0, (), (), False))) == point


@pytest.mark.parametrize(
    ("section", "point"),
    [
        ("xdp", AttachPoint("xdp", "eth0", "native")),
        ("tcx/ingress", AttachPoint("tcx", "eth0", "ingress")),
        ("tc/egress", AttachPoint("tcx", "eth0", "egress")),
        ("socket", AttachPoint("socket", "eth0")),
        ("cgroup_skb/ingress", AttachPoint("cgroup", "/cg", attach_type=0)),
        ("cgroup/connect4", AttachPoint("cgroup", "/cg", attach_type=10)),
        ("cgroup/sysctl", AttachPoint("cgroup", "/cg", attach_type=18)),
        ("cgroup/skb", None),  # names no direction
        ("perf_event", AttachPoint("perf_event", offset=1000)),
    ],
)
def test_from_program_where(section: str, point: AttachPoint | None) -> None:
    where = Where("eth0", "native", "/cg", 1000)
    assert from_program(typed(ProgramSpec("f", section, 1, 0, (), (), False)), where) == point


@pytest.mark.parametrize(
    ("spec", "point"),
    [
        ("xdp:eth0", AttachPoint("xdp", "eth0")),
        ("xdp:eth0:generic", AttachPoint("xdp", "eth0", "generic")),
        ("xdp:eth0:skb", AttachPoint("xdp", "eth0", "generic")),
        ("tcx:veth0:egress", AttachPoint("tcx", "veth0", "egress")),
        ("cgroup:/sys/fs/cgroup/x", AttachPoint("cgroup", "/sys/fs/cgroup/x")),
        ("perf_event", AttachPoint("perf_event", offset=99)),
        ("perf_event:4000", AttachPoint("perf_event", offset=4000)),
    ],
)
def test_parse_new_specs(spec: str, point: AttachPoint) -> None:
    assert parse_spec(spec) == point
    assert parse_spec(str(point)).kind == point.kind


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("xdp", "XDP needs an interface"),
        ("xdp:eth0:fast", "XDP mode 'fast'"),
        ("tcx:eth0", "ingress or IFNAME:egress"),
        ("cgroup", "cgroup v2 directory"),
        ("perf_event:0", "outside 1..100000"),
        ("perf_event:x", "not a number"),
    ],
)
def test_bad_new_specs(spec: str, why: str) -> None:
    with pytest.raises(KernelError, match=re.escape(why)):
        parse_spec(spec)


def test_syscall_names() -> None:
    for name in (
        "SyS_clone",
        "sys_clone",
        "__x64_sys_clone",
        "__arm64_sys_clone",
        "__se_sys_clone",
    ):
        assert symbols.syscall_name(name) == "clone"
    assert symbols.syscall_name("do_sys_open") is None
    assert symbols.syscall_name("sys_") is None


KALLSYMS = """\
ffffffff8135fe60 T __x64_sys_clone
ffffffff8135fe80 T __ia32_sys_clone
ffffffff81360000 t do_sys_open
ffffffff81360100 T sys_old_style
ffffffffc0000000 t helper_in_module\t[some_module]
"""


def test_resolve_kernel_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(symbols, "_kallsyms_text", lambda: KALLSYMS)
    monkeypatch.setattr(symbols.os, "uname", lambda: _Uname("x86_64"))
    assert symbols.resolve_kernel_function("SyS_clone") == "__x64_sys_clone"
    assert symbols.resolve_kernel_function("sys_clone") == "__x64_sys_clone"
    assert symbols.resolve_kernel_function("SyS_old_style") == "sys_old_style"
    assert symbols.resolve_kernel_function("do_sys_open") == "do_sys_open"
    assert symbols.kernel_has_symbol("helper_in_module")
    with pytest.raises(KernelError, match="no kernel function for syscall 'nope'"):
        symbols.resolve_kernel_function("SyS_nope")
    p = plan(AttachPoint("kprobe", "SyS_clone"), kprobes=True)
    assert p.point == AttachPoint("kprobe", "__x64_sys_clone")
    assert p.prog_type == ProgType.KPROBE
    assert p.note == "kprobe SyS_clone: this kernel calls it __x64_sys_clone"


class _Uname:
    def __init__(self, machine: str) -> None:
        self.machine = machine


@pytest.mark.requires("kallsyms")
def test_real_kallsyms_has_this_kernels_clone() -> None:
    name = symbols.resolve_kernel_function("SyS_clone")
    assert name.endswith("sys_clone")


def test_plans_that_change_nothing() -> None:
    for spec in ("tracepoint:a:b", "raw_tracepoint:x", "uprobe:/bin/true:main", "socket"):
        p = plan(parse_spec(spec))
        assert p.point == parse_spec(spec) and p.note is None


@pytest.fixture(scope="module")
@probes.needs("clang19", "binutils")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sym")
    (d / "t.c").write_text(
        "#include <stdio.h>\n"
        "__attribute__((noinline)) int first(int x) { return x * 3; }\n"
        "__attribute__((noinline)) int second(int x) { return first(x) + 1; }\n"
        'int main(void) { printf("%d\\n", second(2)); return 0; }\n'
    )
    exe = d / "t"
    subprocess.run(["clang-19", "-O1", "-o", str(exe), str(d / "t.c")], check=True)
    return exe


def _objdump_first_bytes(path: Path, symbol: str) -> tuple[int, bytes]:
    """The symbol's address and first instruction bytes, as binutils' objdump shows them."""
    out = subprocess.run(
        ["objdump", "-d", f"--disassemble={symbol}", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(rf"^([0-9a-f]+) <{symbol}>:\n\s*[0-9a-f]+:\t((?:[0-9a-f]{{2}} )+)", out, re.M)
    assert m, out
    return int(m.group(1), 16), bytes.fromhex(m.group(2).replace(" ", ""))


@pytest.mark.parametrize("symbol", ["first", "second", "main"])
def test_user_symbol_offsets_match_objdump(binary: Path, symbol: str) -> None:
    located = symbols.resolve_user_symbol(str(binary), symbol)
    address, first_bytes = _objdump_first_bytes(binary, symbol)
    assert located.address == address
    data = binary.read_bytes()
    assert data[located.offset : located.offset + len(first_bytes)] == first_bytes
    plus = symbols.resolve_user_symbol(str(binary), f"{symbol}+2")
    assert (plus.address, plus.offset) == (address + 2, located.offset + 2)


def test_user_symbol_errors(binary: Path, tmp_path: Path) -> None:
    with pytest.raises(KernelError, match="no function symbol 'missing'"):
        symbols.resolve_user_symbol(str(binary), "missing")
    with pytest.raises(KernelError, match="imported, not defined"):
        symbols.resolve_user_symbol(str(binary), "printf")
    text = tmp_path / "x.txt"
    text.write_text("not elf")
    with pytest.raises(KernelError, match="not an ELF binary"):
        symbols.resolve_user_symbol(str(text), "main")
    with pytest.raises(KernelError, match="No such file"):
        symbols.resolve_user_symbol(str(tmp_path / "nope"), "main")


def test_run_plans_say_what_cannot_attach() -> None:
    from bpfkit.kernel.session import choose_programs, plan_programs
    from bpfkit.obj.spec import ObjectSpec

    def prog(name: str, section: str, sub: bool = False) -> ProgramSpec:
        return typed(ProgramSpec(name, section, 1, 0, (), (), sub))

    with pytest.raises(KernelError, match="names no attach point; say where with --attach"):
        plan_programs([prog("f", "kprobe")])
    with pytest.raises(KernelError, match="section 'sk_lookup' is none of them"):
        plan_programs([prog("f", "sk_lookup")])
    with pytest.raises(KernelError, match="section 'xdp' attaches to an interface: --ifname"):
        plan_programs([prog("f", "xdp")])
    with pytest.raises(KernelError, match="attaches to a cgroup: .* --cgroup PATH"):
        plan_programs([prog("f", "cgroup/connect4")])
    with pytest.raises(KernelError, match="names no cgroup hook"):
        from bpfkit.kernel.links import attach as link_attach

        link_attach(0, AttachPoint("cgroup", "/x"))
    cg = plan_programs([prog("f", "cgroup/connect4")], "cgroup:/cg")
    assert cg[0].plan.point == AttachPoint("cgroup", "/cg", attach_type=10)
    assert cg[0].plan.prog_type == ProgType.CGROUP_SOCK_ADDR
    planned = plan_programs([prog("f", "xdp")], "socket:lo")
    assert planned[0].plan.point == AttachPoint("socket", "lo")
    assert planned[0].plan.prog_type == ProgType.SOCKET_FILTER
    spec = ObjectSpec(
        "x.o",
        False,
        (prog("a", "socket"), prog("h", ".text", True)),
        (),
        (),
        None,
        None,
        (),
        (),
        {},
    )
    assert [p.name for p in choose_programs(spec)] == ["a"]
    assert [p.name for p in choose_programs(spec, "socket")] == ["a"]
    with pytest.raises(Exception, match=r"no program named 'h'; programs: a \(socket\)"):
        choose_programs(spec, "h")
