"""The BPF conformance suite (../shared/conformance, written by others) through the VM,
and the ``bpfkit-conformance-plugin`` console script through the suite's plugin protocol."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bpfkit.isa.insn import encode_all
from bpfkit.vm.conformance import load, parse, run_test
from helpers import CONFORMANCE

SUITE = CONFORMANCE
FILES = sorted(SUITE.glob("*.data"))
PLUGIN = shutil.which("bpfkit-conformance-plugin") or str(
    Path(sys.executable).parent / "bpfkit-conformance-plugin"
)


@pytest.mark.requires("conformance")
def test_every_conformance_file_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(FILES) >= 313, f"expected the whole suite in {SUITE}"
    outcomes = [run_test(load(f)) for f in FILES]
    failed = [str(o) for o in outcomes if not o.passed]
    passed = len(outcomes) - len(failed)
    with capsys.disabled():
        print(f"\nconformance: {passed}/{len(outcomes)} passed")
    assert not failed, "\n".join(failed)


@pytest.mark.requires("conformance")
def test_raw_section_is_used_and_agrees_with_asm() -> None:
    t = load(SUITE / "lddw.data")
    assert t.raw is not None
    from bpfkit.asm.assemble import assemble_mnemonic

    assert t.program() == assemble_mnemonic(t.asm)


def test_a_wrong_expectation_fails() -> None:
    t = parse("-- asm\nmov %r0, 1\nexit\n-- result\n0x2\n", "wrong.data")
    o = run_test(t)
    assert not o.passed and o.r0 == 1


def test_expected_error_passes_only_on_error() -> None:
    bad = parse("-- asm\nldxdw %r0, [%r1+8]\nexit\n-- error\nout of bounds\n", "e.data")
    assert run_test(bad).passed
    good = parse("-- asm\nmov %r0, 1\nexit\n-- error\nsomething\n", "e2.data")
    assert not run_test(good).passed


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def _plugin(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([PLUGIN, *args], input=stdin, capture_output=True, text=True, timeout=60)


@pytest.mark.requires("conformance")
@pytest.mark.parametrize(
    "name",
    ["add.data", "mem-len.data", "ldxb.data", "lock_cmpxchg.data", "call_local.data", "lddw.data"],
)
def test_plugin_runs_suite_files(name: str) -> None:
    t = load(SUITE / name)
    code = _hex(encode_all(t.program()))
    args = [_hex(t.mem)] if t.mem else []
    out = _plugin(*args, stdin=code + "\n")
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip(), 16) == t.result
    # The same through --program.
    out2 = _plugin(*args, "--program", code)
    assert out2.returncode == 0 and int(out2.stdout.strip(), 16) == t.result


def test_plugin_fails_on_bad_program() -> None:
    # ldxdw r0, [r1+0] with no memory: r1 = 0, a read of the null page.
    out = _plugin("--debug", stdin="79 10 00 00 00 00 00 00 95 00 00 00 00 00 00 00\n")
    assert out.returncode != 0
    assert "out of bounds" in out.stderr
    out = _plugin(stdin="zz\n")
    assert out.returncode != 0


@pytest.mark.requires("clang19")
def test_plugin_elf_input(tmp_path: Path) -> None:
    src = tmp_path / "p.c"
    src.write_text(
        '__attribute__((section("prog"), used))\n'
        "int f(unsigned char *m) { return m[0] + m[1] * 256; }\n"
    )
    obj = tmp_path / "p.o"
    subprocess.run(
        ["clang-19", "-target", "bpf", "-O2", "-c", str(src), "-o", str(obj)],
        check=True,
        capture_output=True,
    )
    out = _plugin("01 02", "--elf", stdin=_hex(obj.read_bytes()) + "\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "201"


def test_negative_style_files_raw_bytes_and_reserved_fields() -> None:
    # The suite's negative/ files give raw slots as bytes and expect reserved fields refused.
    t = parse("-- raw\n07 10 00 00 01 00 00 00\n95 00 00 00 00 00 00 00\n-- error\n", "unused.data")
    assert t.raw == (0x0000000100001007, 0x95)
    assert t.error == ""
    o = run_test(t)
    assert o.passed and o.error is not None and "reserved fields" in o.error
    # A wrong expected result is a failure, as the suite's negative tests require.
    wrong = parse(
        "-- asm\nldxdw %r0, [%r1+2]\nexit\n-- mem\naa bb 11 22 33 44 55 66 77 88 cc dd\n"
        "-- result\n0x8977665544332211\n",
        "high_bits.data",
    )
    assert not run_test(wrong).passed
    empty = parse("-- result\n0x0\n", "empty.data")
    assert not run_test(empty).passed


LDDW_SRC_1 = """# the form of newer suite files: a map section, maps and helpers by name, bare registers
-- map
# map_name  type key_size value_size max_entries
array_map 2 4 4 10
-- asm
mov r2, 1
lddw r1, map_by_fd(array_map)
stxw [r10-4], r2
mov r2, r10
add r2, -4
call bpf_map_lookup_elem
jeq r0, 0, fail
mov r0, 1
exit
fail:
mov r0, 0
exit
-- result
1
"""


def test_map_sections_and_named_helpers() -> None:
    t = parse(LDDW_SRC_1, "lddw-src-1.data")
    assert [m.name for m in t.maps] == ["array_map"]
    o = run_test(t)
    assert o.passed, str(o)
    missing = parse(LDDW_SRC_1.replace("map_by_fd(array_map)", "map_by_fd(nope)"), "m.data")
    assert not run_test(missing).passed  # the suite's negative/missing_map.data
    bad = parse("-- asm\ncall bpf_not_a_real_helper\nexit\n-- result\n0x11\n", "h.data")
    assert not run_test(bad).passed  # negative/invalid_helper.data
    kfunc = parse("-- asm\ncall runtime 0x2a\nexit\n-- result\n0x0\n-- error\n", "k.data")
    assert run_test(kfunc).passed  # call_runtime.data: a kfunc call must fail


def test_plugin_ignores_options_it_does_not_know() -> None:
    code = "b7 00 00 00 07 00 00 00 95 00 00 00 00 00 00 00"
    out = _plugin("--cpu_version", "v4", stdin=code + "\n")
    assert out.returncode == 0 and out.stdout.strip() == "7"
    out = _plugin("01 02 03 04", "--include_groups", stdin="61 10 00 00 00 00 00 00 " + code[24:])
    assert out.returncode == 0 and out.stdout.strip() == "4030201"
