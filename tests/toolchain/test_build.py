"""bpfkit build: dispatch by kind, toolchain discovery and its errors, the Rust prelude."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bpfkit.cli.main import main
from bpfkit.errors import AsmError, BuildError
from bpfkit.toolchain import build, default_output
from bpfkit.toolchain.llvm import compile_ir
from bpfkit.toolchain.rust import prelude_sources, rust_to_asm
from bpfkit.toolchain.rust_helpers import bindable, render_helpers
from bpfkit.toolchain.tools import find_all, parse_version
from bpfkit.uapi.helpers import HELPERS
from helpers import ROOT

ROOT = ROOT
HELLO_LL = ROOT / "examples" / "hello" / "hello.ll"


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with nothing on it but the scripts a test puts in the returned directory."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.delenv("RUSTC", raising=False)
    return bindir


def _section(path: Path, name: str) -> bytes:
    with path.open("rb") as f:
        section = ELFFile(f).get_section_by_name(name)
        assert section is not None, f"{path} has no section {name}"
        return bytes(section.data())


def _script(bindir: Path, name: str, body: str) -> None:
    path = bindir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_unknown_extension(tmp_path: Path) -> None:
    src = tmp_path / "prog.zig"
    src.write_text("")
    with pytest.raises(BuildError, match=r"prog\.zig: unknown kind of source '\.zig'.*\.rs"):
        build(src, tmp_path / "x.o")


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="no such file"):
        build(tmp_path / "nope.c", tmp_path / "x.o")


def test_output_may_not_overwrite_source(tmp_path: Path) -> None:
    src = tmp_path / "a.s"
    src.write_text("exit\n")
    with pytest.raises(BuildError, match="overwrite the source"):
        build(src, src)


def test_default_output_is_in_the_current_directory() -> None:
    # Never next to the source: examples/hello/hello.o is the seed's object.
    assert default_output("examples/hello/hello.rs") == Path("hello.o")


def test_missing_rustc(tmp_path: Path, empty_path: Path) -> None:
    src = tmp_path / "p.rs"
    src.write_text("")
    with pytest.raises(BuildError, match=r"rustc not found: install Rust"):
        build(src, tmp_path / "p.o")


def test_missing_llc(empty_path: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"no llc found on PATH.*apt-get install llvm-19"):
        build(HELLO_LL, tmp_path / "p.o")


def test_missing_clang(tmp_path: Path, empty_path: Path) -> None:
    src = tmp_path / "p.c"
    src.write_text("int x;\n")
    with pytest.raises(BuildError, match=r"no clang found.*apt-get install clang-19"):
        build(src, tmp_path / "p.o")
    assert not (tmp_path / "p.o").exists()


def test_old_rustc_is_refused(tmp_path: Path, empty_path: Path) -> None:
    _script(empty_path, "rustc", 'echo "rustc 1.75.0 (82e1608df 2023-12-21)"')
    src = tmp_path / "p.rs"
    src.write_text("")
    with pytest.raises(BuildError, match=r"rustc 1\.75\.0 is not supported.*1\.89 or newer"):
        build(src, tmp_path / "p.o")


def test_rustc_without_bpf_target(tmp_path: Path, empty_path: Path) -> None:
    _script(
        empty_path,
        "rustc",
        'case "$1" in --version) echo "rustc 1.95.0";; *) echo x86_64-unknown-linux-gnu;; esac',
    )
    src = tmp_path / "p.rs"
    src.write_text("")
    with pytest.raises(BuildError, match=r"has no bpfel-unknown-none target"):
        build(src, tmp_path / "p.o")


def test_newer_rustc_with_other_lang_items_is_named_unsupported(
    tmp_path: Path, empty_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A future rustc that wants a lang item the prelude lacks: the error says so.
    _script(
        empty_path,
        "rustc",
        'case "$1" in --version) echo "rustc 1.99.0";; --print) echo bpfel-unknown-none;; '
        r'*) echo "error: requires \`frobnicate\` lang_item" >&2; exit 1;; esac',
    )
    monkeypatch.setenv("BPFKIT_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "p.rs"
    src.write_text("")
    with pytest.raises(BuildError) as info:
        build(src, tmp_path / "p.o")
    msg = str(info.value)
    assert "rustc 1.99.0 failed to compile bpfkit's Rust prelude" in msg
    assert "requires `frobnicate` lang_item" in msg
    assert "written for rustc 1.95; rustc 1.99.0 wants other lang items" in msg
    assert not list((tmp_path / "cache" / "rust-prelude").iterdir())  # no half-built cache


def test_versioned_tools_are_found_newest_first(empty_path: Path) -> None:
    for name, version in (("llc-14", "14.0.6"), ("llc-19", "19.1.7"), ("llc-9", "9.0.1")):
        _script(empty_path, name, f'echo "Debian LLVM version {version}"')
    _script(empty_path, "llc-x", 'echo "not one of them"')
    assert [t.name for t in find_all("llc")] == ["llc-19", "llc-14", "llc-9"]
    assert find_all("llc")[0].version == (19, 1, 7)


def test_parse_version() -> None:
    assert parse_version("Debian clang version 19.1.7 (3)", after="version") == (19, 1, 7)
    assert parse_version("rustc 1.95.0 (59807616e 2026-04-14)", after="rustc") == (1, 95, 0)
    assert parse_version("no digits") == ()


# --- the helper bindings -------------------------------------------------------------


def test_every_helper_has_a_binding() -> None:
    text = render_helpers()
    for helper in bindable():
        assert re.search(rf"pub unsafe fn {helper.name}\b", text), helper.name
        assert f"helper_fn({helper.id})" in text
    assert len(bindable()) >= 200
    assert {h.id for h in bindable()} == {h.id for h in HELPERS if h.id and h.prototype_known}
    # the variadic one gets 1-3 extra arguments
    assert "pub unsafe fn bpf_trace_printk3<A0>(fmt: *const A0, fmt_size: u32, arg2: u64" in text


def test_prelude_sources_include_generated_helpers() -> None:
    files = prelude_sources()
    assert {"lib.rs", "lang.rs", "ops.rs", "mem.rs", "maps.rs", "macros.rs", "helpers.rs"} <= set(
        files
    )
    assert "pub mod helpers;" in files["lib.rs"]


# --- compiling ------------------------------------------------------------------------


@pytest.mark.requires("rustc")
def test_every_helper_binding_compiles_to_call_id(tmp_path: Path) -> None:
    """A program calling every helper: rustc's BPF backend writes `call <id>` for each."""
    lines = ["#![feature(no_core)]", "#![no_core]", "use bpfkit::*;", 'license!("GPL");']
    for h in bindable():
        args = ", ".join("null::<u8>()" if a.ctype.endswith("*") else "0" for a in h.args)
        lines.append(
            f'program! {{ "socket/{h.id}", fn call_{h.id}(_c: *mut c_void) -> i32 '
            f"{{ unsafe {{ let _ = {h.name}({args}); }} 0 }} }}"
        )
    src = tmp_path / "all_helpers.rs"
    src.write_text("\n".join(lines) + "\n")
    asm = rust_to_asm(src)
    called = {int(n) for n in re.findall(r"^\s*call (\d+)$", asm, re.MULTILINE)}
    assert called == {h.id for h in bindable()}


