"""The helper table and uapi enums against their sources: the kernel's BTF (read by bpftool,
an independent reader) and libbpf's bpf_helper_defs.h."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bpfkit.uapi import AttachType, MapType, ProgType
from bpfkit.uapi.helpers import HELPERS, Helper, by_id, by_name
from helpers import ROOT

ROOT = ROOT
HELPER_DEFS = Path("/usr/include/bpf/bpf_helper_defs.h")


def test_ids_are_contiguous_and_ordered() -> None:
    assert [h.id for h in HELPERS] == list(range(len(HELPERS)))
    assert HELPERS[0].name == "bpf_unspec" and not HELPERS[0].prototype_known
    assert len(HELPERS) > 200  # 212 helpers in Linux 6.18


@pytest.mark.requires("bpftool")
def test_every_kernel_helper_id_is_present_with_its_name(
    vmlinux_enums: dict[str, dict[str, int]],
) -> None:
    func_ids = vmlinux_enums["bpf_func_id"]
    for enum_name, hid in func_ids.items():
        if enum_name == "__BPF_FUNC_MAX_ID":
            assert hid == len(HELPERS)
            continue
        h = by_id(hid)
        assert h is not None, f"{enum_name} = {hid} missing: rerun scripts/gen_uapi.py"
        assert h.name == "bpf_" + enum_name.removeprefix("BPF_FUNC_")


@pytest.mark.requires("bpftool")
def test_program_and_map_types_match_the_kernel(
    vmlinux_enums: dict[str, dict[str, int]],
) -> None:
    for enum, cls, prefix in (
        ("bpf_prog_type", ProgType, "BPF_PROG_TYPE_"),
        ("bpf_map_type", MapType, "BPF_MAP_TYPE_"),
    ):
        values = {k: v for k, v in vmlinux_enums[enum].items() if not k.startswith("__")}
        assert {prefix + n: m.value for n, m in cls.__members__.items()} == values


def test_enum_spot_values() -> None:
    # Values fixed by the uapi ABI (include/uapi/linux/bpf.h): they never change.
    assert ProgType.KPROBE == 2 and ProgType.TRACEPOINT == 5 and ProgType.XDP == 6
    assert MapType.HASH == 1 and MapType.ARRAY == 2 and MapType.RINGBUF == 27
    assert AttachType.CGROUP_INET_INGRESS == 0 and AttachType.TRACE_FENTRY == 24


def _header_protos() -> dict[int, str]:
    out = {}
    for line in HELPER_DEFS.read_text().splitlines():
        m = re.match(
            r"static (.+?)\(\*\s*(?:const\s+)?(bpf_\w+)\)\((.*)\) = \(void \*\) (\d+);", line
        )
        if m:
            ret, name, args, hid = m.groups()
            out[int(hid)] = f"{ret.strip()}{'' if ret.strip().endswith('*') else ' '}{name}({args})"
    return out


@pytest.mark.requires("libbpf-headers")
def test_prototypes_match_the_libbpf_header_text() -> None:
    protos = _header_protos()
    assert len(protos) == len(HELPERS) - 1  # all but id 0
    for hid, text in protos.items():
        h = by_id(hid)
        assert h is not None and h.prototype_known
        assert h.prototype == text, hid


def test_sample_prototypes() -> None:
    tp = by_id(6)
    assert tp is not None and tp is by_name("trace_printk") is by_name("bpf_trace_printk")
    assert tp.prototype == "long bpf_trace_printk(const char *fmt, __u32 fmt_size, ...)"
    assert tp.variadic and [a.kind for a in tp.args] == ["ptr", "size"]
    ml = by_id(1)
    assert ml is not None and ml.name == "bpf_map_lookup_elem"
    assert ml.prototype == "void *bpf_map_lookup_elem(void *map, const void *key)"
    assert ml.ret_kind == "ptr" and [a.kind for a in ml.args] == ["map", "ptr"]
    rb = by_name("ringbuf_output")
    assert rb is not None and rb.id == 130
    assert rb.prototype == (
        "long bpf_ringbuf_output(void *ringbuf, void *data, __u64 size, __u64 flags)"
    )
    assert [a.kind for a in rb.args] == ["map", "ptr", "size", "flags"]
    assert by_name("ktime_get_ns") == by_id(5)
    assert by_id(5) is not None and by_id(5).prototype == "__u64 bpf_ktime_get_ns(void)"  # type: ignore[union-attr]
    pull = by_name("skb_pull_data")
    assert pull is not None and [a.kind for a in pull.args] == ["ctx", "scalar"]


def test_unknown_ids_and_names() -> None:
    assert by_id(-1) is None and by_id(len(HELPERS)) is None
    assert by_name("no_such_helper") is None
    assert isinstance(HELPERS[1], Helper)


@pytest.mark.requires("kernel-btf", "libbpf-headers", "uapi-kernel")
def test_generated_module_is_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_uapi.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
