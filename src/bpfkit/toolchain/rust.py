"""Rust to a BPF object, on stable rustc, with no crates: rustc's own BPF backend writes
BPF assembly and bpfkit's assembler turns it into the object.

rustc ships no ``core`` for ``bpfel-unknown-none``, so a program is a ``#![no_core]`` crate
that uses bpfkit's prelude (``use bpfkit::*;``): the prelude (``prelude/*.rs`` plus helper
bindings generated from the helper table) is compiled once per rustc version and prelude
content into a cache directory and passed with ``--extern bpfkit=...``.  ``no_core`` and
``lang_items`` are unstable features; ``RUSTC_BOOTSTRAP=1`` lets stable rustc accept them,
which is also why the prelude is tied to the rustc releases it was written for.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from bpfkit.errors import BuildError
from bpfkit.toolchain.rust_helpers import render_helpers
from bpfkit.toolchain.tools import Tool, find_rustc, run

# The prelude declares the lang items of these rustc releases (`pointee_sized` and
# `meta_sized` exist since 1.89; the prelude was checked on 1.95).
MIN_RUSTC = (1, 89)
TESTED_RUSTC = (1, 95)

_LANG_ITEM_TROUBLE = re.compile(
    r"lang item|lang_item|E0522|E0152|unknown lang|requires `\w+` lang", re.IGNORECASE
)
_LOCATION = re.compile(r"-->\s*(\S+?):(\d+):(\d+)")


def target(big_endian: bool = False) -> str:
    """rustc's BPF target name for the byte order."""
    return "bpfeb-unknown-none" if big_endian else "bpfel-unknown-none"


def check_rustc(tool: Tool, big_endian: bool = False) -> None:
    """BuildError unless ``tool`` is a rustc the prelude supports, with the BPF target."""
    if tool.version and tool.version[:2] < MIN_RUSTC:
        raise BuildError(
            f"rustc {tool.version_text} is not supported: bpfkit's Rust prelude needs rustc "
            f"{MIN_RUSTC[0]}.{MIN_RUSTC[1]} or newer (its lang items changed; checked on "
            f"{TESTED_RUSTC[0]}.{TESTED_RUSTC[1]}); install a newer Rust with rustup "
            "(https://rustup.rs: rustup toolchain install stable) or set RUSTC to one"
        )
    out = run([tool.path, "--print", "target-list"], what="listing rustc's targets")
    if target(big_endian) not in out.stdout.split():
        raise BuildError(
            f"rustc {tool.version_text} ({tool.path}) has no {target(big_endian)} target; "
            "use a rustc built with LLVM's BPF backend (rustup's stable rustc has it)"
        )


def rust_unavailable(big_endian: bool = False) -> str | None:
    """None if ``bpfkit build`` can compile Rust here, else the reason (the BuildError's
    message: what is missing and what to install).  The demo uses it to choose its road."""
    try:
        check_rustc(find_rustc(), big_endian)
    except BuildError as e:
        return str(e)
    return None


def prelude_sources() -> dict[str, str]:
    """The prelude crate's files by name: ``prelude/*.rs`` and the generated ``helpers.rs``."""
    files = {}
    for entry in resources.files("bpfkit.toolchain").joinpath("prelude").iterdir():
        if entry.name.endswith(".rs"):
            files[entry.name] = entry.read_text(encoding="utf-8")
    files["helpers.rs"] = render_helpers()
    return files


