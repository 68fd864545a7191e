"""Differential tests of bpfkit.lang: generated Python programs (integer arithmetic of every
width, branches, loops, maps) give the same results three ways:

1. a reference evaluation in Python of the C semantics (bpfkit.lang.types' rules, written
   here independently of the compiler);
2. the compiled object in bpfkit's VM;
3. the compiled object in the kernel, through the verifier and BPF_PROG_TEST_RUN.

Each program reads typed inputs from a random packet (so nothing folds at compile time)
and stores every result in an Array map; a HashMap is updated with ``+=``.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Any

import pytest

from bpfkit.lang.compiler import compile_source
from bpfkit.lang.types import INT_TYPES, IntType

N_PROGRAMS = 300
TYPES = [INT_TYPES[n] for n in ("u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64")]
# Two input variables per type, read from the packet at these offsets.
OFFSETS = {"u64": 0, "i64": 8, "u32": 16, "i32": 20, "u16": 24, "i16": 26, "u8": 28, "i8": 29}
OPS = ["+", "-", "*", "//", "%", "&", "|", "^", "<<", ">>"]
U64 = INT_TYPES["u64"]


def _trunc_div(x: int, y: int) -> int:
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y >= 0) else -q


def ref_binop(op: str, x: int, y: int, t: IntType) -> int:
    """C semantics of bpfkit.lang (module docstring of bpfkit.lang.types)."""
    if op == "//":
        return 0 if y == 0 else t.wrap(_trunc_div(x, y))
    if op == "%":
        return x if y == 0 else t.wrap(x - y * _trunc_div(x, y))
    if op in ("<<", ">>"):
        c = y % (64 if t.size == 8 else 32)
        return t.wrap(x << c) if op == "<<" else t.wrap(x >> c)
    r = {"+": x + y, "-": x - y, "*": x * y, "&": x & y, "|": x | y, "^": x ^ y}[op]
    return t.wrap(r)


@dataclass
class Gen:
    """One generated program: its source and its expected results."""

    rng: random.Random
    inputs: dict[str, int]
    lines: list[str]
    expected: dict[int, int]
    hmap: dict[int, int]
    n: int = 0

    def leaf(self, t: IntType) -> tuple[str, int]:
        name = f"{t.name}_{self.rng.randrange(2)}"
        return name, self.inputs[name]

    def const(self, t: IntType, nonzero: bool = False) -> tuple[str, int]:
        pick = self.rng.choice(
            [0, 1, 2, 3, 7, 31, 32, 63, t.max, t.min, self.rng.randint(t.min, t.max)]
        )
        v = pick if t.min <= pick <= t.max else 1
        if nonzero and v == 0:
            v = 3
        return str(v), v

    def expr(self, t: IntType, depth: int) -> tuple[str, int]:
        r = self.rng.random()
        if depth == 0 or r < 0.2:
            return self.leaf(t)
        if r < 0.3:  # a cast from another width
            src = self.rng.choice(TYPES)
            s, v = self.expr(src, depth - 1)
            return f"{t.name}({s})", t.wrap(v)
        if r < 0.38:
            s, v = self.expr(t, depth - 1)
            if self.rng.random() < 0.5:
                return f"(-{s})", t.wrap(-v)
            return f"(~{s})", t.wrap(~v)
        op = self.rng.choice(OPS)
        a, av = self.expr(t, depth - 1)
        if self.rng.random() < 0.4:
            b, bv = self.const(t, nonzero=op in ("//", "%"))
        else:
            b, bv = self.expr(t, depth - 1)
        return f"({a} {op} {b})", ref_binop(op, av, bv, t)

    def out(self, s: str, v: int, t: IntType) -> None:
        self.lines.append(f"    out[{self.n}] = u64({s})")
        self.expected[self.n] = U64.wrap(v)
        self.n += 1

    def program(self) -> None:
        for _ in range(6):
            t = self.rng.choice(TYPES)
            s, v = self.expr(t, 3)
            self.out(s, v, t)
        # A branch.
        t = self.rng.choice(TYPES)
        (a, av), (b, bv) = self.expr(t, 2), self.expr(t, 2)
        op = self.rng.choice(["<", "<=", ">", ">=", "==", "!="])
        taken = {"<": av < bv, "<=": av <= bv, ">": av > bv, ">=": av >= bv, "==": av == bv,
                 "!=": av != bv}[op]  # fmt: skip
        (x, xv), (y, yv) = self.expr(t, 2), self.expr(t, 2)
        self.lines += [f"    if {a} {op} {b}:", f"        out[{self.n}] = u64({x})", "    else:",
                       f"        out[{self.n}] = u64({y})"]  # fmt: skip
        self.expected[self.n] = U64.wrap(xv if taken else yv)
        self.n += 1
        # A bounded for loop and a while loop with a bound.
        t = self.rng.choice(TYPES)
        k = self.rng.randint(1, 8)
        c, cv = self.const(t)
        v, vv = self.leaf(t)
        acc = t.wrap(1)
        for _ in range(k):
            acc = ref_binop("+", ref_binop("*", acc, cv, t), vv, t)
        self.lines += [f"    acc{self.n}: {t.name} = 1", f"    for _ in range({k}):",
                       f"        acc{self.n} = acc{self.n} * {c} + {v}"]  # fmt: skip
        self.out(f"acc{self.n}", acc, t)
        t = self.rng.choice(TYPES)
        w, wv = self.leaf(t)
        limit = self.rng.randint(0, 20)
        steps, cur = 0, wv
        while steps < limit and cur != 0:
            cur = ref_binop(">>", cur, 1, t) if t.signed is False else ref_binop("//", cur, 2, t)
            steps += 1
        shift = ">> 1" if not t.signed else "// 2"
        self.lines += [f"    cur{self.n} = {w}", f"    steps{self.n}: u32 = 0",
                       f"    while steps{self.n} < {limit} and cur{self.n} != 0:",
                       f"        cur{self.n} = cur{self.n} {shift}", f"        steps{self.n} += 1"]  # fmt: skip
        self.out(f"steps{self.n}", steps, INT_TYPES["u32"])
        # A map update.
        key = self.inputs["u32_0"] & 7
        s, v = self.expr(INT_TYPES["u64"], 2)
        self.lines.append(f"    h[u32(u32_0 & 7)] += {s}")
        self.hmap[key] = U64.wrap(self.hmap.get(key, 0) + v)


def generate(seed: int) -> tuple[str, bytes, dict[int, int], dict[int, int]]:
    rng = random.Random(seed)
    packet = bytes(rng.getrandbits(8) for _ in range(64))
    inputs = {}
    for t in TYPES:
        for i in range(2):
            off = OFFSETS[t.name] + 32 * i
            inputs[f"{t.name}_{i}"] = t.unpack(packet[off : off + t.size])
    g = Gen(rng, inputs, [], {}, {})
    head = [
        "from bpfkit.lang import Array, HashMap, xdp, u8, u16, u32, u64, i8, i16, i32, i64",
        "out = Array[u32, u64](max_entries=16)",
        "h = HashMap[u32, u64](max_entries=8)",
        "@xdp",
        "def prog(ctx) -> u32:",
    ]
    for t in TYPES:
        for i in range(2):
            off = OFFSETS[t.name] + 32 * i
            head.append(f"    {t.name}_{i} = ctx.load({t.name}, {off})")
    g.program()
    src = "\n".join(head + g.lines + ["    return 2", ""])
    return src, packet, g.expected, g.hmap


@functools.cache
def build(seed: int) -> tuple[Any, bytes, dict[int, int], dict[int, int], str]:
    src, packet, expected, hmap = generate(seed)
    ns: dict[str, Any] = {}
    exec(compile(src, f"gen{seed}.py", "exec"), ns)
    compiled = compile_source(src, ns, f"gen{seed}.py")
    return compiled, packet, expected, hmap, src


def _ints(items: Any) -> dict[int, int]:
    return {int.from_bytes(k, "little"): int.from_bytes(v, "little") for k, v in items}


def test_reference_semantics_match_c() -> None:
    i8, u8, i32 = INT_TYPES["i8"], INT_TYPES["u8"], INT_TYPES["i32"]
    assert ref_binop("+", 127, 1, i8) == -128
    assert ref_binop("//", -7, 2, i32) == -3 and ref_binop("%", -7, 2, i32) == -1  # C truncates
    assert ref_binop("//", 5, 0, u8) == 0 and ref_binop("%", 5, 0, u8) == 5  # BPF's rule
    assert ref_binop("<<", 1, 33, i32) == 2  # count modulo 32
    assert ref_binop("//", -(2**31), -1, i32) == -(2**31)


@pytest.mark.long
def test_generated_programs_agree_in_the_vm() -> None:
    from bpfkit.vm import Vm

    for seed in range(N_PROGRAMS):
        compiled, packet, expected, hmap, src = build(seed)
        vm = Vm(compiled.spec.programs[0], obj=compiled.spec)
        r = vm.run(packet=packet)
        assert r.r0 == 2, src
        got = {k: v for k, v in _ints(vm.maps["out"].items()).items() if k < len(expected)}
        assert got == expected, f"seed {seed}\n{src}"
        assert _ints(vm.maps["h"].items()) == hmap, f"seed {seed}\n{src}"


@pytest.mark.requires("bpf")
def test_generated_programs_agree_in_the_kernel() -> None:
    from bpfkit.kernel.collection import load_collection

    for seed in range(N_PROGRAMS):
        compiled, packet, expected, hmap, src = build(seed)
        with load_collection(compiled.spec) as coll:
            assert coll.programs["prog"].test_run(packet).retval == 2
            got = _ints(coll.maps["out"].items_raw())
            got = {k: v for k, v in got.items() if k < len(expected)}
            assert got == expected, f"seed {seed}\n{src}"
            assert _ints(coll.maps["h"].items_raw()) == hmap, f"seed {seed}\n{src}"
