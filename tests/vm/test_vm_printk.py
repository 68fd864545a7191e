"""bpf_trace_printk in the VM against the kernel's own output (the external oracle).

Each case is a program that formats with bpf_trace_printk and returns the helper's
result; it runs through BPF_PROG_TEST_RUN (its line read from a private tracefs instance)
and through the VM.  The text and the return value (length, or -EINVAL for formats the
kernel refuses) must be the same.
"""

from __future__ import annotations

import itertools
import os
import time

import pytest

from bpfkit.isa.insn import Insn
from bpfkit.vm import Vm

STR = object()  # an argument standing for the address of a string on the stack
_ids = itertools.count()

CASES: list[tuple[str, tuple[object, ...]]] = [
    ("%d %i %d", (2**32 - 5, 7, 2**63)),
    ("%u %x %X", (2**32 - 1, 0xBEEF, 0xBEEF)),
    ("%ld %lu %lx", (2**64 - 2, 2**64 - 2, 2**64 - 2)),
    ("%lld %llu %llx", (-(2**63) & (2**64 - 1), 3, 2**40)),
    ("%li %lli", (2**64 - 9, 2**64 - 1)),
    ("[%5d|%-5d|%05x]", (42, 42, 255)),
    ("[%+d|% d|%08lx]", (42, 42, 0xABC)),
    ("100%% %c%c", (ord("o"), ord("k"))),
    ("s=%s!", (STR,)),
    ("[%10s|%-6s]", (STR, STR)),
    ("tab\there", ()),
    ("%d %d %d %d", (1, 2, 3)),  # four conversions: -EINVAL
    ("%f", (1,)),  # -EINVAL
    ("%hd", (1,)),  # -EINVAL
    ("bell\x07", ()),  # a control character: -EINVAL
    ("%pa", (1,)),  # not a %p extension the kernel knows: -EINVAL
    ("%px|%pI4|%pi4", (0x1234, STR, STR)),
    ("%pi6", (STR,)),
    ("%pI6", (STR,)),
    ("%pks|%10pks", (STR, STR)),
]


def _program(fmt: bytes, args: tuple[object, ...]) -> list[Insn]:
    """Put ``fmt`` and the string "str" on the stack, call bpf_trace_printk, return r0."""
    body = fmt + b"\0"
    padded = body + bytes(-len(body) % 8)
    p: list[Insn] = []
    base = -len(padded)
    for i in range(0, len(padded), 8):
        p.append(Insn.lddw(1, int.from_bytes(padded[i : i + 8], "little")))
        p.append(Insn(0x7B, 10, 1, base + i, 0))  # *(u64 *)(r10 + off) = r1
    s_off = base - 16  # "str" then bytes 4..15 (16 bytes for %pi6)
    p.append(Insn.lddw(1, int.from_bytes(b"str\0\x04\x05\x06\x07", "little")))
    p.append(Insn(0x7B, 10, 1, s_off, 0))
    p.append(Insn.lddw(1, int.from_bytes(bytes(range(8, 16)), "little")))
    p.append(Insn(0x7B, 10, 1, s_off + 8, 0))
    for reg, value in zip((3, 4, 5), args, strict=False):
        if value is STR:
            p += [Insn(0xBF, reg, 10), Insn(0x07, reg, 0, 0, s_off)]
        else:
            assert isinstance(value, int)
            p.append(Insn.lddw(reg, value))
    p += [
        Insn(0xBF, 1, 10),  # r1 = r10
        Insn(0x07, 1, 0, 0, base),  # r1 += base
        Insn(0xB7, 2, 0, 0, len(body)),  # r2 = fmt size
        Insn(0x85, 0, 0, 0, 6),  # call bpf_trace_printk
        Insn(0x95),
    ]
    return p


def _tag() -> str:
    return f"vmk{os.getpid() % 10000}.{next(_ids)}:"


@pytest.mark.requires("bpf", "tracefs")
def test_trace_printk_matches_the_kernel() -> None:
    from bpfkit.events.trace_pipe import TraceLine, parse_line
    from bpfkit.kernel.program import load_program
    from bpfkit.kernel.tracefs import TraceInstance

    expected: dict[str, str] = {}
    with TraceInstance() as inst:
        for fmt, args in CASES:
            tag = _tag()
            prog = _program((tag + fmt).encode("latin-1"), args)
            res = Vm(prog).run()
            with load_program(prog, "xdp", name="vmprintk") as kp:
                kret = kp.test_run(bytes(64)).retval
            assert (res.r0 & 0xFFFF_FFFF) == kret, f"{fmt!r}: vm {res.r0:#x} kernel {kret:#x}"
            if res.output:
                expected[tag] = res.output[0]
            else:
                assert kret >= 2**31, f"{fmt!r}: the kernel printed, the VM did not"
        got: dict[str, str] = {}
        deadline = time.monotonic() + 5
        while len(got) < len(expected) and time.monotonic() < deadline:
            for line in inst.pipe.lines(0.2):
                parsed = parse_line(line)
                if isinstance(parsed, TraceLine):
                    for tag in expected:
                        if parsed.message.startswith(tag):
                            got[tag] = parsed.message
    assert len(expected) >= 9
    for tag, text in expected.items():
        assert got.get(tag) == text.rstrip("\n"), f"{tag} vm {text!r} kernel {got.get(tag)!r}"
