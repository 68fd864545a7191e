"""Section names explained as libbpf reads them."""

from __future__ import annotations

import pytest

from bpfkit.explain.sections import explain_section


@pytest.mark.parametrize(
    ("name", "prog_type", "words"),
    [
        ("kprobe/SyS_clone", "KPROBE", ["kprobe", "__x64_sys_clone", "clone syscall"]),
        ("kretprobe/do_exit", "KPROBE", ["returns", "do_exit"]),
        ("ksyscall/openat", "KPROBE", ["system call openat"]),
        ("uprobe//bin/bash:readline", "KPROBE", ["/bin/bash:readline"]),
        ("tracepoint/syscalls/sys_enter_execve", "TRACEPOINT", ["syscalls/sys_enter_execve"]),
        ("tp/sched/sched_switch", "TRACEPOINT", ["sched/sched_switch"]),
        ("raw_tp/sched_switch", "RAW_TRACEPOINT", ["raw tracepoint"]),
        ("fentry/do_unlinkat", "TRACING", ["entry", "do_unlinkat"]),
        ("fexit.s/x", "TRACING", ["returns"]),
        ("xdp", "XDP", ["packet"]),
        ("tc", "SCHED_CLS", ["tc"]),
        ("socket", "SOCKET_FILTER", ["socket filter"]),
        ("cgroup_skb/ingress", "CGROUP_SKB", ["ingress"]),
        ("kprobe.multi/vfs_*", "KPROBE", ["multi-kprobe", "vfs_*"]),
        ("perf_event", "PERF_EVENT", ["perf event"]),
        ("xdp.frags", "XDP", ["packet"]),
    ],
)
def test_known_sections(name: str, prog_type: str, words: list[str]) -> None:
    info = explain_section(name)
    assert info.prog_type == f"BPF_PROG_TYPE_{prog_type}"
    for w in words:
        assert w in info.attach
    assert info.context


def test_context_types() -> None:
    assert explain_section("xdp").ctx_struct == "struct xdp_md"
    assert explain_section("kprobe/x").ctx_struct == "struct pt_regs"
    assert explain_section("socket").ctx_struct == "struct __sk_buff"


def test_text_and_unknown_sections() -> None:
    assert explain_section(".text").prog_type == ""
    assert "sub-programs" in explain_section(".text").attach
    unknown = explain_section("mysection")
    assert unknown.prog_type == "" and "not a section name libbpf knows" in unknown.attach
    # A prefix must end at "/" or ".": "xdpfoo" is not an XDP section.
    assert explain_section("xdpfoo").prog_type == ""
