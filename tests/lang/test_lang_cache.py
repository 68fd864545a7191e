"""The compile cache of bpfkit.lang (bpfkit.lang.cache): a second compile of the same
program file is read back without compiling; anything the object depends on changing is a
miss; a damaged or foreign entry is ignored without an error."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bpfkit import cachedir
from bpfkit.lang import cache, compiler
from helpers import ROOT

PROG = """
from bpfkit.lang import Array, Const, XDP_PASS, u8, u32, u64, xdp
from {consts} import ENTRIES

counts = Array[u32, u64](max_entries=ENTRIES)
seen: u64 = 0
limit: Const[u32] = 7


def bump(v: u32) -> u32:
    return v + 1


@xdp
def count(ctx) -> u32:
    counts[bump(u32(ctx.load(u8, 0)))] += 1
    return XDP_PASS
"""


@pytest.fixture
def prog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A program file and a private cache directory (and a module of constants it uses)."""
    monkeypatch.setenv("BPFKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BPFKIT_NO_CACHE", raising=False)
    consts = f"consts_{os.getpid()}_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{consts}.py").write_text("ENTRIES = 4\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "counter.py"
    path.write_text(PROG.format(consts=consts))
    return path


def _no_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> Any:
        raise AssertionError("compiled although the cache holds the program")

    monkeypatch.setattr(compiler, "compile_source", refuse)


def _entries(path: Path) -> list[Path]:
    return sorted((path.parent / "cache" / "lang").glob("*.bpfc"))


def test_a_second_compile_is_read_from_the_cache(
    prog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = compiler.compile_file(str(prog))
    assert len(_entries(prog)) == 1
    _no_compiling(monkeypatch)
    second = compiler.compile_file(str(prog))
    assert second.obj == first.obj and second.asm == first.asm
    assert second.stack == first.stack
    assert {k: (s.kind, s.section) for k, s in second.programs.items()} == {
        k: (s.kind, s.section) for k, s in first.programs.items()
    }
    assert list(second.maps) == list(first.maps) == ["counts"]
    assert second.maps["counts"].max_entries == 4
    assert {k: (n, repr(t), c) for k, (n, t, c) in second.data.items()} == {
        k: (n, repr(t), c) for k, (n, t, c) in first.data.items()
    }
    assert set(second.data) == {"seen", "limit"}
    # The object read back works as the compiled one does.
    assert [p.name for p in second.spec.programs] == [p.name for p in first.spec.programs]


def test_a_changed_source_is_compiled_again(prog: Path) -> None:
    first = compiler.compile_file(str(prog))
    prog.write_text(prog.read_text().replace("return XDP_PASS", "return 1"))
    second = compiler.compile_file(str(prog))
    assert second.obj != first.obj
    assert len(_entries(prog)) == 1  # the new entry replaced the old one


def test_a_changed_value_from_another_module_is_compiled_again(prog: Path) -> None:
    compiler.compile_file(str(prog))
    consts = next(p for p in prog.parent.glob("consts_*.py"))
    consts.write_text("ENTRIES = 16  # a new size: not the old bytecode\n")
    sys.modules.pop(consts.stem, None)
    second = compiler.compile_file(str(prog))
    assert second.maps["counts"].max_entries == 16
    assert len(_entries(prog)) == 1
    assert second.spec.maps[0].max_entries == 16


@pytest.mark.parametrize("change", ["version", "code"])
def test_a_changed_bpfkit_is_compiled_again(
    prog: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    compiler.compile_file(str(prog))
    if change == "version":
        monkeypatch.setattr(cache, "__version__", "999.0")
    else:  # one of bpfkit's source files edited: a new size or time
        stamp = cachedir.code_stamp()
        path, mtime, size = stamp[0]
        monkeypatch.setattr(cachedir, "code_stamp", lambda: [(path, mtime + 1, size), *stamp[1:]])
    called = []
    real = compiler.compile_source

    def spy(*args: Any) -> Any:
        called.append(1)
        return real(*args)

    monkeypatch.setattr(compiler, "compile_source", spy)
    compiler.compile_file(str(prog))
    assert called == [1]
    assert len(_entries(prog)) == 1


def test_the_key_holds_what_the_object_depends_on() -> None:
    ns: dict[str, Any] = {}
    base = cache.key("src", ns, "/p.py")
    assert cache.key("src", ns, "/p.py") == base
    assert cache.key("src2", ns, "/p.py") != base
    assert cache.key("src", ns, "/q.py") != base  # line info names the file
    assert cache.key("src", {"N": 4}, "/p.py") != cache.key("src", {"N": 5}, "/p.py")


@pytest.mark.parametrize(
    "damage",
    ["truncated", "flipped", "garbage", "empty", "other-key"],
)
def test_a_damaged_entry_is_ignored(prog: Path, damage: str) -> None:
    first = compiler.compile_file(str(prog))
    (entry,) = _entries(prog)
    data = entry.read_bytes()
    if damage == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":
        i = len(data) - 100
        entry.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :])
    elif damage == "garbage":
        entry.write_bytes(b"\x00\xff" * 500)
    elif damage == "empty":
        entry.write_bytes(b"")
    else:  # a valid entry of another key under this name
        import marshal
        import zlib

        body = marshal.dumps((b"another key", {"obj": b"x", "asm": ""}))
        entry.write_bytes(cachedir.MAGIC + f"{zlib.crc32(body):08x}".encode() + body)
    again = compiler.compile_file(str(prog))
    assert again.obj == first.obj
    assert entry.read_bytes() == data  # rewritten


def test_a_damaged_entry_gives_no_traceback_in_a_program_run(tmp_path: Path) -> None:
    """``python prog.py`` through a damaged cache: the same output, nothing on stderr."""
    src = tmp_path / "p.py"
    src.write_text(
        textwrap.dedent(
            """
            from bpfkit.lang import xdp, u32
            from bpfkit.lang.compiler import compile_file

            @xdp
            def prog(ctx) -> u32:
                return 2

            if __name__ == "__main__":
                print(len(compile_file(__file__).obj) > 0)
            """
        )
    )
    env = {**os.environ, "BPFKIT_CACHE_DIR": str(tmp_path / "c")}
    env.pop("BPFKIT_NO_CACHE", None)
    env["PYTHONPATH"] = str(ROOT / "src")
    run = [sys.executable, str(src)]
    assert (
        subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout == "True\n"
    )
    for entry in (tmp_path / "c" / "lang").glob("*.bpfc"):
        entry.write_bytes(entry.read_bytes()[:-7] + b"damaged")
    done = subprocess.run(run, env=env, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "True\n", "")


def test_a_cache_directory_others_may_write_is_not_used(prog: Path) -> None:
    directory = prog.parent / "cache" / "lang"
    directory.mkdir(parents=True)
    directory.chmod(0o777)
    compiler.compile_file(str(prog))
    assert _entries(prog) == []  # neither read nor written


def test_no_cache_turns_it_off(prog: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPFKIT_NO_CACHE", "1")
    compiler.compile_file(str(prog))
    assert _entries(prog) == []


def test_a_cached_program_does_not_import_the_code_generator(tmp_path: Path) -> None:
    """A hit needs none of the compiler's back end (its import is most of a first run)."""
    src = tmp_path / "p.py"
    src.write_text(
        "from bpfkit.lang import xdp, u32\n\n@xdp\ndef prog(ctx) -> u32:\n    return 2\n"
    )
    check = (
        "import sys; from bpfkit.lang.compiler import compile_file; "
        "assert compile_file(sys.argv[1]).spec.programs; "
        "print(sorted(m for m in sys.modules if m.startswith(('bpfkit.', 'elftools'))))"
    )
    env = {**os.environ, "BPFKIT_CACHE_DIR": str(tmp_path / "c"), "PYTHONPATH": str(ROOT / "src")}
    env.pop("BPFKIT_NO_CACHE", None)
    run = [sys.executable, "-c", check, str(src)]
    first = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout
    assert "bpfkit.lang.lower" in first and "bpfkit.asm.assemble" in first
    second = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout
    loaded = eval(second)  # noqa: S307 - our own printed list
    # Nor the ELF reader and pyelftools: the object comes back as bpfkit read it.
    for module in (
        "bpfkit.lang.lower",
        "bpfkit.lang.emit",
        "bpfkit.lang.btfgen",
        "bpfkit.asm.assemble",
        "bpfkit.isa.table",
        "bpfkit.obj.reader",
        "elftools",
    ):
        assert module not in loaded


def test_a_damaged_object_model_is_read_again() -> None:
    assert cache.load_spec(b"not a pickle") is None
    assert cache.load_spec(None) is None
    import pickle

    assert cache.load_spec(pickle.dumps({"not": "a spec"})) is None
