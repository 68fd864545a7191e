"""``bpfkit build SRC [-o OUT.o]``: Rust, LLVM IR, C or BPF assembly to a BPF object."""

from __future__ import annotations

import argparse
from typing import Any

from bpfkit.toolchain import build


def register(subparsers: Any) -> None:
    """Add the ``build`` sub-command."""
    p = subparsers.add_parser(
        "build",
        help="build a BPF object from .py, .rs, .ll/.bc, .c or .s",
        description=(
            "Build a BPF object. .py: bpfkit's Python compiler (bpfkit.lang); .rs: rustc's BPF backend + bpfkit's assembler (bpfkit's "
            "Rust prelude, stable rustc); .ll/.bc: llc; .c: clang -target bpf -O2 -g; "
            ".s: bpfkit's assembler."
        ),
    )
    p.add_argument("source", help="the source file (.rs, .ll, .bc, .c or .s)")
    p.add_argument(
        "-o", "--output", help="the object to write (default: SOURCE's name with .o, here)"
    )
    p.add_argument("--big-endian", action="store_true", help="build for bpfeb")
    p.add_argument(
        "--asm",
        metavar="FILE",
        help="Rust, Python: also write the BPF assembly that was assembled here",
    )
    p.add_argument(
        "--cflag",
        action="append",
        default=[],
        metavar="FLAG",
        help="C: one more clang flag (repeatable), e.g. --cflag=-DDEBUG",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build and say what was written."""
    if args.source.endswith(".py"):
        from bpfkit.lang.build import build_python

        print(f"wrote {build_python(args.source, args.output, asm_out=args.asm)}")
        return 0
    out = build(
        args.source,
        args.output,
        big_endian=args.big_endian,
        asm_out=args.asm,
        cflags=args.cflag,
    )
    print(f"wrote {out}")
    return 0
