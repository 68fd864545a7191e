"""``bpfkit verify OBJ``: bpfkit's own verifier (no root, no bpf()); ``--kernel``: load
each program with the detailed verifier log.  Either way every rejection is explained
(failing instruction at its source line, path, origin of the offending value, class of the
message, what to change)."""

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
            "Verify each program of OBJ with bpfkit's own verifier (pure Python: no root, no "
            "bpf(); the rules of the Linux version it names).  With --kernel: load each "
            "program of OBJ into the running kernel with the "
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
        help="ask the running kernel's verifier (loads, then unloads, each program); without "
        "it bpfkit's own verifier decides, with no root and no bpf()",
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
    if not args.kernel:
        return _static(obj, names, types, args.verbose)
    from bpfkit.kernel.collection import load_collection
    from bpfkit.kernel.features import require_privileges

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


def _static(obj: Any, names: list[str], types: dict[str, int | str], verbose: bool) -> int:
    """bpfkit's own verifier on each program; exit status 1 if any is rejected."""
    from bpfkit.verify import explain_log, program_view, render
    from bpfkit.verify.rules import KERNEL_RULES
    from bpfkit.verify.static import attach_type_name, prog_type_name, verify_program

    judge = f"bpfkit verify (Linux {KERNEL_RULES} rules, privileged loader)"
    rejected = 0
    for name in names:
        t = types.get(name)
        if isinstance(t, int):
            from bpfkit.uapi import ProgType

            t = ProgType(t).name.lower()
        ptype = str(t).lower().removeprefix("bpf_prog_type_") if t else prog_type_name(obj, name)
        view = program_view(obj, name)
        res = verify_program(view, ptype, attach_type="" if t else attach_type_name(obj, name))
        expl = explain_log(res.log, view, program=name, judge=judge)
        if verbose and not res.accepted:
            for step in res.log.steps:
                print(f"{step.idx}: {step.text}  ; {step.state}", file=sys.stderr)
        rejected += not res.accepted
        print(render(expl))
    return 1 if rejected else 0
