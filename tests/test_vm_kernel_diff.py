"""Differential tests: random valid programs through the kernel (BPF_PROG_TEST_RUN) and the VM.

A seeded generator writes XDP and socket-filter programs with ALU of every width and kind,
forward branches (JMP and JMP32), bounded loops, stack loads/stores/atomics, direct packet
loads/stores (XDP) and LD_ABS/LD_IND (socket filters).  Each program the verifier accepts
runs in both; the return value and the packet after the run must be the same.  Programs
the verifier rejects are counted, not compared.  ``BPFKIT_DIFF_SEED`` and
``BPFKIT_DIFF_COUNT`` change the seed and the number of programs.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from bpfkit.errors import BpfkitError, VerifierError
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import BY_MNEMONIC, Op

SEED = int(os.environ.get("BPFKIT_DIFF_SEED", "20261124"))
COUNT = int(os.environ.get("BPFKIT_DIFF_COUNT", "2000"))
PACKET_LEN = 128
SCALARS = [0, 1, 2, 3, 4, 5, 9]
ALU_KEYS = ["add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "mod", "xor", "mov", "arsh"]
JMP_KEYS = ["jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge", "jlt", "jle", "jslt", "jsle"]
EDGE = [0, 1, -1, 2, 7, 0x7FFFFFFF, -0x80000000, 0x80, 0xFF, 0xFFFF, -2, 31, 32, 63, 64]


def _row(mnemonic: str, source: str = "") -> Op:
    for op in BY_MNEMONIC[mnemonic]:
        if not source or op.source == source:
            return op
    raise KeyError(f"{mnemonic} {source}")


def ins(
    mnemonic: str, source: str = "", dst: int = 0, src: int = 0, off: int = 0, imm: int = 0
) -> Insn:
    """An instruction by its mnemonic (discriminators from the ISA table)."""
    op = _row(mnemonic, source)
    return Insn(
        op.opcode,
        dst,
        src,
        op.off if op.off is not None else off,
        op.imm if op.imm is not None else imm,
    )


def slots(insns: list[Insn]) -> int:
    return sum(i.width for i in insns)


class Gen:
    """One random program (XDP or socket filter)."""

    def __init__(self, rng: random.Random, kind: str) -> None:
        self.rng = rng
        self.kind = kind

    def imm(self) -> int:
        r = self.rng
        c = r.random()
        if c < 0.4:
            return r.choice(EDGE)
        if c < 0.7:
            return r.randint(-300, 300)
        return r.randint(-(2**31), 2**31 - 1)

    def reg(self, avoid: int | None = None) -> int:
        regs = [x for x in SCALARS if x != avoid]
        return self.rng.choice(regs)

    def alu(self, regs: list[int]) -> list[Insn]:
        r = self.rng
        d = r.choice(regs)
        width = r.choice(["", "32"])
        c = r.random()
        if c < 0.06:
            return [ins("neg" + width, dst=d)]
        if c < 0.12:
            bits = r.choice([8, 16, 32] if width == "" else [8, 16])
            return [ins(f"movsx{bits}{64 if width == '' else 32}", "reg", d, r.choice(regs))]
        if c < 0.18:
            kind = r.choice(["le", "be", "bswap"])
            return [ins(f"{kind}{r.choice([16, 32, 64])}", dst=d)]
        if c < 0.22:
            v = r.getrandbits(64)
            return [Insn.lddw(d, v)]
        key = r.choice(ALU_KEYS + ["sdiv", "smod"])
        source = r.choice(["imm", "reg"])
        if source == "reg":
            return [ins(key + width, "reg", d, r.choice(regs))]
        v = self.imm()
        if key in ("lsh", "rsh", "arsh"):
            v = r.randrange(32 if width else 64)  # the verifier refuses larger shifts
        if key in ("div", "mod", "sdiv", "smod") and v == 0:
            v = r.choice([1, -1, 3])  # division by the immediate 0 is refused too
        return [ins(key + width, "imm", d, 0, imm=v)]

    def stack(self, regs: list[int]) -> list[Insn]:
        r = self.rng
        slot = -8 * r.randint(1, 8)
        c = r.random()
        if c < 0.3:
            return [ins("stxdw", dst=10, src=r.choice(regs), off=slot)]
        if c < 0.45:
            size = r.choice(["b", "h", "w", "dw"])
            sub = {"b": 1, "h": 2, "w": 4, "dw": 8}[size]
            return [ins("st" + size, dst=10, off=slot + r.randrange(0, 8, sub), imm=self.imm())]
        if c < 0.75:
            size = r.choice(["b", "h", "w", "dw", "sb", "sh", "sw"])
            n = {"b": 1, "h": 2, "w": 4, "dw": 8, "sb": 1, "sh": 2, "sw": 4}[size]
            return [ins("ldx" + size, dst=r.choice(regs), src=10, off=slot + r.randrange(0, 8, n))]
        # Atomics on the stack (aligned).
        width = r.choice(["", "32"])
        off = slot + (r.choice([0, 4]) if width else 0)
        names = ["add", "or", "and", "xor", "fetch add", "fetch or", "fetch and", "fetch xor"]
        names += ["xchg"] + ([] if width else ["cmpxchg"])
        # No cmpxchg32: on Linux 6.18 (x86-64 JIT) r0 is sometimes left not zero-extended
        # after a successful 32-bit cmpxchg when the verifier pruned the path that reads
        # r0 as 64 bits (seed 5, program 70 showed it: r0 = 0xffffffff_ffffffff where the
        # ISA says 0x00000000_ffffffff).  The VM follows the ISA; conformance tests cover it.
        name = r.choice(names)
        return [ins(f"lock {name}{width}", dst=10, src=r.choice(regs), off=off)]

    def packet(self, regs: list[int]) -> list[Insn]:
        r = self.rng
        if self.kind == "socket_filter":
            size = r.choice(["b", "h", "w"])
            n = {"b": 1, "h": 2, "w": 4}[size]
            out: list[Insn]
            if r.random() < 0.5:
                out = [ins("ldabs" + size, imm=r.randint(0, PACKET_LEN - 14 + 2) - 1)]
            else:
                s = r.choice([1, 2, 3, 4, 5, 9])
                out = [ins("mov", "imm", s, imm=r.randint(-4, PACKET_LEN))]
                if r.random() < 0.2:
                    out = [ins("mov", "imm", s, imm=self.imm())]
                out.append(ins("ldind" + size, src=s, imm=r.randint(-2, 40)))
            del n
            # LD_ABS clobbers r1-r5: set them again so later code may read them.
            out += [ins("mov", "imm", x, imm=self.imm()) for x in (1, 2, 3, 4, 5)]
            return out
        size = r.choice(["b", "h", "w", "dw"])
        n = {"b": 1, "h": 2, "w": 4, "dw": 8}[size]
        off = r.randint(0, 64 - n)
        c = r.random()
        if c < 0.45:
            return [ins("ldx" + size, dst=r.choice(regs), src=6, off=off)]
        if c < 0.8:
            return [ins("stx" + size, dst=6, src=r.choice(regs), off=off)]
        return [ins("st" + size, dst=6, off=off, imm=self.imm())]

    def branch(self, regs: list[int], depth: int) -> list[Insn]:
        r = self.rng
        body = self.block(regs, depth + 1, r.randint(1, 5))
        key = r.choice(JMP_KEYS) + r.choice(["", "32"])
        if r.random() < 0.5:
            jump = ins(key, "imm", r.choice(regs), off=slots(body), imm=self.imm())
        else:
            jump = ins(key, "reg", r.choice(regs), r.choice(regs), off=slots(body))
        return [jump, *body]

    def loop(self, regs: list[int], depth: int) -> list[Insn]:
        r = self.rng
        inner = [x for x in regs if x != 9]
        body = self.block(inner, depth + 1, r.randint(1, 6))
        n = r.randint(1, 6)
        tail = [ins("add", "imm", 9, imm=1), ins("jlt", "imm", 9, off=0, imm=n)]
        back = -(slots(body) + 2)
        tail[1] = ins("jlt", "imm", 9, off=back, imm=n)
        return [ins("mov", "imm", 9, imm=0), *body, *tail]

    def block(self, regs: list[int], depth: int, count: int) -> list[Insn]:
        r = self.rng
        out: list[Insn] = []
        for _ in range(count):
            c = r.random()
            if c < 0.45:
                out += self.alu(regs)
            elif c < 0.62:
                out += self.stack(regs)
            elif c < 0.78:
                out += self.packet(regs)
            elif c < 0.93 and depth < 3:
                out += self.branch(regs, depth)
            elif depth == 0 and 9 in regs:
                out += self.loop(regs, depth)
            else:
                out += self.alu(regs)
        return out

    def program(self) -> list[Insn]:
        r = self.rng
        p: list[Insn] = []
        if self.kind == "xdp":
            p += [
                ins("ldxw", dst=6, src=1, off=0),  # data
                ins("ldxw", dst=7, src=1, off=4),  # data_end
                ins("mov", "reg", 8, 6),
                ins("add", "imm", 8, imm=PACKET_LEN),
            ]
            guard = len(p)
            p.append(ins("jgt", "reg", 8, 7, off=0))  # fixed below: to the failure exit
        else:
            p.append(ins("mov", "reg", 6, 1))  # LD_ABS needs the context in r6
        for x in SCALARS:
            p.append(
                ins("mov", "imm", x, imm=self.imm())
                if r.random() < 0.7
                else Insn.lddw(x, r.getrandbits(64))
            )
        for k in range(1, 9):
            p.append(ins("stxdw", dst=10, src=r.choice(SCALARS), off=-8 * k))
        p += self.block(SCALARS, 0, r.randint(5, 60))
        # Fold every scalar into r0 and store them all in the packet: compare everything.
        for x in SCALARS[1:]:
            p.append(ins(r.choice(["add", "xor", "sub"]), "reg", 0, x))
        if self.kind == "xdp":
            for i, x in enumerate(SCALARS):
                p.append(ins("stxdw", dst=6, src=x, off=64 + 8 * i))
        p.append(ins("exit"))
        if self.kind == "xdp":
            fail = slots(p)
            p += [ins("mov", "imm", 0, imm=1), ins("exit")]
            skip = fail - (slots(p[:guard]) + 1)
            p[guard] = ins("jgt", "reg", 8, 7, off=skip)
        return p


def _vm_run(insns: list[Insn], kind: str, packet: bytes) -> tuple[int, bytes]:
    from bpfkit.vm import Vm

    res = Vm(insns, prog_type=kind, packet=packet).run()
    assert res.packet is not None
    return res.r0 & 0xFFFF_FFFF, res.packet


@pytest.mark.requires("bpf")
def test_vm_agrees_with_the_kernel_on_random_programs(capsys: pytest.CaptureFixture[str]) -> None:
    from bpfkit.kernel.program import load_program

    rng = random.Random(SEED)
    compared = rejected = 0
    reasons: dict[str, int] = {}
    mismatches: list[str] = []
    start = time.monotonic()
    attempts = 0
    while compared < COUNT and attempts < 2 * COUNT:
        i = attempts
        attempts += 1
        kind = "socket_filter" if rng.random() < 0.25 else "xdp"
        insns = Gen(rng, kind).program()
        packet = bytes(rng.getrandbits(8) for _ in range(PACKET_LEN))
        try:
            prog = load_program(insns, kind, name="vmdiff")
        except VerifierError as e:
            rejected += 1
            why = str(e).split(": ", 2)[-1][:90]
            reasons[why] = reasons.get(why, 0) + 1
            continue
        with prog:
            k = prog.test_run(packet)
        try:
            v = _vm_run(insns, kind, packet)
        except BpfkitError as e:
            v = (-1, str(e).encode())
        compared += 1
        kernel = (k.retval & 0xFFFF_FFFF, k.data_out[: len(packet)])
        if kind == "socket_filter":
            # test_run hands back the link-layer header zeroed for non-L2 programs (a detail
            # of the test harness, not of the program): compare what the program sees.
            kernel = (kernel[0], kernel[1][14:])
            v = (v[0], v[1][14:])
        if v != kernel and len(mismatches) < 5:
            from bpfkit.asm.assemble import format_mnemonic

            text = "\n".join(format_mnemonic(x) for x in insns)
            mismatches.append(
                f"program {i} ({kind}, seed {SEED}): kernel r0={kernel[0]:#x} vm r0={v[0]:#x}"
                f"\npacket kernel={kernel[1].hex()}\npacket vm    ={v[1].hex()}\n{text}"
            )
        elif v != kernel:
            mismatches.append(f"program {i}")
    took = time.monotonic() - start
    with capsys.disabled():
        print(
            f"\nvm vs kernel: {compared} compared, {rejected} rejected by the verifier, "
            f"{len(mismatches)} differ ({took:.1f}s, seed {SEED})"
        )
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:5]:
            print(f"  rejected {n}: {reason}")
    assert not mismatches, "\n\n".join(mismatches[:3])
    assert compared >= COUNT, f"only {compared} of {attempts} programs were accepted"
