"""Kernel syntax (verifier log / bpftool xlated) against the kernel's own verifier log.

``golden/kernel_syntax.s`` covers every instruction kind a socket filter may hold; its
log_level-2 verifier log lists every instruction as the kernel prints it.  The golden
file keeps that log's lines for machines without bpf(); the live test re-reads the log.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from bpfkit.disasm.kernel_syntax import format_kernel
from bpfkit.isa.insn import Insn, iter_insns
from bpfkit.isa.table import OPS
from helpers import ROOT, TESTS, verifier_log

GOLDEN = TESTS / "data" / "golden"


def _golden() -> list[tuple[bytes, str]]:
    rows = []
    for line in (GOLDEN / "kernel_syntax.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            hexbytes, text = line.split("\t")
            rows.append((bytes.fromhex(hexbytes), text))
    return rows


def test_golden_verifier_log_lines() -> None:
    rows = _golden()
    assert len(rows) > 60
    for raw, text in rows:
        ((_, insn),) = list(iter_insns(raw))
        assert format_kernel(insn) == text


@pytest.mark.requires("bpf", "llvm19")
def test_live_verifier_log(tmp_path: Path) -> None:
    obj = tmp_path / "k.o"
    subprocess.run(
        ["llvm-mc-19", "-triple", "bpfel", "-mcpu=v4", "-filetype=obj"]
        + [str(GOLDEN / "kernel_syntax.s"), "-o", str(obj)],
        check=True,
    )
    text = tmp_path / "k.bin"
    subprocess.run(
        ["llvm-objcopy-19", "-O", "binary", "--only-section=socket", str(obj), str(text)],
        check=True,
    )
    data = text.read_bytes()
    log = verifier_log(data)
    # "Live regs before insn:" lists every instruction once, as "  12: 0123...... (bf) ...".
    want = {
        int(m[1]): m[2].rstrip()
        for m in re.finditer(r"^\s*(\d+): [0-9.]{10} (\(.*)$", log, re.MULTILINE)
    }
    assert len(want) > 60, log[-2000:]
    for slot, insn in iter_insns(data):
        assert format_kernel(insn) == want[slot], slot


def test_every_table_row_formats() -> None:
    # Every form of the ISA table has a kernel text starting with its opcode byte.
    for op in OPS:
        insn = Insn(
            op.opcode,
            1,
            2 if op.src is None else op.src,
            op.off if op.off is not None else 8,
            op.imm if op.imm is not None else 16,
        )
        text = format_kernel(insn)
        assert text.startswith(f"({op.opcode:02x}) ") and "unknown" not in text, op


def test_calls_and_unknowns() -> None:
    assert format_kernel(Insn(0x85, imm=6)) == "(85) call bpf_trace_printk#6"
    assert format_kernel(Insn(0x85, src=1, imm=3)) == "(85) call pc+3"
    assert format_kernel(Insn(0x85, imm=99999)) == "(85) call unknown#99999"
    assert format_kernel(Insn(0x95)) == "(95) exit"
    assert "unknown instruction" in format_kernel(Insn(0xFF))
    lddw = Insn.lddw(1, 0, src=1)
    assert format_kernel(lddw, imm_name=lambda i: "map[id:5]") == "(18) r1 = map[id:5]"


@pytest.mark.requires("bpf", "bpftool")
def test_hello_matches_bpftool_xlated() -> None:
    # The seed program loads unchanged (no maps, no relocations), so `bpftool prog dump
    # xlated` shows the instructions as written -- except that the kernel rewrites a
    # helper call's imm to the helper's address, so bpftool prints `#<offset>` where the
    # verifier log (and bpfkit) print the helper id.
    from bpfkit.obj.reader import read_object

    hello = ROOT / "examples" / "hello" / "hello.o"
    pin = Path(f"/sys/fs/bpf/bpfkit_test_ks_{os.getpid()}")
    try:
        subprocess.run(
            ["bpftool", "prog", "load", str(hello), str(pin)], check=True, capture_output=True
        )
        dump = subprocess.run(
            ["bpftool", "prog", "dump", "xlated", "pinned", str(pin)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        pin.unlink(missing_ok=True)
    got = {}
    for line in dump.splitlines():
        m = re.match(r"^\s*(\d+): (\(.*)$", line)
        if m:
            got[int(m[1])] = re.sub(r"#-?\d+$", "#", m[2])
    (prog,) = read_object(hello).programs
    slot = 0
    for insn in prog.insns:
        assert re.sub(r"#-?\d+$", "#", format_kernel(insn)) == got[slot]
        slot += insn.width
    assert len(got) == len(prog.insns)
