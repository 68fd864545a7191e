"""``bpfkit cfg OBJ``: draw the control-flow graph of an object's programs (Graphviz)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from bpfkit.errors import BuildError
from bpfkit.explain.graph import object_graphs, to_dot
from bpfkit.obj.reader import read_object
from bpfkit.toolchain.graphviz import layout


def register(sub: Any) -> None:
    """Add the ``cfg`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "cfg",
        help="draw the control-flow graph of a BPF object's programs",
        description="Draw each program's basic blocks (LLVM-syntax instructions, source lines "
        "from .BTF.ext), edges labelled taken / fall-through, loops and bpf-to-bpf calls. "
        "Without -o the DOT text goes to stdout; SVG and PNG need Graphviz's dot.",
    )
    p.add_argument("object", help="BPF ELF object (.o)")
    p.add_argument("--program", metavar="NAME", help="only NAME (and the functions it calls)")
    p.add_argument("-o", "--output", metavar="FILE", help="write FILE.svg, FILE.png or FILE.dot")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Draw ``args.object``."""
    obj = read_object(args.object)
    dot = to_dot(object_graphs(obj, args.program), title=os.path.basename(args.object))
    if not args.output:
        sys.stdout.write(dot)
        return 0
    ext = os.path.splitext(args.output)[1].lower().lstrip(".")
    if ext not in ("svg", "png", "dot"):
        raise BuildError(f"{args.output}: unknown picture format; name it .svg, .png or .dot")
    data = layout(dot, ext)
    # Written whole or not at all: a temporary file renamed over the target.
    tmp = f"{args.output}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, args.output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"wrote {args.output} ({len(data)} bytes)", file=sys.stderr)
    return 0