@pytest.mark.requires("rustc")
def test_rust_error_names_the_source_location(tmp_path: Path) -> None:
    src = tmp_path / "bad.rs"
    src.write_text(
        "#![feature(no_core)]\n#![no_core]\nuse bpfkit::*;\n\n"
        'program! { "socket", fn f(_c: *mut c_void) -> i32 { let x: u32 = 1u64; 0 } }\n'
    )
    with pytest.raises(BuildError) as info:
        build(src, tmp_path / "bad.o")
    msg = str(info.value)
    assert re.search(r"failed on \S*bad\.rs:5:\d+: error\[E0308\]: mismatched types", msg), msg
    assert "let x: u32 = 1u64" in msg  # rustc's own excerpt follows
    assert not (tmp_path / "bad.o").exists()


@pytest.mark.requires("llc")
def test_ir_builds_with_an_llc_that_reads_it(tmp_path: Path) -> None:
    # hello.ll has typed pointers (i8*): llc 17+ cannot read it, llc 14 can.
    out = build(HELLO_LL, tmp_path / "hello.o")
    # llc 14 wrote the seed's hello.o from this file: the same instructions again.
    assert _section(out, "kprobe/SyS_clone") == _section(
        ROOT / "examples" / "hello" / "hello.o", "kprobe/SyS_clone"
    )


@pytest.mark.requires("llc")
def test_unreadable_ir_says_so_and_points_to_rust(tmp_path: Path) -> None:
    src = tmp_path / "new.ll"
    src.write_text("define i32 @f() {\n  ret i32 0 ; }\n  %x = frobnicate ptr null\n}\n")
    with pytest.raises(
        BuildError, match=r"(?s)no llc here can read .*new\.ll.*bpfkit build program\.rs"
    ):
        build(src, tmp_path / "new.o")


@pytest.mark.requires("clang19")
def test_c_error_names_the_source_location(tmp_path: Path) -> None:
    src = tmp_path / "bad.c"
    src.write_text("int f(void) {\n  return nope;\n}\n")
    with pytest.raises(BuildError, match=r"bad\.c:2:10: use of undeclared identifier 'nope'"):
        build(src, tmp_path / "bad.o")