def _cache_root() -> Path:
    explicit = os.environ.get("BPFKIT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bpfkit"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["RUSTC_BOOTSTRAP"] = "1"  # no_core and lang_items on stable rustc
    env["RUSTC_ICE"] = "0"  # an internal compiler error is reported, not dumped in the cwd
    env.pop("RUSTFLAGS", None)
    return env


def _common(tool: Tool, big_endian: bool) -> list[str]:
    return [
        tool.path,
        "--target",
        target(big_endian),
        "--edition=2021",
        "-C",
        "opt-level=3",
        "-C",
        "panic=abort",
        "--color=never",
        # Out-of-line functions in .text, where loaders look for BPF sub-programs (rustc
        # would give each its own .text.<name> section).
        "-Z",
        "function-sections=no",
    ]


def _version_note(tool: Tool, stderr: str) -> str:
    if tool.version[:2] != TESTED_RUSTC and _LANG_ITEM_TROUBLE.search(stderr):
        return (
            f"\nnote: bpfkit's Rust prelude was written for rustc "
            f"{TESTED_RUSTC[0]}.{TESTED_RUSTC[1]}; rustc {tool.version_text} wants other lang "
            "items, so this rustc is not supported"
        )
    return ""


def build_prelude(tool: Tool, big_endian: bool = False, scratch: Path | None = None) -> Path:
    """The prelude rlib for ``tool``, compiled on first use and cached; returns its path.

    The cache is ``$BPFKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/bpfkit`` or ``~/.cache/bpfkit``;
    if it cannot be written, the rlib is built in ``scratch`` (which the caller removes).
    """
    files = prelude_sources()
    key = hashlib.sha256()
    for part in (tool.path, tool.version_text, target(big_endian)):
        key.update(part.encode() + b"\0")
    for name in sorted(files):
        key.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    final = _cache_root() / "rust-prelude" / key.hexdigest()[:20]
    rlib = final / "libbpfkit.rlib"
    if rlib.is_file():
        return rlib
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    except OSError:
        if scratch is None:
            raise
        final, rlib = scratch / "prelude", scratch / "prelude" / "libbpfkit.rlib"
        work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=scratch))
    try:
        for name, text in files.items():
            (work / name).write_text(text, encoding="utf-8")
        cmd = _common(tool, big_endian) + [
            "--crate-type=rlib",
            "--crate-name=bpfkit",
            "-A",
            "warnings",
            str(work / "lib.rs"),
            "-o",
            str(work / "libbpfkit.rlib"),
        ]
        res = run(cmd, what="compiling bpfkit's Rust prelude", env=_env())
        if res.returncode != 0:
            raise BuildError(
                f"rustc {tool.version_text} failed to compile bpfkit's Rust prelude:\n"
                f"{res.stderr.strip()}{_version_note(tool, res.stderr)}"
            )
        try:
            work.rename(final)
        except OSError:
            if not rlib.is_file():  # not a concurrent build that got there first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rlib


def _crate_name(src: Path) -> str:
    name = re.sub(r"\W", "_", src.stem) or "program"
    return f"_{name}" if name[0].isdigit() else name


def rust_to_asm(src: Path, *, big_endian: bool = False, rustc_flags: tuple[str, ...] = ()) -> str:
    """Compile the Rust program ``src`` to BPF assembly text (rustc --emit=asm)."""
    tool = find_rustc()
    check_rustc(tool, big_endian)
    with tempfile.TemporaryDirectory(prefix="bpfkit-rustc-") as tmp:
        rlib = build_prelude(tool, big_endian, scratch=Path(tmp))
        out = Path(tmp) / "out.s"
        cmd = _common(tool, big_endian) + [
            "--emit=asm",
            "--crate-type=lib",
            f"--crate-name={_crate_name(src)}",
            "--extern",
            f"bpfkit={rlib}",
            *rustc_flags,
            str(src),
            "-o",
            str(out),
        ]
        res = run(cmd, what=f"compiling {src}", env=_env())
        if res.returncode != 0 or not out.is_file():
            raise BuildError(_rustc_failure(src, tool, res.stderr))
        return out.read_text(encoding="utf-8")


def _rustc_failure(src: Path, tool: Tool, stderr: str) -> str:
    """A one-line summary (first error with its location) and rustc's whole message."""
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error")]
    first = errors[0] if errors else "error"
    loc = _LOCATION.search(stderr)
    where = f"{loc.group(1)}:{loc.group(2)}:{loc.group(3)}" if loc else str(src)
    hint = ""
    if re.search(r"can't find crate for `(core|std)`", stderr):
        hint = (
            "\nnote: a BPF program in Rust is a no_core crate using bpfkit's prelude: start "
            "it with #![feature(no_core)], #![no_core] and use bpfkit::*; (see "
            "examples/hello/hello.rs)"
        )
    return (
        f"rustc {tool.version_text} failed on {where}: {first}\n{stderr.rstrip()}"
        f"{_version_note(tool, stderr)}{hint}"
    )
