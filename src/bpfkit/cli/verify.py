"""``bpfkit verify --kernel OBJ``: load each program with the detailed verifier log and
explain every rejection (failing instruction at its source line, path, origin of the
offending value, class of the message, what to change)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``verify`` sub-command."""
    p = sub.add_parser(
        "verify",
        help="verify an object's programs and explain why a verifier rejects them",
        description=(
            "With --kernel: load each program of OBJ into the running kernel with the "
            "detailed verifier log (needs root or CAP_BPF), unload it, and explain each "
            "rejection: the failing instruction, its source line and the lines around it "
            "(line info of C built with -g; else the function and instruction), the branch "
            "decisions on the path, where the offending value came from, the class of the "
            "verifier's message and what to change.  Exit status 1 if any program is rejected."
        ),
    )
    p.add_argument("object", metavar="OBJ", help="BPF ELF object (.o)")
    p.add_argument(
        "--kernel",
        action="store_true",
        required=True,
        help="ask the running kernel's verifier (loads, then unloads, each program)",
    )
    p.add_argument("--program", metavar="NAME", action="append", help="verify only this program")
    p.add_argument(
        "--type",
        metavar="NAME=TYPE",
        action="append",
        default=[],
        help="verify program NAME as TYPE (e.g. on_clone=tracepoint)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="also print the whole verifier log")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    from bpfkit.errors import BpfkitError, VerifierError
    from bpfkit.kernel.collection import load_collection
    from bpfkit.kernel.features import require_privileges
    from bpfkit.obj import read_object
    from bpfkit.verify import explain_rejection, render

    obj = read_object(args.object)
    types: dict[str, int | str] = {}
    for item in args.type:
        name, sep, ptype = item.partition("=")
        if not sep:
            raise BpfkitError(f"--type {item!r}: expected NAME=TYPE")
        types[name] = ptype
    mains = [p.name for p in obj.programs if not p.is_subprog and not p.section.startswith("?")]
    names = args.program or mains
    require_privileges("bpfkit verify --kernel")
    judge = f"the kernel verifier (Linux {os.uname().release})"
    rejected = 0
    for name in names:
        try:
            with load_collection(obj, programs=[name], prog_types=types, log_level=4) as c:
                log = c.programs[name].log
                expl = explain_rejection(obj, name, log, judge=judge)
        except VerifierError as e:
            rejected += 1
            if args.verbose:
                print(e.log.rstrip("\n"), file=sys.stderr)
            print(render(explain_rejection(obj, e.program or name, e.log, judge=judge)))
            continue
        if args.verbose:
            print(log.rstrip("\n"), file=sys.stderr)
        print(render(expl))
    return 1 if rejected else 0
