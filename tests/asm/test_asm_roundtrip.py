"""Round trips through the LLVM syntax: table templates, the disassembler, the kernel."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfkit.asm.assemble import assemble, assemble_file, assemble_mnemonic
from bpfkit.disasm.llvm_text import format_insn
from bpfkit.isa import OPS, Insn, decode_all, lookup
from bpfkit.isa.table import Kind, Op
from helpers import CONFORMANCE, TESTS

HERE = TESTS / "data" / "asm"
CORPUS = TESTS / "corpus" / "src"


def text_of(obj: bytes, section: str = ".text") -> bytes:
    sec = ELFFile(io.BytesIO(obj)).get_section_by_name(section)
    assert sec is not None
    return bytes(sec.data())


# Rows LLVM's syntax cannot name with a raw immediate: a local call is ``call label`` (a
# relocation or a resolved offset), a kfunc call ``call extern_sym`` (relocated by the loader).
_NO_LLVM_SPELLING = {"call local", "call kfunc"}
LLVM_ROWS = [op for op in OPS if op.mnemonic not in _NO_LLVM_SPELLING]


def render_llvm(op: Op, insn: Insn) -> str:
    """The row's LLVM template filled from ``insn`` (numbers in decimal)."""
    target = insn.imm if (op.kind is Kind.JA and op.width == 32) else insn.off
    imm = insn.imm & 0xFFFFFFFF
    values = {
        "rd": f"r{insn.dst}",
        "wd": f"w{insn.dst}",
        "rs": f"r{insn.src}",
        "ws": f"w{insn.src}",
        "imm": str(insn.imm),
        "imm64": str(insn.imm64),
        "off": f"+ {insn.off}" if insn.off >= 0 else f"- {-insn.off}",
        "target": f"+{target}" if target >= 0 else str(target),
        "as_dst": str(imm >> 16),
        "as_src": str(imm & 0xFFFF),
        "pseudo": str(insn.src),
        "imm_lo": str(imm),
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], op.llvm)


_FIELD_OF = {"rd": "dst", "wd": "dst", "rs": "src", "ws": "src", "off": "off", "imm": "imm"}


def _template_fields(op: Op) -> set[str]:
    names = set(re.findall(r"\{(\w+)\}", op.llvm))
    out = {_FIELD_OF[n] for n in names if n in _FIELD_OF}
    if names & {"imm64", "imm_lo", "as_dst", "as_src"}:
        out.add("imm")
    if "target" in names:
        out.add("imm" if op.kind is Kind.JA and op.width == 32 else "off")
    return out


@st.composite
def valid_insn(draw: st.DrawFn) -> tuple[Op, Insn]:
    op = draw(st.sampled_from(LLVM_ROWS))
    reg = st.integers(0, 10)
    fields = {"dst": 0, "src": 0, "off": 0, "imm": 0}
    pools = {
        "dst": reg,
        "src": reg,
        "off": st.integers(-(1 << 15), (1 << 15) - 1),
        "imm": st.integers(-(1 << 31), (1 << 31) - 1),
    }
    for name in op.uses & _template_fields(op):  # fields LLVM's text can show
        fields[name] = draw(pools[name])
    for name in ("off", "imm", "src"):
        if getattr(op, name) is not None:
            fields[name] = getattr(op, name)
    if op.kind is Kind.LDDW:
        value = draw(st.integers(0, (1 << 64) - 1)) if op.src == 0 else draw(st.integers(0, 2**31))
        return op, Insn.lddw(fields["dst"], value, op.src or 0)
    if op.kind is Kind.ADDR_SPACE_CAST:
        raw = draw(st.integers(0, 0xFFFF)) << 16 | draw(st.integers(0, 0xFFFF))
        fields["imm"] = raw - (1 << 32) if raw >= (1 << 31) else raw
    if op.kind in (Kind.NEG, Kind.ENDIAN):
        fields["src"] = 0
    return op, Insn(op.opcode, **fields)


@settings(max_examples=300, deadline=None)
@given(valid_insn())
def test_random_instructions_in_llvm_syntax_assemble_back(case: tuple[Op, Insn]) -> None:
    op, insn = case
    line = render_llvm(op, insn)
    for big_endian in (False, True):
        obj = assemble(f"\t{line}\n", big_endian=big_endian)
        assert decode_all(text_of(obj), big_endian=big_endian) == [insn], line


def _asm_section(path: Path) -> str:
    m = re.search(r"^-- asm\n(.*?)(?=^-- |\Z)", path.read_text(), re.S | re.M)
    assert m is not None
    return m.group(1)


@pytest.mark.requires("conformance")
def test_conformance_programs_through_disassembler_and_llvm_assembler() -> None:
    """mnemonic text -> Insn -> llvm-objdump text (bpfkit's disassembler) -> LLVM assembler."""
    checked = 0
    for path in sorted(CONFORMANCE.glob("*.data")):
        insns = assemble_mnemonic(_asm_section(path), str(path))
        if any(lookup(i) is not None and lookup(i).mnemonic in _NO_LLVM_SPELLING for i in insns):  # type: ignore[union-attr]
            continue  # "call local" prints as "call N", which LLVM reads as a helper call
        text = "".join(f"\t{format_insn(i)}\n" for i in insns)
        assert decode_all(text_of(assemble(text, str(path)))) == insns, path
        checked += 1
    assert checked >= 300


@pytest.mark.requires("bpf", "clang19")
def test_kernel_loads_objects_from_our_assembler(tmp_path: Path) -> None:
    """clang -S output (legacy maps, globals, subprograms, atomics) and the seed's llc output,
    assembled by bpfkit, load into the kernel with bpfkit's loader."""
    from bpfkit.kernel.collection import load_collection
    from bpfkit.obj import read_object

    sources = [HERE / "hello.llc.s"]
    for name, debug in (
        ("legacy_maps", []),
        ("globals", []),
        ("subprogs", []),
        ("atomics", []),
        ("xdp_count", ["-g"]),  # BTF-defined maps need the BTF that -g emits
        ("globals", ["-g"]),
    ):
        c = CORPUS / f"{name}.c"
        if not c.exists():
            continue
        for cpu in ("v2", "v4"):
            out = tmp_path / f"{name}_{cpu}{'_g' if debug else ''}.s"
            subprocess.run(
                ["clang-19", "-target", "bpf", "-O2", f"-mcpu={cpu}", *debug]
                + ["-I", "/usr/include/x86_64-linux-gnu", "-S", str(c), "-o", str(out)],
                check=True,
                capture_output=True,
            )
            sources.append(out)
    for src in sources:
        spec = read_object(assemble_file(src), name=str(src))
        with load_collection(spec) as coll:
            assert coll.programs, src
