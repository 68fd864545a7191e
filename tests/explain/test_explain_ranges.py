"""The ranges and pointer kinds explain prints against the kernel verifier's own (log
level 2 prints, per instruction, the registers the instruction touched; after a branch, the
whole state at its target).

The kernel prints one state per path; explain prints bpfkit's verifier's state joined over
the paths.  For every register the kernel prints at an instruction, explain's value there
must hold the kernel's: the same pointer kind (map, offset, packet range no larger), a
scalar range (tnum and the four bounds, 64 and 32 bits) that contains the kernel's.  The
figures printed: states compared, agreed, and how many are the very same text.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from bpfkit.asm.assemble import assemble_mnemonic
from bpfkit.explain import explain_object
from bpfkit.explain.states import verifier_states
from bpfkit.explain.vlog import registers, state_line
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import lookup
from bpfkit.obj import read_object
from bpfkit.verify import scalar as sc
from bpfkit.verify.static import MapInfo
from bpfkit.verify.trace import trace_program
from helpers import ROOT

M64 = (1 << 64) - 1


# --- the notation, parsed ------------------------------------------------------------------


def parse_state(text: str) -> dict[str, str]:
    """``R1=ctx() R6=scalar(smin=0,var_off=(0x0; 0xff)) fp-8=0000????`` -> {name: value}
    (the kernel's ``_w`` marks dropped)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(text):
        m = re.compile(r"\s*([Rf][\w-]*?)(?:_w)?=").match(text, i)
        if m is None:
            break
        j = m.end()
        depth = 0
        k = j
        while k < len(text) and (depth or text[k] != " "):
            depth += text[k] == "("
            depth -= text[k] == ")"
            k += 1
        out[m[1]] = text[j:k]
        i = k
    return out


@dataclass
class Val:
    kind: str  # "scalar", "fp", "ctx", "pkt", "map_value_or_null", ...
    fields: dict[str, str]
    fp: int = 0

    def scalar(self) -> sc.Scalar:
        """The bounds the text states (unstated ones are the widest)."""
        f = self.fields
        if "const" in f:
            return sc.const(int(f["const"], 0))
        value, mask = 0, M64
        if "var_off" in f:
            a, b = f["var_off"].strip("()").split(";")
            value, mask = int(a, 0), int(b, 0)

        def get(name: str, default: int, signed: bool, bits: int) -> int:
            if name not in f:
                return default
            v = int(f[name], 0)
            if signed and v >= 1 << (bits - 1):
                v -= 1 << bits  # printed in hex: the bit pattern
            return v

        return sc.Scalar(
            value,
            mask,
            get("umin", 0, False, 64),
            get("umax", M64, False, 64),
            get("smin", sc.S64_MIN, True, 64),
            get("smax", sc.S64_MAX, True, 64),
            get("umin32", 0, False, 32),
            get("umax32", sc.M32, False, 32),
            get("smin32", sc.S32_MIN, True, 32),
            get("smax32", sc.S32_MAX, True, 32),
        )


def parse_value(text: str) -> list[Val]:
    """One printed value (several for bpfkit's ``scalar|ctx()``)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == "|" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if parts:
        return [v for part in [*parts, text[start:]] for v in parse_value(part)]
    if re.fullmatch(r"-?\d+|0x[0-9a-f]+", text):
        return [Val("scalar", {"const": text})]
    m = re.fullmatch(r"fp(-?\d+)", text)
    if m:
        return [Val("fp", {}, int(m[1]))]
    m = re.fullmatch(r"(\w+)\((.*)\)", text)
    if m is None:
        return [Val(text, {})]
    fields: dict[str, str] = {}
    for item in re.findall(r"([\w=]+)=(\([^)]*\)|[^,]+)", m[2]):
        *names, value = (item[0] + "=" + item[1]).split("=")
        for n in names:
            fields[n] = value
    return [Val(m[1], fields)]


def _contains(ours: sc.Scalar, k: sc.Scalar) -> bool:
    return (
        ours.umin <= k.umin
        and k.umax <= ours.umax
        and ours.smin <= k.smin
        and k.smax <= ours.smax
        and ours.u32min <= k.u32min
        and k.u32max <= ours.u32max
        and ours.s32min <= k.s32min
        and k.s32max <= ours.s32max
        and (k.mask & ~ours.mask) == 0
        and (k.value & ~ours.mask) == (ours.value & ~ours.mask)
    )


def holds(ours_text: str, kernel_text: str) -> bool:
    """True if bpfkit's joined value ``ours_text`` holds the kernel's ``kernel_text``."""
    (k,) = parse_value(kernel_text)
    for o in parse_value(ours_text):
        if o.kind not in (k.kind, k.kind + "_or_null"):  # "or NULL" holds the pointer too
            continue
        if k.kind == "scalar":
            if _contains(o.scalar(), k.scalar()):
                return True
            continue
        if k.kind == "fp":
            if o.fp == k.fp:
                return True
            continue
        om, km = o.fields.get("map", ""), k.fields.get("map", "")
        # global data: bpfkit names the map by its section, the loader by object + section
        if om != km and not (om.startswith(".") and km.endswith(om)):
            continue
        if not _offsets_hold(o, k):
            continue
        kr = int(k.fields.get("r", "0"), 0)
        if kr < 1 << 63 and int(o.fields.get("r", "0"), 0) > kr:
            # bpfkit may prove fewer packet bytes on the joined paths, never more (a
            # negative r is the kernel's mark of a pointer at or beyond data_end)
            continue
        return True
    return False


def _offsets_hold(o: Val, k: Val) -> bool:
    """A pointer's offsets (fixed + variable part) hold the kernel's."""

    def span(v: Val) -> tuple[int, int]:
        off = int(v.fields.get("off", "0"))
        var = {n: v.fields[n] for n in ("smin", "smax", "umin", "umax", "var_off") if n in v.fields}
        if not var:
            return off, off
        s = Val("scalar", var).scalar()
        return off + s.smin, off + s.smax

    (olo, ohi), (klo, khi) = span(o), span(k)
    return olo <= klo and khi <= ohi


def _no_ids(text: str) -> str:
    return re.sub(r"\b(id|ref_obj_id)=[\d+-]+,?", "", text).replace(",)", ")").replace("()", "()")


# --- the kernel's log -------------------------------------------------------------------------

_AFTER = re.compile(r"^(\d+): \([0-9a-f]{2}\) .*?;\s(.*)$")
_BEFORE = re.compile(r"^(?:from \d+ to )?(\d+): (R\d.*)$")


def kernel_states(
    log: str,
) -> tuple[dict[int, list[dict[str, str]]], dict[int, list[dict[str, str]]]]:
    """(after, before): per instruction, each state the kernel printed."""
    after: dict[int, list[dict[str, str]]] = {}
    before: dict[int, list[dict[str, str]]] = {}
    for line in log.splitlines():
        m = _AFTER.match(line)
        if m:
            after.setdefault(int(m[1]), []).append(parse_state(m[2]))
            continue
        m = _BEFORE.match(line)
        if m:
            before.setdefault(int(m[1]), []).append(parse_state(m[2]))
    return after, before


class Figures:
    def __init__(self) -> None:
        self.compared = self.agreed = self.exact = 0
        self.diffs: list[str] = []

    def compare(self, label: str, ours: dict[str, str], kernel: dict[str, str]) -> None:
        for reg, kv in kernel.items():
            if not reg.startswith("R") or reg == "R10" and kv == "fp0":
                continue
            ov = ours.get(reg)
            if ov is None:
                continue  # explain prints fewer registers (kernel: also those it marks)
            self.compared += 1
            if holds(ov, kv):
                self.agreed += 1
                self.exact += _no_ids(ov) == _no_ids(kv)
            else:
                self.diffs.append(f"  {label} {reg}: explain {ov}  kernel {kv}")

    def report(self, title: str) -> str:
        return (
            f"{title}: {self.compared} register states compared, {self.agreed} agreed, "
            f"{self.exact} the same text"
        )


# --- the programs -------------------------------------------------------------------------------

MAP = 0x7EA0
ASM = {
    "ranges": """
ldxw %r6, [%r1+12]
and %r6, 255
mov %r7, %r6
rsh %r7, 2
add %r7, 3
mov32 %r8, %r6
add32 %r8, -3
mov %r9, %r6
lsh %r9, 56
arsh %r9, 60
jgt %r6, 10, big
mov %r0, %r6
exit
big:
jslt %r9, -2, neg
mov %r0, %r7
exit
neg:
mov %r0, %r9
exit
""",
    "map_null": f"""
stw [%r10-4], 0
lddw %r1, {MAP:#x}
mov %r2, %r10
add %r2, -4
call 1
mov %r6, %r0
jeq %r0, 0, out
ldxdw %r1, [%r6+0]
and %r1, 7
lsh %r1, 3
mov %r2, %r6
add %r2, %r1
stxdw [%r10-16], %r2
ldxdw %r3, [%r10-16]
out:
mov %r0, 0
exit
""",
    "packet": """
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r4, %r2
add %r4, 14
jgt %r4, %r3, out
ldxb %r5, [%r2+12]
ldxb %r6, [%r2+13]
lsh %r5, 8
or %r5, %r6
jne %r5, 0x800, out
mov %r4, %r2
add %r4, 34
jlt %r3, %r4, out
ldxb %r0, [%r2+23]
and %r0, 3
exit
out:
mov %r0, 2
exit
""",
    "loop": """
mov %r6, 0
mov %r7, 0
loop:
add %r7, %r6
add %r6, 1
jlt %r6, 6, loop
mov %r0, %r7
exit
""",
}


def _assembled(name: str) -> list[Insn]:
    return assemble_mnemonic(ASM[name].strip(), name)


def _patch(insns: list[Insn], fd: int) -> list[Insn]:
    return [Insn(0x18, i.dst, 1, 0, fd) if i.opcode == 0x18 and i.imm == MAP else i for i in insns]


@pytest.mark.requires("bpf")
def test_explain_ranges_agree_with_the_kernel_log(capsys: pytest.CaptureFixture[str]) -> None:
    from bpfkit.kernel.collection import load_collection
    from bpfkit.kernel.maps import create_map
    from bpfkit.kernel.program import load_program
    from bpfkit.verify.static import Verifier, view_of
    from bpfkit.verify.trace import Trace

    figures = Figures()
    programs = 0
    # Assembled programs: the states of bpfkit's verifier as explain prints them (vlog).
    with create_map(1, 4, 8, 16, name="counts") as m:
        for name in ASM:
            insns = _assembled(name)
            prog = load_program(_patch(insns, m.fd), "xdp", name="ranges", log_level=2)
            log = prog.log
            prog.close()
            view = view_of(_patch(insns, 1))
            v = Verifier(view, "xdp", {1: MapInfo(1, 4, 8, 16, "counts")})
            trace = v.trace = Trace(v.insns, v.prune_points)
            res = v.run()
            assert res.accepted, res.log.reason
            k_after, k_before = kernel_states(log)
            assert k_after, log
            for idx, states in k_after.items():
                insn = view.insns[idx]
                line = state_line(lookup(insn), insn, trace.before.get(idx), trace.after.get(idx))
                ours = parse_state(line)
                for st in states:
                    figures.compare(f"{name}:{idx}", ours, st)
            for idx, states in k_before.items():
                seen = trace.before[idx]
                ours = {f"R{n}": v.text() for n, v in seen.regs.items()}
                for st in states:
                    figures.compare(f"{name}:{idx}(before)", ours, st)
            programs += 1
    # Objects the tests load: explain's own output, instruction by instruction.
    paths = sorted(glob.glob(str(ROOT / "tests/corpus/obj/*_g.o"))) + [
        str(ROOT / "examples/hello/hello.o")
    ]
    for path in paths:
        obj = read_object(path)
        if obj.big_endian:
            continue
        x = explain_object(obj)
        for p in x.programs:
            if p.is_subprog:
                continue
            try:
                with load_collection(obj, programs=[p.name], log_level=2) as c:
                    log = c.programs[p.name].log
            except Exception:  # noqa: BLE001 - not loadable here (the kernel is the oracle)
                continue
            k_after, _ = kernel_states(log)
            by_index = {e.index: e for e in p.instructions}
            for idx, states in k_after.items():
                e = by_index.get(idx)
                if e is None:
                    continue  # a sub-program's instruction (linked after the program)
                ours = dict(e.state)
                for st in states:
                    figures.compare(f"{Path(path).name}:{p.name}:{idx}", ours, st)
            programs += 1
    with capsys.disabled():
        print(f"\n{figures.report(f'explain vs the kernel log, {programs} programs')}")
        for d in figures.diffs:
            print(d)
    assert programs >= 10
    assert figures.compared >= 300
    assert figures.agreed == figures.compared, "\n".join(figures.diffs)


def test_states_are_joined_over_paths() -> None:
    """Without a kernel: the loop's counter is one range over its six rounds; where the
    two sides of a NULL check meet, the pointer is *_or_null again."""
    from bpfkit.verify.static import view_of

    trace, res = trace_program(view_of(_assembled("loop")), "xdp")
    assert res.accepted
    r6 = trace.before[2].regs[6].text()  # add %r7, %r6: reached with r6 = 0, 1, ..., 5
    assert r6 == "scalar(smin=smin32=0,smax=umax=smax32=umax32=5,var_off=(0x0; 0x7))", r6
    assert trace.before[2].visits == 6
    insns = _patch(_assembled("map_null"), 1)
    maps = {1: MapInfo(1, 4, 8, 16, "counts")}
    from bpfkit.verify.static import Verifier
    from bpfkit.verify.trace import Trace

    v = Verifier(view_of(insns), "xdp", maps)
    trace = v.trace = Trace(v.insns, v.prune_points)
    assert v.run().accepted
    out = trace.before[15]  # "out:": reached from the NULL side and the other
    assert out.regs[6].text() == "map_value_or_null(id=1,map=counts,ks=4,vs=8)"
    assert trace.after[7].regs[0].text() == "map_value(id=1,map=counts,ks=4,vs=8)"


def test_explain_shows_ranges_in_every_format() -> None:
    from bpfkit.explain.html import render_html
    from bpfkit.explain.render import render_json, render_markdown, render_terminal

    obj = read_object(str(ROOT / "tests/corpus/obj/xdp_count_v1_g.o"))
    x = explain_object(obj)
    states = verifier_states(obj, obj.programs[0])
    assert states is not None and states.accepted
    pkt = "R1=pkt(r=14)"
    byte = "R3=scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))"
    for text in (
        render_terminal(x, width=200),
        render_markdown(x),
        render_json(x),
        render_html(x),
    ):
        assert pkt in text and byte in text
        assert "accepts xdp_count" in text
        # the value tracker's "unknown scalar" gives way to the verifier's range
        assert "returns r0 = a number in 1..2" in text
        assert "r3 is now a number in 0..255" in text.replace("\n      ", " ")
    e = {i.index: i for i in x.programs[0].instructions}[6]
    assert dict(e.state)["R3"].startswith("scalar(smin=smin32=0,")
    assert registers(lookup(obj.programs[0].insns[6]), obj.programs[0].insns[6], None) == ()


def test_a_walk_cut_short_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import bpfkit.explain.states as states

    monkeypatch.setattr(states, "EXPLAIN_LIMIT", 5)
    obj = read_object(str(ROOT / "tests/corpus/obj/xdp_count_v1_g.o"))
    got = verifier_states(obj, obj.programs[0])
    assert got is not None and not got.accepted
    assert "walked 5 instructions of xdp_count without a verdict" in got.verdict
    assert 0 < len(got.after) <= 5
