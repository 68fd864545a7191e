"""Section names explained as libbpf reads them."""

from __future__ import annotations

import pytest

from bpfkit.explain.sections import ctx_field, explain_section


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
    # libbpf before 1.0 matched plain prefixes: "xdpfoo" loads (and is explained) as XDP.
    assert explain_section("xdpfoo").prog_type == "BPF_PROG_TYPE_XDP"


def test_context_field_names() -> None:
    # Offsets fixed by the uapi (__sk_buff, xdp_md) and the x86-64 pt_regs layout.
    assert ctx_field("struct __sk_buff", 76, 4) == "skb->data"
    assert ctx_field("struct __sk_buff", 0, 4) == "skb->len"
    assert ctx_field("struct __sk_buff", 52, 4) == "skb->cb[1]"
    assert ctx_field("struct __sk_buff", 16, 2) == "skb->protocol (bytes 0..1)"
    assert ctx_field("struct xdp_md", 4, 4) == "xdp->data_end"
    assert ctx_field("struct pt_regs", 112, 8) == "regs->di (PT_REGS_PARM1, the first argument)"
    assert ctx_field("struct pt_regs", 80, 8) == "regs->ax (PT_REGS_RC, the return value)"
    assert ctx_field("struct bpf_raw_tracepoint_args", 16, 8) == "ctx->args[2]"
    assert ctx_field("", 0, 4) is None
    assert ctx_field("struct xdp_md", 400, 4) is None
