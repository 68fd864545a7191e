"""bpfkit's verifier against the live kernel's: the annotated corpus (tests/verify/
verifier_corpus.py), the VM's random programs, and the real objects the tests load.

Per run it prints programs compared, agreed, false alarms (the kernel accepts, bpfkit
rejects), missed rejections, and each disagreement.  The kernel's verdict is the oracle;
the annotations are checked against it too, and every kernel rejection's explanation must
name the kernel's failing instruction and a message class.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import random
import re
import time
from pathlib import Path

import pytest
import verifier_corpus as corpus

import probes
from bpfkit.asm.assemble import assemble_mnemonic
from bpfkit.errors import VerifierError
from bpfkit.isa.insn import Insn
from bpfkit.verify import CLASSES, classify, explain_log, parse_log
from bpfkit.verify.static import MapInfo, verify_program, view_of
from helpers import ROOT, TESTS, realworld_objects

LDDW = 0x18


def _patch(insns: list[Insn], fds: dict[int, int]) -> list[Insn]:
    return [
        Insn(LDDW, i.dst, 1, 0, fds[i.imm]) if i.opcode == LDDW and i.imm in fds else i
        for i in insns
    ]


class Tally:
    """Agreement figures of one corpus."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.compared = self.agreed = self.false_alarms = self.missed = 0
        self.diffs: list[str] = []

    def add(self, label: str, kernel: str | None, ours: str | None) -> None:
        self.compared += 1
        if (kernel is None) == (ours is None):
            self.agreed += 1
            return
        if kernel is None:
            self.false_alarms += 1
            self.diffs.append(f"  false alarm  {label}: bpfkit: {ours}")
        else:
            self.missed += 1
            self.diffs.append(f"  missed       {label}: kernel: {kernel}")

    def report(self) -> str:
        pct = 100.0 * self.agreed / max(self.compared, 1)
        head = (
            f"{self.name}: {self.compared} programs compared, {self.agreed} agreed ({pct:.1f}%), "
            f"{self.false_alarms} false alarms, {self.missed} missed rejections"
        )
        return "\n".join([head, *self.diffs])

    @property
    def rate(self) -> float:
        return self.agreed / max(self.compared, 1)


def _kernel(insns: list[Insn], prog_type: str) -> tuple[str | None, str]:
    from bpfkit.kernel.program import load_program

    try:
        # The end of a long log is enough here (a 1M-instruction log costs a minute).
        load_program(insns, prog_type, name="vcorpus", log_size_max=1 << 20).close()
    except VerifierError as e:
        return parse_log(e.log).reason or str(e), e.log
    return None, ""


def _ours(insns: list[Insn], prog_type: str, maps: dict[int, MapInfo]) -> str | None:
    r = verify_program(view_of(insns), prog_type, maps)
    return None if r.accepted else r.log.reason


CODE_CASES = [  # malformed code, as instructions (the assembler refuses to write these)
    ("code_unreachable", [Insn(0xB7, 0, 0, 0, 0), Insn(0x95), Insn(0xB7, 0, 0, 0, 1), Insn(0x95)]),
    ("code_jump_out", [Insn(0xB7, 0, 0, 0, 0), Insn(0x05, 0, 0, 5, 0), Insn(0x95)]),
    ("code_jump_back_out", [Insn(0xB7, 0, 0, 0, 0), Insn(0x05, 0, 0, -5, 0), Insn(0x95)]),
    ("code_no_exit", [Insn(0xB7, 0, 0, 0, 0), Insn(0xB7, 0, 0, 0, 1)]),
    (
        "code_falls_off",
        [Insn(0xB7, 0, 0, 0, 0), Insn(0x15, 0, 0, 1, 0), Insn(0x95), Insn(0xB7, 0, 0, 0, 1)],
    ),
    ("code_bad_opcode", [Insn(0xB7, 0, 0, 0, 0), Insn(0x8F), Insn(0x95)]),
]


