"""``bpfkit asm FILE.s [-o OUT.o]``: assemble BPF assembly with bpfkit's own assembler."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from bpfkit.asm.assemble import assemble_file, assemble_mnemonic
from bpfkit.errors import AsmError
from bpfkit.isa.insn import encode_all


def register(subparsers: Any) -> None:
    """Add the ``asm`` sub-command."""
    p = subparsers.add_parser(
        "asm",
        help="assemble BPF assembly (LLVM syntax) into an ELF object",
        description=(
            "Assemble LLVM-syntax BPF assembly (as llc, clang -S and rustc --emit=asm write "
            "it) into an ELF relocatable object, like llvm-mc -filetype=obj. With --mnemonic, "
            "read the conformance suite's mnemonic syntax and write raw instruction bytes."
        ),
    )
    p.add_argument("source", help="the assembly file")
    p.add_argument("-o", "--output", help="output file (default: SOURCE with .o, or .bin)")
    p.add_argument("--big-endian", action="store_true", help="write a bpfeb object")
    p.add_argument(
        "--mnemonic",
        action="store_true",
        help="input is mnemonic syntax (mov %%r0, 1); output is raw 8-byte instruction slots",
    )
    p.set_defaults(func=run)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, so no half-written output remains."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def run(args: argparse.Namespace) -> int:
    """Assemble and say what was written."""
    src = Path(args.source)
    if args.mnemonic:
        try:
            text = src.read_text(encoding="utf-8")
        except OSError as e:  # the message starts with the file's name: not again here
            raise AsmError(f"cannot read: {e.strerror}", file=str(src)) from None
        except UnicodeDecodeError as e:
            raise AsmError(f"not UTF-8 text (byte {e.start})", file=str(src)) from None
        data = encode_all(assemble_mnemonic(text, str(src)), big_endian=args.big_endian)
        default = src.with_suffix(".bin").name
    else:
        data = assemble_file(src, big_endian=args.big_endian)
        default = src.with_suffix(".o").name
    out = Path(args.output) if args.output else Path(default)
    if out.resolve() == src.resolve():  # `asm x.s -o x.s`, `asm prog.o`: keep the source
        raise AsmError("the output would overwrite the source; name another", file=str(out))
    try:
        _write_atomically(out, data)
    except OSError as e:
        raise AsmError(f"cannot write: {e.strerror}", file=str(out)) from None
    print(f"wrote {out} ({len(data)} bytes)")
    return 0
