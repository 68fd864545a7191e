"""The disassembler's fast paths give what its careful paths (and llvm-objdump-19) give.

``bpfkit dump`` lists plain 8-byte instructions in bulk and formats them through
:func:`bpfkit.disasm.llvm_text.slot_plan` (no :class:`Insn` built); ``lddw``, runs of zeros,
relocations and CO-RE notes go through the careful one-instruction step.  Checked here:

* every plan (one-slot instructions and plain ``lddw``) against :func:`render`, on every opcode byte with varied registers, offsets
  and immediates, at every ``--mcpu`` and in both number bases;
* whole listings of random bytes (valid instructions, garbage, zero runs that leave the
  slot grid, ``lddw`` cut by a symbol or the section end) against the careful step alone;
* whole listings of random valid code with relocations, in both byte orders, against
  llvm-objdump-19 ``-d -r --mcpu=v4``.
"""

from __future__ import annotations

import random
import struct
import subprocess
from pathlib import Path

import pytest

from bpfkit.disasm.llvm_text import lddw_plan, render, slot_plan
from bpfkit.disasm.objdump import _Listing, dump
from bpfkit.isa.insn import LDDW_OPCODE, Insn, decode
from bpfkit.isa.table import OPS, Kind
from bpfkit.obj.reader import read_object

REGS = (0, 1, 5, 10, 11, 15)
OFFS = (0, 1, -1, 8, 16, 32, -0x8000, 0x7FFF)
IMMS = (0, 1, -1, 0x10, 0xE1, 0xF1, 0x7FFFFFFF, -0x80000000)


@pytest.mark.parametrize("cpu", [None, 1, 2, 3, 4])
@pytest.mark.parametrize("imm_hex", [False, True])
def test_slot_plans_equal_render(cpu: int | None, imm_hex: bool) -> None:
    planned = 0
    for opcode in range(256):
        if opcode == LDDW_OPCODE:
            continue
        for dst in REGS:
            for src in REGS:
                plan = slot_plan(opcode, dst, src, cpu, imm_hex)
                if plan is None:
                    continue
                for off in OFFS:
                    for imm in IMMS:
                        if (plan.off_zero and off) or (plan.imm_zero and imm):
                            continue
                        planned += 1
                        raw = struct.pack("<BBhi", opcode, src << 4 | dst, off, imm)
                        text, jump = render(decode(raw), cpu, imm_hex)
                        assert plan.text(dst, src, off, imm) == text, (raw.hex(), cpu)
                        mine = None if not plan.jump else off if plan.jump == 1 else imm
                        assert mine == jump, (raw.hex(), cpu)
    assert planned > 10_000  # the plans cover the common instructions


@pytest.mark.parametrize("cpu", [None, 1, 2, 3, 4])
@pytest.mark.parametrize("imm_hex", [False, True])
def test_lddw_plans_equal_render(cpu: int | None, imm_hex: bool) -> None:
    values = (0, 1, 0xFFFFFFFF, 1 << 32, 1 << 63, (1 << 64) - 1, 0x1234_5678_9ABC_DEF0)
    planned = 0
    for dst in range(16):
        plan = lddw_plan(dst, cpu, imm_hex)
        if plan is None:
            continue
        for value in values:
            planned += 1
            text, jump = render(Insn.lddw(dst, value), cpu, imm_hex)
            assert (plan(value), None) == (text, jump), (dst, value)
    assert planned == 11 * len(values)  # r0..r10


def _random_section(rnd: random.Random, valid: list[bytes]) -> bytes:
    out = bytearray()
    while len(out) < 4000:
        r = rnd.random()
        if r < 0.55:
            out += rnd.choice(valid)
        elif r < 0.65:
            out += bytes(4 * rnd.randint(1, 7))  # zero runs, some of 4 * odd bytes
        elif r < 0.75:
            out += bytes([LDDW_OPCODE, rnd.randrange(256)]) + rnd.randbytes(14)
        elif r < 0.8:
            out += bytes([0]) + rnd.randbytes(7)
        else:
            out += rnd.randbytes(8)
    out += rnd.randbytes(rnd.choice((0, 3, 8, 9)))  # an odd tail, or an lddw's first half
    return bytes(out)


def _careful_code(self: _Listing, start: int, end: int) -> None:
    pos = start
    while pos < end:
        pos = self.step(pos, end)


def _valid_slots(rnd: random.Random, big: bool) -> list[bytes]:
    """One random encoding of each one-slot row of the table."""
    fmt = ">BBhi" if big else "<BBhi"
    slots = []
    for op in OPS:
        if op.kind is Kind.LDDW:
            continue
        dst = rnd.randrange(11) if "dst" in op.uses else 0
        src = op.src if op.src is not None else rnd.randrange(11) if "src" in op.uses else 0
        off = op.off if op.off is not None else rnd.randrange(-99, 99) if "off" in op.uses else 0
        imm = op.imm if op.imm is not None else rnd.randrange(-999, 999) if "imm" in op.uses else 0
        regs = dst << 4 | src if big else src << 4 | dst
        slots.append(struct.pack(fmt, op.opcode, regs, off, imm))
    return slots


