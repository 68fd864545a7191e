"""``bpfkit explain OBJ``: annotated bytecode -- bytes, fields, meaning and tracked values."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from bpfkit.explain.explain import explain_object
from bpfkit.explain.render import FORMATS, SYNTAXES, render, render_markdown
from bpfkit.obj.reader import read_object


def register(sub: Any) -> None:
    """Add the ``explain`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "explain",
        help="explain a BPF object instruction by instruction",
        description="Explain every instruction of a BPF ELF object: its bytes and fields, "
        "what it does, and the values it leaves in registers and on the stack.",
    )
    p.add_argument("object", help="BPF ELF object (.o)")
    p.add_argument("--program", metavar="NAME", help="only the program (function) NAME")
    p.add_argument("--section", metavar="NAME", help="only programs in section NAME")
    p.add_argument(
        "--syntax", choices=SYNTAXES, default="llvm", help="instruction text (default: llvm)"
    )
    p.add_argument(
        "--format",
        choices=(*FORMATS, "html"),
        default="terminal",
        help="output format (default: terminal); html: one self-contained page with the "
        "source, the instructions, control-flow graphs and maps",
    )
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="terminal colours (auto: when stdout is a terminal and NO_COLOR is unset)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Explain ``args.object`` and print it."""
    obj = read_object(args.object)
    x = explain_object(obj, program=args.program, section=args.section)
    if args.format == "html":
        from bpfkit.explain.html import render_html

        text = render_html(x, obj, syntax=args.syntax)
    elif args.format == "md":
        cmd = " ".join(["bpfkit explain", *_given(args), "--format md", args.object])
        text = render_markdown(x, syntax=args.syntax, command=cmd)
    else:
        color = args.color == "always" or (
            args.color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        )
        text = render(x, args.format, syntax=args.syntax, color=color)
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


def _given(args: argparse.Namespace) -> list[str]:
    out = []
    if args.program:
        out += ["--program", args.program]
    if args.section:
        out += ["--section", args.section]
    if args.syntax != "llvm":
        out += ["--syntax", args.syntax]
    return out
