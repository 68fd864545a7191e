"""``bpfkit asm FILE.s [-o OUT.o]``: assemble BPF assembly with bpfkit's own assembler."""

from __future__ import annotations

import argparse
import os
from typing import Any

# No pathlib, no tempfile: with them, start-up takes a few ms longer (urllib, random,
# shutil), which shows in the speed goal (bench/asm.py).
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


def _write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, so no half-written output remains."""
    base = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}")
    for n in range(100):
        tmp = f"{base}.{n}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(f"{base}.*.tmp: no free temporary name")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def run(args: argparse.Namespace) -> int:
    """Assemble and say what was written."""
    src: str = args.source
    if args.mnemonic:
        try:
            with open(src, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:  # the message starts with the file's name: not again here
            raise AsmError(f"cannot read: {e.strerror}", file=src) from None
        except UnicodeDecodeError as e:
            raise AsmError(f"not UTF-8 text (byte {e.start})", file=src) from None
        data = encode_all(assemble_mnemonic(text, src), big_endian=args.big_endian)
        suffix = ".bin"
    else:
        data = assemble_file(src, big_endian=args.big_endian)
        suffix = ".o"
    # The default: the source's name with the suffix replaced, in the current directory.
    out: str = args.output or os.path.splitext(os.path.basename(src))[0] + suffix
    if os.path.realpath(out) == os.path.realpath(
        src
    ):  # `asm x.s -o x.s`, `asm prog.o`: keep the source
        raise AsmError("the output would overwrite the source; name another", file=out)
    try:
        _write_atomically(out, data)
    except OSError as e:
        raise AsmError(f"cannot write: {e.strerror}", file=out) from None
    print(f"wrote {out} ({len(data)} bytes)")
    return 0