# The two long tests run side by side (each in its own group: they share no kernel state).
@pytest.mark.requires("bpf")
@pytest.mark.long
@pytest.mark.xdist_group("test_verify_oracle_annotated")
def test_annotated_corpus_agrees_with_the_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    from bpfkit.kernel.maps import create_map

    tally = Tally("annotated corpus")
    wrong_annotation: list[str] = []
    unexplained: list[str] = []
    classes: dict[str, int] = {}
    start = time.monotonic()
    made = {
        k: create_map(t, ks, vs, n, name=k.lower()) for k, (t, ks, vs, n) in corpus.MAPS.items()
    }
    try:
        kfds = {corpus.PLACEHOLDER[k]: m.fd for k, m in made.items()}
        ofds = {corpus.PLACEHOLDER[k]: i + 1 for i, k in enumerate(corpus.MAPS)}
        infos = {
            i + 1: MapInfo(t, ks, vs, n, k)
            for i, (k, (t, ks, vs, n)) in enumerate(corpus.MAPS.items())
        }
        programs = [
            (c.name, c.prog_type, assemble_mnemonic(c.source, c.name), c) for c in corpus.CASES
        ] + [(name, "xdp", insns, None) for name, insns in CODE_CASES]
        for name, ptype, insns, c in programs:
            kreason, klog = _kernel(_patch(insns, kfds), ptype)
            ours = _ours(_patch(insns, ofds), ptype, infos)
            tally.add(f"{name} ({ptype})", kreason, ours)
            if c is not None:
                if c.expect_success != (kreason is None) or (kreason and c.msg not in kreason):
                    wrong_annotation.append(f"  {name}: {c.annotations} but kernel: {kreason}")
            if kreason is None:
                continue
            # The kernel's rejection explained: its failing insn and a class.
            log = parse_log(klog)
            e = explain_log(log, view_of(insns), program=name, judge="kernel")
            cls = classify(kreason).key
            classes[cls] = classes.get(cls, 0) + 1
            failing = log.failing.idx if log.failing is not None else None
            # The kernel's failing insn: the last one its log walked, or the one its
            # message names; some CFG messages name none ("last insn is not an exit").
            names_none = failing is None and not re.search(r"insn \d+", kreason)
            named = names_none or (
                e.insn is not None and (e.insn == failing or f"insn {e.insn}" in kreason)
            )
            if not named or e.cls is None or e.cls.key != cls or cls == "other":
                unexplained.append(
                    f"  {name}: insn {e.insn} (kernel {failing}), class "
                    f"{e.cls.key if e.cls else None} for {kreason!r}"
                )
    finally:
        for m in made.values():
            m.close()
    took = time.monotonic() - start
    with capsys.disabled():
        print(
            f"\n{tally.report()}\n  ({took:.1f}s; kernel rejections by class: "
            f"{dict(sorted(classes.items()))})"
        )
        explained = sum(classes.values()) - len(unexplained)
        print(
            f"  rejections explained (kernel's failing insn + class): {explained} of "
            f"{sum(classes.values())}"
        )
        for line in unexplained + wrong_annotation:
            print(line)
    assert not wrong_annotation, "\n".join(wrong_annotation)
    assert not unexplained, "\n".join(unexplained)
    assert "other" not in classes, classes
    # Every class of the message table, at least five kernel rejections each.
    assert all(classes.get(c.key, 0) >= 5 for c in CLASSES), classes
    assert tally.rate >= 0.99, tally.report()


