"""``bpfkit build``: BPF objects from Rust, LLVM IR, C or BPF assembly.

=========  ==============================================================================
``.rs``    rustc's BPF backend writes assembly (bpfkit's Rust prelude supplies what a
           ``#![no_core]`` crate lacks), bpfkit's assembler writes the object: no LLVM tools
``.ll``    ``llc -march=bpf -filetype=obj``, the newest llc that can read the IR
``.bc``    the same
``.c``     ``clang -target bpf -O2 -g``
``.s``     bpfkit's assembler
=========  ==============================================================================

>>> from bpfkit.toolchain import build
>>> build("examples/hello/hello.rs", "hello.o")      # doctest: +SKIP
PosixPath('hello.o')

The object is written whole or not at all (a temporary file renamed into place).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bpfkit.asm.assemble import assemble
from bpfkit.errors import AsmError, BuildError
from bpfkit.toolchain.btf_maps import btf_directives, maps_btf, read_map_defs
from bpfkit.toolchain.tidy import drop_unused_rodata

__all__ = ["SOURCE_KINDS", "build", "default_output"]

SOURCE_KINDS = {
    ".rs": "Rust",
    ".ll": "LLVM IR",
    ".bc": "LLVM bitcode",
    ".c": "C",
    ".s": "BPF assembly",
}

_BTF_SECTION = re.compile(r"^\s*\.section\s+\.BTF\b", re.MULTILINE)


def default_output(src: str | os.PathLike[str]) -> Path:
    """Where ``build`` writes when no output is named: ``<stem>.o`` in the current directory
    (like ``cc -c``, so that building ``examples/hello/hello.rs`` never overwrites a file
    next to the source)."""
    return Path(Path(src).stem + ".o")


def _assemble(text: str, filename: str, big_endian: bool) -> bytes:
    # bpfkit's own assembler: no LLVM tool runs for .rs and .s sources.
    return assemble(text, filename, big_endian=big_endian)


def build(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    big_endian: bool = False,
    asm_out: str | os.PathLike[str] | None = None,
    cflags: Sequence[str] = (),
    rustc_flags: Sequence[str] = (),
) -> Path:
    """Build the source file ``src`` into the BPF object ``out``; returns ``out``.

    ``out`` defaults to :func:`default_output`.  ``big_endian`` targets bpfeb.  For Rust,
    ``asm_out`` also keeps the assembly that was assembled (rustc's, less the constants it
    left unused, plus the BTF of the ``.maps``) and ``rustc_flags`` are passed on; for
    C, ``cflags`` are passed to clang.  Raises :class:`~bpfkit.errors.BuildError` for an
    unknown kind of source, a missing toolchain or a failed compilation.
    """
    src_path = Path(src)
    kind = SOURCE_KINDS.get(src_path.suffix)
    if kind is None:
        known = ", ".join(SOURCE_KINDS)
        raise BuildError(
            f"{src_path}: unknown kind of source {src_path.suffix or '(no extension)'!r}; "
            f"bpfkit build takes {known}"
        )
    if not src_path.is_file():
        raise BuildError(f"{src_path}: no such file")
    out_path = Path(out) if out is not None else default_output(src_path)
    if out_path.resolve() == src_path.resolve():
        raise BuildError(f"{src_path}: the output would overwrite the source; name another")
    out_dir = out_path.parent
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_dir)
    except OSError as e:
        raise BuildError(f"{out_path}: cannot write the output: {e.strerror or e}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _build_into(src_path, tmp, big_endian, asm_out, cflags, rustc_flags)
        try:
            os.replace(tmp, out_path)
        except OSError as e:
            raise BuildError(f"{out_path}: cannot write the output: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


def _build_rust(
    src: Path,
    big_endian: bool,
    asm_out: str | os.PathLike[str] | None,
    rustc_flags: Sequence[str],
) -> bytes:
    from bpfkit.toolchain.rust import rust_to_asm

    text = drop_unused_rodata(
        rust_to_asm(src, big_endian=big_endian, rustc_flags=tuple(rustc_flags))
    )
    # Errors in rustc's assembly point at the name rustc would give it.
    name = str(Path(asm_out) if asm_out is not None else src.with_suffix(".s"))
    try:
        obj = _assemble(text, name, big_endian)
        defs = read_map_defs(obj, name)
        if defs and not _BTF_SECTION.search(text):
            # The .maps need BTF to load (libbpf 1.x, bpfkit): describe them, assemble again.
            text += btf_directives(maps_btf(defs, big_endian=big_endian))
            obj = _assemble(text, name, big_endian)
    except AsmError as e:
        if asm_out is not None:
            _write_asm(asm_out, text)
        raise BuildError(
            f"bpfkit's assembler cannot assemble what rustc wrote for {src}:\n{e}\n"
            + ("" if asm_out is not None else f"note: `bpfkit build {src} --asm FILE` keeps it")
        ) from e
    if asm_out is not None:
        _write_asm(asm_out, text)
    return obj


def _write_asm(path: str | os.PathLike[str], text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        raise BuildError(f"{path}: cannot write the assembly (--asm): {e.strerror or e}") from None


def _build_into(
    src: Path,
    tmp: Path,
    big_endian: bool,
    asm_out: str | os.PathLike[str] | None,
    cflags: Sequence[str],
    rustc_flags: Sequence[str],
) -> None:
    suffix = src.suffix
    if suffix == ".rs":
        tmp.write_bytes(_build_rust(src, big_endian, asm_out, rustc_flags))
    elif suffix in (".ll", ".bc"):
        from bpfkit.toolchain.llvm import compile_ir

        compile_ir(src, tmp, big_endian=big_endian)
    elif suffix == ".c":
        from bpfkit.toolchain.clang import compile_c

        compile_c(src, tmp, big_endian=big_endian, cflags=cflags)
    else:
        try:
            text = src.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:  # a binary file: its bytes would garble the message
            raise BuildError(f"{src}: not UTF-8 text (byte {e.start}); expected assembly") from None
        tmp.write_bytes(_assemble(text, str(src), big_endian))