@pytest.mark.requires("llvm19")
@pytest.mark.parametrize("seed", range(4))
def test_fast_listing_equals_careful_listing(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rnd = random.Random(seed)
    big = seed % 2 == 1
    body = _random_section(rnd, _valid_slots(rnd, big))
    # Symbols at random 4-byte boundaries (llvm-mc keeps the bytes as they are).
    cuts = sorted({4 * rnd.randrange(len(body) // 4) for _ in range(12)} - {0})
    lines = [".text", ".globl f0", ".type f0,@function", "f0:"]
    pos = 0
    for i, cut in enumerate([*cuts, len(body)]):
        chunk = body[pos:cut]
        if chunk:
            lines.append(".byte " + ",".join(str(b) for b in chunk))
        if cut < len(body):
            kind = "@function" if i % 3 else "@object"
            lines += [f".globl s{i}", f".type s{i},{kind}", f"s{i}:"]
        pos = cut
    src = tmp_path / "r.s"
    src.write_text("\n".join(lines) + "\n")
    obj = tmp_path / "r.o"
    triple = "bpfeb" if big else "bpfel"
    subprocess.run(
        ["llvm-mc-19", "-triple", triple, "-filetype=obj", str(src), "-o", str(obj)], check=True
    )
    spec = read_object(str(obj), programs=False)
    for mcpu in (None, "v1", "v4"):
        for imm_hex in (False, True):
            fast = dump(spec, mcpu=mcpu, imm_hex=imm_hex)
            with monkeypatch.context() as m:
                m.setattr(_Listing, "code", _careful_code)
                careful = dump(spec, mcpu=mcpu, imm_hex=imm_hex)
            assert fast == careful, (seed, mcpu, imm_hex)


def _valid_program(rnd: random.Random, n: int) -> str:
    """llvm-mc source of random valid code with calls and map loads (relocations)."""
    ops = ["+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "%=", "^=", "=", "s>>="]
    conds = ["==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&"]
    lines = [".data", "m: .quad 0", ".text"]
    for fn in range(3):
        lines += [f".globl f{fn}", f".type f{fn},@function", f"f{fn}:"]
        for i in range(n):
            r = rnd.random()
            d, s = rnd.randrange(10), rnd.randrange(10)
            if r < 0.4:
                rhs = f"r{s}" if rnd.random() < 0.5 else str(rnd.randint(-512, 4096))
                lines.append(f"r{d} {rnd.choice(ops)} {rhs}")
            elif r < 0.55:
                lines.append(
                    f"r{d} = *(u{rnd.choice((8, 16, 32, 64))} *)(r10 - {8 * rnd.randint(1, 9)})"
                )
            elif r < 0.7 and i + 12 < n:
                lines.append(
                    f"if r{d} {rnd.choice(conds)} r{s} goto {rnd.randint(-min(i, 9), 9):+d}"
                )
            elif r < 0.8:
                lines.append(f"r{d} = m ll")  # R_BPF_64_64
            elif r < 0.85 and fn:
                lines.append("call f0")  # a bpf-to-bpf call
            elif r < 0.9:
                lines.append(f"r{d} = {rnd.getrandbits(64)} ll")
            else:
                lines.append(f"call {rnd.randint(1, 200)}")
        lines += ["r0 = 0", "exit"]
    return "\n".join(lines) + "\n"


@pytest.mark.requires("llvm19")
@pytest.mark.parametrize("big", [False, True], ids=["le", "be"])
def test_fast_listing_equals_llvm_objdump_with_relocations(big: bool, tmp_path: Path) -> None:
    rnd = random.Random(7)
    src = tmp_path / "v.s"
    src.write_text(_valid_program(rnd, 400))
    obj = tmp_path / "v.o"
    triple = "bpfeb" if big else "bpfel"
    subprocess.run(
        ["llvm-mc-19", "-triple", triple, "-mcpu=v4", "-filetype=obj", str(src), "-o", str(obj)],
        check=True,
    )
    spec = read_object(str(obj), programs=False)
    for relocs in (False, True):
        cmd = ["llvm-objdump-19", "-d", "--mcpu=v4", "--no-print-imm-hex", str(obj)]
        ref = subprocess.run(
            cmd + (["-r"] if relocs else []), check=True, capture_output=True, text=True
        ).stdout
        assert dump(spec, mcpu="v4", relocs=relocs, imm_hex=False) == ref, relocs
