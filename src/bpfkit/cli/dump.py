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
        "prints it (immediates in decimal unless --print-imm-hex).  Without --mcpu, forms "
        "LLVM 19's default cannot decode are shown as --mcpu=v4 (or LLVM 22) shows them.",
    )
    p.add_argument("object", help="BPF ELF object (.o)")
    p.add_argument(
        "-d", "--disassemble", action="store_true", help="accepted for llvm-objdump compatibility"
    )
    hexg = p.add_mutually_exclusive_group()
    hexg.add_argument(
        "--print-imm-hex", dest="imm_hex", action="store_true", help="immediates in hex"
    )
    hexg.add_argument(
        "--no-print-imm-hex",
        dest="imm_hex",
        action="store_false",
        help="immediates in decimal (the default)",
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
        choices=("v1", "v2", "v3", "v4"),
        help="decode as llvm-objdump-19 --mcpu=vN does (<unknown> included)",
    )
    p.set_defaults(func=run, imm_hex=False)


def run(args: argparse.Namespace) -> int:
    """Disassemble ``args.object`` to standard output."""
    from bpfkit.disasm.objdump import dump
    from bpfkit.obj.reader import read_object

    text = dump(
        read_object(args.object, programs=False),  # dump() decodes the sections itself
        imm_hex=args.imm_hex,
        mcpu=args.mcpu,
        relocs=args.reloc,
        sections=args.section,
    )
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0
