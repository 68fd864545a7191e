"""Return values and flags by name: the uapi's verdict enums, and `vm`/`test-run` printing
``retval: 2 (XDP_PASS)`` where the value is a verdict of the program's type."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bpfkit
from bpfkit.asm.assemble import assemble
from bpfkit.cli.main import main
from bpfkit.obj import read_object
from bpfkit.uapi import (
    BPF_NOEXIST,
    TC_ACT_OK,
    TC_ACT_SHOT,
    XDP_DROP,
    XDP_PASS,
    SkAction,
    TcAction,
    UpdateFlag,
    XdpAction,
)
from bpfkit.uapi.verdicts import retval_text, verdict
from bpfkit.vm import Vm


def _header_values(path: str, prefix: str) -> dict[str, int]:
    """``NAME = value`` of an enum or #defines in a uapi header (the oracle)."""
    text = Path(path).read_text()
    found = {m[1]: int(m[2]) for m in re.finditer(rf"#define ({prefix}\w+)\s+\(?(-?\d+)\)?", text)}
    body = re.search(r"enum xdp_action \{(.*?)\}", text, re.S)
    if body and prefix == "XDP_":
        for i, name in enumerate(re.findall(r"(XDP_\w+)", body[1])):
            found[name] = i
    return found


def test_the_enums_carry_the_uapi_names_and_values() -> None:
    assert XDP_PASS is XdpAction.XDP_PASS and XDP_PASS == 2 and XDP_PASS.name == "XDP_PASS"
    assert TC_ACT_SHOT == 2 and TC_ACT_OK == 0 and TcAction(-1).name == "TC_ACT_UNSPEC"
    assert [m.name for m in SkAction] == ["SK_DROP", "SK_PASS"]
    assert BPF_NOEXIST is UpdateFlag.BPF_NOEXIST and int(BPF_NOEXIST) == 1


@pytest.mark.requires("libbpf-headers")
def test_the_enums_match_the_uapi_headers() -> None:
    tc = _header_values("/usr/include/linux/pkt_cls.h", "TC_ACT_")
    assert {m.name: m.value for m in TcAction} == {
        k: v for k, v in tc.items() if k in TcAction.__members__
    }
    assert set(TcAction.__members__) >= {"TC_ACT_OK", "TC_ACT_SHOT", "TC_ACT_REDIRECT"}
    xdp = _header_values("/usr/include/linux/bpf.h", "XDP_")
    assert {m.name: m.value for m in XdpAction} == {k: xdp[k] for k in XdpAction.__members__}


def test_verdict_by_program_type() -> None:
    assert verdict("xdp", 1) is XDP_DROP
    assert verdict("BPF_PROG_TYPE_SCHED_CLS", 0xFFFFFFFF) is TcAction.TC_ACT_UNSPEC
    assert verdict("sk_lookup", 1) is SkAction.SK_PASS
    assert verdict("kprobe", 2) is None and verdict("xdp", 99) is None and verdict(None, 0) is None
    assert retval_text("xdp", 2) == "2 (XDP_PASS)"
    assert retval_text("socket_filter", 0) == "0 (0x0)"  # a length, not a verdict
    assert retval_text("xdp", 9) == "9 (0x9)"


def _object(tmp_path: Path, section: str, r0: int) -> Path:
    src = f'.section "{section}","ax"\n.globl f\nf:\n r0 = {r0}\n exit\n'
    src += '.section "license","aw"\n.asciz "GPL"\n'
    path = tmp_path / f"{section.replace('/', '_')}.o"
    path.write_bytes(assemble(src))
    return path


def test_vm_names_the_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = read_object(str(_object(tmp_path, "xdp", 1)))
    result = Vm(obj.program("f"), obj=obj, packet=bytes(64)).run()
    assert result.verdict is XDP_DROP and result.r0 == 1
    pkt = tmp_path / "pkt.bin"
    pkt.write_bytes(bytes(64))
    assert main(["vm", "--packet", str(pkt), str(_object(tmp_path, "tc", 2))]) == 0
    assert "retval: 2 (TC_ACT_SHOT)\n" in capsys.readouterr().out
    assert main(["vm", "--packet", str(pkt), str(_object(tmp_path, "socket", 0))]) == 0
    assert "retval: 0 (0x0)\n" in capsys.readouterr().out


@pytest.mark.requires("bpf")
def test_test_run_names_the_verdict_as_the_vm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkt = tmp_path / "pkt.bin"
    pkt.write_bytes(bytes(64))
    for section, r0, name in (("xdp", 1, "XDP_DROP"), ("tc", 2, "TC_ACT_SHOT")):
        path = str(_object(tmp_path, section, r0))
        assert main(["test-run", "--packet", str(pkt), path]) == 0
        kernel = capsys.readouterr().out
        assert main(["vm", "--packet", str(pkt), path]) == 0
        vm = capsys.readouterr().out
        line = f"retval: {r0} ({name})\n"
        assert line in kernel and line in vm


def test_the_enums_are_public() -> None:
    assert bpfkit.XdpAction is XdpAction and bpfkit.UpdateFlag.BPF_EXIST == 2