@pytest.mark.requires("clang19")
def test_cli_builds_c(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "ok.c"
    src.write_text(
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
        'SEC("socket") int f(struct __sk_buff *skb) { return skb->len; }\n'
        'char LICENSE[] SEC("license") = "GPL";\n'
    )
    out = tmp_path / "ok.o"
    assert main(["build", str(src), "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert out.read_bytes()[:4] == b"\x7fELF"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_cli_error_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(tmp_path / "x.txt")]) == 1
    assert "unknown kind of source" in capsys.readouterr().err


def test_assembly_errors_point_at_the_line(tmp_path: Path) -> None:
    src = tmp_path / "bad.s"
    src.write_text("\t.text\nf:\n\tr0 = 0\n\tr0 += r11\n\texit\n")
    with pytest.raises(AsmError, match=r"bad\.s:4:\d+"):
        build(src, tmp_path / "bad.o")
    assert not (tmp_path / "bad.o").exists()


@pytest.mark.requires("clang19", "llc")
def test_bitcode_builds_like_clang(tmp_path: Path) -> None:
    src = tmp_path / "f.c"
    src.write_text(
        "int f(int *p, int n) { int s = 0; for (int i = 0; i < 8; i++) s += p[i] * n; return s; }\n"
    )
    bc, direct = tmp_path / "f.bc", tmp_path / "direct.o"
    flags = ["clang-19", "-target", "bpfel", "-O2", str(src)]
    subprocess.run([*flags, "-emit-llvm", "-c", "-o", str(bc)], check=True)
    subprocess.run([*flags, "-c", "-o", str(direct)], check=True)
    out = build(bc, tmp_path / "f.o")
    assert _section(out, ".text") == _section(direct, ".text")


@pytest.mark.requires("clang19", "llc")
def test_ir_of_today_uses_the_newest_llc(tmp_path: Path) -> None:
    src = tmp_path / "f.c"
    src.write_text("int f(int *p) { return *p + 1; }\n")
    ll = tmp_path / "f.ll"
    subprocess.run(
        ["clang-19", "-target", "bpf", "-O2", "-S", "-emit-llvm", str(src), "-o", str(ll)],
        check=True,
    )
    tool = compile_ir(ll, tmp_path / "f.o")
    assert tool.version[0] >= 19  # opaque-pointer IR: llc 14 could not read it
    assert _section(tmp_path / "f.o", ".text")  # f's code


@pytest.mark.requires("rustc", "llvm19")
def test_big_endian_rust_matches_llvm_mc(tmp_path: Path) -> None:
    asm = tmp_path / "hello.s"
    ours = build(
        ROOT / "examples" / "hello" / "hello.rs", tmp_path / "eb.o", big_endian=True, asm_out=asm
    )
    theirs = tmp_path / "mc.o"
    subprocess.run(
        ["llvm-mc-19", "-triple", "bpfeb", "-filetype=obj", str(asm), "-o", str(theirs)], check=True
    )
    with ours.open("rb") as f:
        assert not ELFFile(f).little_endian
    for name in ("kprobe/SyS_clone", "license", "version"):
        assert _section(ours, name) == _section(theirs, name)


@pytest.mark.requires("rustc", "llc")
def test_rustc_ir_needs_an_llc_as_new_as_rustc_llvm(tmp_path: Path) -> None:
    """The seed's route today: rustc's IR. Unless an llc here is as new as rustc's LLVM,
    bpfkit build says the IR is too new and points to building the .rs itself."""
    from bpfkit.toolchain.rust import _common, _env, build_prelude  # the same flags as a build
    from bpfkit.toolchain.tools import find_llcs, find_rustc, parse_version

    rustc = find_rustc()
    ll = tmp_path / "hello.ll"
    cmd = _common(rustc, False) + [
        "--emit=llvm-ir",
        "--crate-type=lib",
        "--extern",
        f"bpfkit={build_prelude(rustc)}",
        str(ROOT / "examples" / "hello" / "hello.rs"),
        "-o",
        str(ll),
    ]
    subprocess.run(cmd, check=True, env=_env(), capture_output=True)
    info = subprocess.run([rustc.path, "-vV"], capture_output=True, text=True).stdout
    rust_llvm = parse_version(info, after="LLVM version")[0]
    if max(t.version[0] for t in find_llcs()) >= rust_llvm:
        assert _section(build(ll, tmp_path / "h.o"), "kprobe/SyS_clone")
    else:
        with pytest.raises(BuildError) as e:
            build(ll, tmp_path / "h.o")
        msg = str(e.value)
        assert re.search(r"hello\.ll:\d+:\d+: error:", msg)
        assert "newer LLVM than" in msg and "bpfkit build program.rs" in msg


@pytest.mark.requires("clang19")
def test_cli_passes_cflags(tmp_path: Path) -> None:
    src = tmp_path / "v.c"
    src.write_text('__attribute__((section("socket"), used)) int f(void *c) { return VALUE; }\n')
    out = tmp_path / "v.o"
    assert main(["build", str(src), "-o", str(out), "--cflag=-DVALUE=1234"]) == 0
    # r0 = 1234; exit
    assert _section(out, "socket") == bytes.fromhex("b7000000d20400009500000000000000")


@pytest.mark.requires("rustc")
def test_cli_keeps_the_assembly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, asm = tmp_path / "h.o", tmp_path / "h.s"
    hello = ROOT / "examples" / "hello" / "hello.rs"
    assert main(["build", str(hello), "-o", str(out), "--asm", str(asm)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    text = asm.read_text()
    assert "kprobe__sys_clone:" in text and "\tcall 6\n" in text
    assert build(asm, tmp_path / "again.o").read_bytes() == out.read_bytes()
