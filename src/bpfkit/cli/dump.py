"""``bpfkit dump OBJ``: the ``llvm-objdump -d`` listing of a BPF object, byte for byte."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``dump`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "dump",
        help="disassemble a BPF object as llvm-objdump -d does",
        description="Print the disassembly of a BPF ELF object exactly as llvm-objdump-19 -d "
        "prints it, with the same defaults: immediates in hex (--no-print-imm-hex for decimal, "
        "as the seed's LLVM 7 listing printed them) and LLVM 19's default CPU (= --mcpu=v1; "
        "--mcpu=auto shows the forms that CPU cannot decode as --mcpu=v4 does).  -S and -l "
        "add source lines and file:line from the object's DWARF, as llvm-objdump -S / -l.",
    )
    p.add_argument("object", help="BPF ELF object (.o)")
    p.add_argument(
        "-d", "--disassemble", action="store_true", help="accepted for llvm-objdump compatibility"
    )
    hexg = p.add_mutually_exclusive_group()
    hexg.add_argument(
        "--print-imm-hex",
        dest="imm_hex",
        action="store_true",
        help="immediates in hex (the default, as llvm-objdump-19)",
    )
    hexg.add_argument(
        "--no-print-imm-hex",
        dest="imm_hex",
        action="store_false",
        help="immediates in decimal (as older llvm-objdump, e.g. the seed's listing)",
    )
    p.add_argument(
        "-S",
        "--source",
        action="store_true",
        help="print source lines before their instructions (needs DWARF: clang -g)",
    )
    p.add_argument(
        "-l",
        "--line-numbers",
        action="store_true",
        help="print function names and FILE:LINE before instructions",
    )
    p.add_argument(
        "-r", "--reloc", action="store_true", help="show relocations after the instructions"
    )
    p.add_argument(
        "-j",
        "--section",
        action="append",
        metavar="NAME",
        help="only section NAME (repeatable)",
    )
    p.add_argument(
        "--mcpu",
        choices=("v1", "v2", "v3", "v4", "auto"),
        default="v1",
        help="decode as llvm-objdump-19 --mcpu=vN does (<unknown> included); default v1, "
        "llvm-objdump-19's own default; auto: v1, but what v1 cannot decode as v4",
    )
    p.set_defaults(func=run, imm_hex=True)


def run(args: argparse.Namespace) -> int:
    """Disassemble ``args.object`` to standard output."""
    from bpfkit.disasm.objdump import dump
    from bpfkit.obj.reader import read_object

    warnings: list[str] = []
    text = dump(
        read_object(args.object, programs=False),  # dump() decodes the sections itself
        imm_hex=args.imm_hex,
        mcpu=None if args.mcpu == "auto" else args.mcpu,
        relocs=args.reloc,
        sections=args.section,
        source=args.source,
        line_numbers=args.line_numbers,
        warnings=warnings,
    )
    for w in warnings:
        print(f"bpfkit dump: warning: {args.object}: {w}", file=sys.stderr)
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0
