"""``bpfkit dump`` against llvm-objdump-19, on every corpus object and option combination.

With ``--mcpu=vN`` the output must equal ``llvm-objdump-19 -d --mcpu=vN`` byte for byte.
Without it, each line equals llvm-objdump-19's default line, except where the default
prints ``<unknown>`` or decodes an instruction as another one: there the line equals the
``--mcpu=v4`` line, or (when LLVM 19 cannot decode it at all) is one of LLVM 22's forms.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from bpfkit.cli.main import main
from bpfkit.disasm.objdump import dump
from bpfkit.isa import decode, is_valid
from bpfkit.obj.reader import read_object
from helpers import ROOT, TESTS, clang_bpf, llvm_objdump, llvm_objdump_each

HERE = TESTS
CORPUS = sorted((HERE / "corpus" / "obj").glob("*.o"))
HELLO = HERE.parent / "examples" / "hello" / "hello.o"
OBJECTS = [*CORPUS, HELLO]
MCPUS = (None, "v1", "v2", "v3", "v4")

pytestmark = pytest.mark.requires("llvm19")


@functools.cache
def _llvm_all(mcpu: str | None, imm_hex: bool, relocs: bool) -> dict[Path, str]:
    """llvm-objdump-19 on all of OBJECTS, split per file (cached: several tests compare)."""
    return llvm_objdump(OBJECTS, mcpu, imm_hex, relocs)


def _ours(path: Path, mcpu: str | None, imm_hex: bool, relocs: bool) -> str:
    return dump(read_object(str(path)), imm_hex=imm_hex, mcpu=mcpu, relocs=relocs)


def test_corpus_is_built() -> None:
    assert len(CORPUS) >= 40, "run tests/corpus/build.sh"


@pytest.mark.parametrize("relocs", [False, True], ids=["plain", "r"])
@pytest.mark.parametrize("imm_hex", [False, True], ids=["dec", "hex"])
@pytest.mark.parametrize("mcpu", MCPUS[1:])
def test_equals_llvm_objdump_19(mcpu: str, imm_hex: bool, relocs: bool) -> None:
    ref = _llvm_all(mcpu, imm_hex, relocs)
    for path in OBJECTS:
        assert _ours(path, mcpu, imm_hex, relocs) == ref[path], path.name


_REG = re.compile(r"\bw(\d+)\b")
_LLVM22_ONLY = re.compile(r"load_acquire\(|^store_release\(|^gotox ")


def _text(line: str) -> str:
    return line.split("\t")[2] if line.count("\t") >= 2 and line[:1] == " " else line


@pytest.mark.parametrize("imm_hex", [False, True], ids=["dec", "hex"])
def test_default_follows_the_rule(imm_hex: bool) -> None:
    default, v4 = _llvm_all(None, imm_hex, True), _llvm_all("v4", imm_hex, True)
    replaced = 0
    for path in OBJECTS:
        ours = _ours(path, None, imm_hex, True).split("\n")
        big = path.read_bytes()[5] == 2
        d, v = default[path].split("\n"), v4[path].split("\n")
        assert len(ours) == len(d) == len(v), path.name
        for mine, dl, vl in zip(ours, d, v, strict=True):
            if mine == dl:
                if "<unknown>" in mine:  # only for bytes that are no instruction
                    raw = bytes.fromhex(mine.split("\t")[1])
                    assert len(raw) < 8 or not is_valid(decode(raw, 0, big)), (path.name, mine)
                continue
            replaced += 1
            dt, vt, mt = _text(dl), _text(vl), _text(mine)
            if _LLVM22_ONLY.search(mt):
                # LLVM 19 has no such instruction: unknown, or taken for another one.
                assert vt == "<unknown>" or vt.startswith("lock "), (path.name, vl, mine)
                continue
            decoded_as_other = dt != "<unknown>" and _REG.sub(r"r\1", dt) != _REG.sub(r"r\1", vt)
            assert dt == "<unknown>" or decoded_as_other, (path.name, dl, mine)
            assert mine == vl, (path.name, mine, vl)
    assert replaced, "the corpus should exercise the default rule"


SEED_DEC = """\
18 01 00 00 6f 6d 20 72 00 00 00 00 75 73 74 0a r1 = 753353985940811119 ll
7b 1a e8 ff 00 00 00 00 *(u64 *)(r10 - 24) = r1
18 01 00 00 68 65 6c 6c 00 00 00 00 6f 20 66 72 r1 = 8243311830880773480 ll
7b 1a e0 ff 00 00 00 00 *(u64 *)(r10 - 32) = r1
b7 01 00 00 00 00 00 00 r1 = 0
73 1a f0 ff 00 00 00 00 *(u8 *)(r10 - 16) = r1
bf a1 00 00 00 00 00 00 r1 = r10
07 01 00 00 e0 ff ff ff r1 += -32
b7 02 00 00 11 00 00 00 r2 = 17
85 00 00 00 06 00 00 00 call 6
b7 00 00 00 00 00 00 00 r0 = 0
95 00 00 00 00 00 00 00 exit"""

SEED_HEX = """\
18 01 00 00 6f 6d 20 72 00 00 00 00 75 73 74 0a r1 = 0xa74737572206d6f ll
7b 1a e8 ff 00 00 00 00 *(u64 *)(r10 - 0x18) = r1
18 01 00 00 68 65 6c 6c 00 00 00 00 6f 20 66 72 r1 = 0x7266206f6c6c6568 ll
7b 1a e0 ff 00 00 00 00 *(u64 *)(r10 - 0x20) = r1
b7 01 00 00 00 00 00 00 r1 = 0x0
73 1a f0 ff 00 00 00 00 *(u8 *)(r10 - 0x10) = r1
bf a1 00 00 00 00 00 00 r1 = r10
07 01 00 00 e0 ff ff ff r1 += -0x20
b7 02 00 00 11 00 00 00 r2 = 0x11
85 00 00 00 06 00 00 00 call 0x6
b7 00 00 00 00 00 00 00 r0 = 0x0
95 00 00 00 00 00 00 00 exit"""


@pytest.mark.parametrize(
    ("flags", "expected"),
    [([], SEED_HEX), (["--print-imm-hex"], SEED_HEX), (["--no-print-imm-hex"], SEED_DEC)],
)
def test_hello_prints_the_seed_listing(
    flags: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed's twelve instruction lines (bytes and text), whitespace aside."""
    assert main(["dump", *flags, str(HELLO)]) == 0
    out = capsys.readouterr().out
    lines = [" ".join(ln.split()[1:]) for ln in out.splitlines() if re.match(r"\s+\d+:", ln)]
    assert lines == expected.splitlines()


