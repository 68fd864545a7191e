"""bpfkit.isa.cfg: basic blocks, edges, loops and calls of instruction streams."""

from __future__ import annotations

from bpfkit.asm.assemble import assemble
from bpfkit.isa import Insn
from bpfkit.isa.cfg import build_cfg
from bpfkit.obj.reader import read_object
from helpers import TESTS

EXIT = Insn(0x95)


def _prog(name: str = "prog"):
    data = assemble((TESTS / "data" / "cfg" / "loop_call.s").read_text(), "loop_call.s")
    return read_object(data, name="loop_call.o").program(name)


def test_loop_lddw_call_and_if_else() -> None:
    cfg = build_cfg(_prog().insns)
    assert [(b.start, b.end) for b in cfg.blocks] == [
        (0, 2),
        (2, 5),
        (5, 9),
        (9, 11),
        (11, 12),
        (12, 13),
    ]
    assert {(e.src, e.dst, e.kind, e.back) for e in cfg.edges} == {
        (0, 1, "next", False),
        (1, 1, "taken", True),
        (1, 2, "fall-through", False),
        (2, 4, "taken", False),
        (2, 3, "fall-through", False),
        (3, 5, "goto", False),
        (4, 5, "next", False),
    }
    assert [e.src for e in cfg.loops] == [1]
    assert [(c.block, c.slot, c.kind) for c in cfg.calls] == [(2, 7, "local")]
    assert cfg.escapes == ()
    assert cfg.slots[:8] == (0, 1, 2, 3, 4, 5, 7, 8)  # the lddw takes slots 5 and 6


def test_straight_line_is_one_block() -> None:
    cfg = build_cfg([Insn(0xB7, 0, 0, 0, 1), Insn(0x85, 0, 0, 0, 6), EXIT])
    assert len(cfg.blocks) == 1 and cfg.edges == () and cfg.blocks[0].insns == (0, 1, 2)
    assert [(c.kind, c.imm) for c in cfg.calls] == [("helper", 6)]


def test_gotol_uses_imm_and_jumps_out_are_escapes() -> None:
    gotol = Insn(0x06, 0, 0, 0, 1)  # JMP32 | JA: distance in imm
    out = Insn(0x05, 0, 0, 50)  # goto +50: past the end
    cfg = build_cfg([gotol, EXIT, out, EXIT])
    assert [(b.start, b.end) for b in cfg.blocks] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert {(e.src, e.dst, e.kind) for e in cfg.edges} == {(0, 2, "goto")}
    assert cfg.escapes == ((2, 53),)


def test_nested_loops_have_two_back_edges() -> None:
    # 0: r1 = 0 / 1: r2 = 0 / 2: r2 += 1 / 3: if r2 < 4 goto 2 / 4: r1 += 1 / 5: if r1 < 4 goto 1 / 6: exit
    insns = [
        Insn(0xB7, 1, 0, 0, 0),
        Insn(0xB7, 2, 0, 0, 0),
        Insn(0x07, 2, 0, 0, 1),
        Insn(0xA5, 2, 0, -2, 4),
        Insn(0x07, 1, 0, 0, 1),
        Insn(0xA5, 1, 0, -5, 4),
        EXIT,
    ]
    cfg = build_cfg(insns)
    assert [(b.start, b.end) for b in cfg.blocks] == [(0, 1), (1, 2), (2, 4), (4, 6), (6, 7)]
    assert sorted((e.src, e.dst) for e in cfg.loops) == [(2, 2), (3, 1)]


def test_empty_stream() -> None:
    cfg = build_cfg([])
    assert cfg.blocks == () and cfg.edges == ()