def _vm_generator() -> object:
    path = TESTS / "vm" / "test_vm_kernel_diff.py"
    spec = importlib.util.spec_from_file_location("_vm_kernel_diff", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RANDOM_COUNT = int(os.environ.get("BPFKIT_VERIFY_RANDOM", "300"))


@pytest.mark.requires("bpf")
@pytest.mark.long
@pytest.mark.xdist_group("test_verify_oracle_random")
def test_random_programs_agree_with_the_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    from bpfkit.kernel.maps import create_map

    gen = _vm_generator()
    rng = random.Random(20261203)
    tally = Tally("random programs (the VM's generator)")
    start = time.monotonic()
    placeholder = gen.MAP_FD_PLACEHOLDER  # type: ignore[attr-defined]
    with create_map("array", 4, gen.VALUE_SIZE, 1, name="vrand") as kmap:  # type: ignore[attr-defined]
        infos = {1: MapInfo(2, 4, gen.VALUE_SIZE, 1, "vrand")}  # type: ignore[attr-defined]
        for i in range(RANDOM_COUNT):
            kind = "socket_filter" if rng.random() < 0.25 else "xdp"
            insns = gen.Gen(rng, kind).program()  # type: ignore[attr-defined]
            kreason, _ = _kernel(_patch(insns, {placeholder: kmap.fd}), kind)
            ours = _ours(_patch(insns, {placeholder: 1}), kind, infos)
            tally.add(f"random #{i} ({kind})", kreason, ours)
    with capsys.disabled():
        print(f"\n{tally.report()}\n  ({time.monotonic() - start:.1f}s)")
    assert tally.rate >= 0.99, tally.report()


REAL = sorted(
    glob.glob(str(ROOT / "tests/corpus/obj/*_g.o")) + glob.glob(str(ROOT / "examples/*/*.o"))
)


def _compare_objects(paths: list[str], title: str) -> tuple[Tally, tuple[float, str]]:
    """Every program of ``paths`` loaded by the kernel and verified by bpfkit."""
    from bpfkit.kernel.collection import load_collection
    from bpfkit.obj import read_object
    from bpfkit.verify.static import verify_object_program

    tally = Tally(title)
    slowest = (0.0, "")
    for path in paths:
        obj = read_object(path)
        if obj.big_endian:
            continue
        for p in obj.programs:
            if p.is_subprog or p.section.startswith("?"):
                continue
            try:
                with load_collection(obj, programs=[p.name]):
                    kreason = None
            except VerifierError as e:
                kreason = parse_log(e.log).reason or str(e)
            except Exception as e:  # noqa: BLE001 - not loadable here: not compared
                print(f"  skipped {Path(path).name}:{p.name}: {e}")
                continue
            # CPU time: the machine running the tests may be shared (wall time is not ours).
            t0 = time.process_time()
            res = verify_object_program(obj, p.name)
            took = time.process_time() - t0
            slowest = max(slowest, (took, f"{Path(path).name}:{p.name}"))
            tally.add(
                f"{Path(path).name}:{p.name}", kreason, None if res.accepted else res.log.reason
            )
    return tally, slowest


@pytest.mark.requires("bpf")
def test_no_false_alarm_on_real_objects(capsys: pytest.CaptureFixture[str]) -> None:
    tally, slowest = _compare_objects(REAL, "real objects (tests/corpus, examples)")
    with capsys.disabled():
        print(f"\n{tally.report()}\n  slowest: {slowest[1]} {slowest[0]:.2f}s CPU")
    assert tally.false_alarms == 0, tally.report()
    assert slowest[0] <= 10.0


@pytest.fixture(scope="module")
@probes.needs("xdp-objects")
def xdp_tools_objects() -> list[Path]:
    """Debian's xdp-tools, libxdp1 and xdp-tests objects (as tests/test_realworld.py)."""
    return realworld_objects()


@pytest.mark.requires("bpf")
@pytest.mark.long
def test_no_false_alarm_on_xdp_tools_objects(
    xdp_tools_objects: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [str(p) for p in xdp_tools_objects]
    tally, slowest = _compare_objects(paths, "real objects (xdp-tools, libxdp1, xdp-tests)")
    with capsys.disabled():
        print(f"\n{tally.report()}\n  slowest: {slowest[1]} {slowest[0]:.2f}s CPU")
    assert tally.compared >= 10, tally.report()
    assert tally.false_alarms == 0, tally.report()
    assert slowest[0] <= 10.0
