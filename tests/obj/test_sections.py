"""The libbpf section-name table: strict libbpf 1.x names, the pre-1.0 forms samples and
tutorials use, and a helpful error for unknown names."""

from __future__ import annotations

import pytest

from bpfkit.errors import ObjectError
from bpfkit.obj.sections import SECTION_DEFS, section_type
from bpfkit.uapi import AttachType as A
from bpfkit.uapi import ProgType as P


@pytest.mark.parametrize(
    ("name", "ptype", "atype", "extras"),
    [
        ("kprobe/do_sys_open", P.KPROBE, 0, "do_sys_open"),
        ("kprobe/SyS_clone", P.KPROBE, 0, "SyS_clone"),
        ("kretprobe/tcp_v4_connect", P.KPROBE, 0, "tcp_v4_connect"),
        ("kprobe", P.KPROBE, 0, ""),
        ("tracepoint/syscalls/sys_enter_execve", P.TRACEPOINT, 0, "syscalls/sys_enter_execve"),
        ("tp/sched/sched_switch", P.TRACEPOINT, 0, "sched/sched_switch"),
        ("raw_tracepoint/sched_switch", P.RAW_TRACEPOINT, 0, "sched_switch"),
        ("raw_tp/sys_enter", P.RAW_TRACEPOINT, 0, "sys_enter"),
        ("uprobe//bin/bash:readline", P.KPROBE, 0, "/bin/bash:readline"),
        ("uretprobe/libc.so.6:malloc", P.KPROBE, 0, "libc.so.6:malloc"),
        ("socket", P.SOCKET_FILTER, 0, ""),
        ("xdp", P.XDP, A.XDP, ""),
        ("xdp/devmap", P.XDP, A.XDP_DEVMAP, ""),
        ("tc", P.SCHED_CLS, 0, ""),
        ("classifier", P.SCHED_CLS, 0, ""),
        ("tc/ingress", P.SCHED_CLS, A.TCX_INGRESS, ""),
        ("cgroup_skb/ingress", P.CGROUP_SKB, A.CGROUP_INET_INGRESS, ""),
        ("cgroup_skb/egress", P.CGROUP_SKB, A.CGROUP_INET_EGRESS, ""),
        ("perf_event", P.PERF_EVENT, 0, ""),
        ("fentry/do_unlinkat", P.TRACING, A.TRACE_FENTRY, "do_unlinkat"),
        ("cgroup/connect4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_CONNECT, ""),
        ("sk_skb/stream_verdict", P.SK_SKB, A.SK_SKB_STREAM_VERDICT, ""),
    ],
)
def test_strict_names(name: str, ptype: int, atype: int, extras: str) -> None:
    t = section_type(name)
    assert (t.prog_type, t.attach_type, t.extras, t.legacy) == (ptype, atype, extras, False)


@pytest.mark.parametrize(
    ("name", "ptype"),
    [
        ("socket1", P.SOCKET_FILTER),  # samples/bpf sockex1
        ("socket/0", P.SOCKET_FILTER),
        ("xdp_drop", P.XDP),
        ("xdp/prog", P.XDP),
        ("perf_event/cycles", P.PERF_EVENT),
        ("classifier/ingress", P.SCHED_CLS),
        ("kprobe__sys_clone", P.KPROBE),
        ("kretprobe__x", P.KPROBE),
    ],
)
def test_pre_1_0_forms(name: str, ptype: int) -> None:
    t = section_type(name)
    assert t.prog_type == ptype and t.legacy


def test_specific_rows_win_over_general_ones() -> None:
    assert section_type("kretprobe/x").definition.name == "kretprobe"
    assert section_type("xdp.frags").prog_flags != 0
    assert section_type("uprobe.s/bin:f").prog_flags != 0
    assert section_type("sk_reuseport/migrate").attach_type == A.SK_REUSEPORT_SELECT_OR_MIGRATE


def test_unknown_names_say_how_to_give_the_type() -> None:
    with pytest.raises(ObjectError) as ei:
        section_type("my_prog")
    msg = str(ei.value)
    assert "'my_prog'" in msg and "--type TYPE" in msg and "xdp" in msg and "kprobe" in msg
    # Not every name libbpf knows: a few examples and how to say the type instead.
    assert "cgroup/getsockname_unix" not in msg and len(msg) < 400
    with pytest.raises(ObjectError):
        section_type(".text")


def test_every_row_matches_itself() -> None:
    for d in SECTION_DEFS:
        assert section_type(d.name).definition == d, d.prefix
        if d.extensible:
            assert section_type(d.name + "/x").definition == d


def test_question_mark_means_not_loaded_by_default() -> None:
    t = section_type("?socket")
    assert t.prog_type == P.SOCKET_FILTER and not t.autoload
    assert section_type("?kprobe/x").extras == "x"
    assert section_type("socket").autoload