def test_cli_options(capsys: pytest.CaptureFixture[str]) -> None:
    path = HERE / "corpus" / "obj" / "labels.o"
    assert main(["dump", "-r", "-j", ".text.second", "--mcpu=v3", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == dump(read_object(str(path)), mcpu="v3", relocs=True, sections=[".text.second"])
    assert "Disassembly of section .text.second:" in out
    assert ".text.first" not in out


def test_cli_unknown_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dump", "-j", "nosuch", str(HELLO)]) == 1
    err = capsys.readouterr().err
    assert "nosuch" in err and "kprobe/SyS_clone" in err and "Traceback" not in err


def test_cli_not_elf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not an ELF object\n")
    assert main(["dump", str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert str(bad) in captured.err


def test_cli_default_equals_llvm_objdump_19_default(capsys: pytest.CaptureFixture[str]) -> None:
    """`bpfkit dump OBJ` with no flags prints what `llvm-objdump-19 -d OBJ` prints (hex
    immediates, LLVM 19's default CPU) for every corpus object."""
    refs = llvm_objdump_each(OBJECTS)  # no options: LLVM's defaults
    for path in OBJECTS:
        assert main(["dump", str(path)]) == 0
        assert capsys.readouterr().out == refs[path], path.name


def _g_objects(tmp: Path) -> list[Path]:
    """The corpus and example C sources compiled with -g here, so their sources exist."""
    sources = sorted((TESTS / "corpus" / "src").glob("*.c")) + sorted(ROOT.glob("examples/*/*.c"))
    out = []
    for i, src in enumerate(sources):
        for cpu in ("v1", "v3"):
            obj = tmp / f"{i}_{src.stem}_{cpu}.o"
            clang_bpf(src, obj, f"-mcpu={cpu}")
            out.append(obj)
    return out


@pytest.mark.requires("clang19")
def test_source_and_line_numbers_equal_llvm_objdump_19(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-S, -l and both (with -r and either immediate format) as llvm-objdump-19 prints them,
    on objects compiled with -g here and on the corpus' -g objects (whose sources may be
    elsewhere: then both print no source), and on objects without DWARF (-l still names
    functions from the symbol table)."""
    objs = _g_objects(tmp_path) + OBJECTS
    flagsets = [["-S"], ["-l"], ["-S", "-l", "-r", "--no-print-imm-hex"]]
    lines = 0
    refs = {i: llvm_objdump_each(objs, *flags) for i, flags in enumerate(flagsets)}
    for path in objs:  # each object's flag sets in a row: its DWARF is read once
        for i, flags in enumerate(flagsets):
            assert main(["dump", *flags, str(path)]) == 0
            ours = capsys.readouterr().out
            assert ours == refs[i][path], (path.name, flags)
            lines += ours.count("\n; ")
    assert lines > 500, "the objects should carry source lines"


def test_source_missing_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "gone.c"
    src.write_text(
        'int f(void *ctx) { return 1; }\nchar LICENSE[] __attribute__((section("license"))) = "GPL";\n'
    )
    obj = tmp_path / "gone.o"
    clang_bpf(src, obj)
    src.unlink()
    assert main(["dump", "-S", str(obj)]) == 0
    cap = capsys.readouterr()
    assert "r0 = 0x1" in cap.out or "w0 = 0x1" in cap.out
    assert not [ln for ln in cap.out.splitlines() if ln.startswith("; ")]
    assert "gone.c" in cap.err and "warning" in cap.err
