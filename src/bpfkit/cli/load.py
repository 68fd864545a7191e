"""``bpfkit load OBJ [--pin DIR]``: load every map and program of an object, print them."""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING, Any

from bpfkit.errors import VerifierError

if TYPE_CHECKING:
    from bpfkit.obj.spec import ObjectSpec

LOG_TAIL = 20


def register(sub: Any) -> None:
    """Add the ``load`` sub-command."""
    p = sub.add_parser(
        "load",
        help="load an object's maps and programs into the kernel without attaching",
        description=(
            "Load every map and program of OBJ (like bpftool prog loadall) and print each "
            "one's kernel id, name, type and size.  Without --pin they are unloaded when the "
            "command exits; with --pin DIR programs are pinned as DIR/NAME and maps as "
            "DIR/maps/NAME in bpffs (mounted at /sys/fs/bpf if needed)."
        ),
    )
    p.add_argument("object", metavar="OBJ", help="BPF ELF object (.o)")
    p.add_argument("--pin", metavar="DIR", help="keep them pinned in this bpffs directory")
    p.add_argument("--program", metavar="NAME", action="append", help="load only this program")
    p.add_argument(
        "--type",
        metavar="NAME=TYPE",
        action="append",
        default=[],
        help="load program NAME as TYPE (e.g. on_clone=tracepoint)",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the whole verifier log (before its explanation)",
    )
    p.set_defaults(func=run)


def print_verifier_log(e: VerifierError, verbose: bool, obj: ObjectSpec | None = None) -> None:
    """On stderr, before the error line: the whole verifier log if ``verbose``, then the
    explanation of the rejection (bpfkit.verify); the log's tail if it cannot be explained."""
    import os

    from bpfkit.kernel.render import log_tail
    from bpfkit.verify import explain_rejection, render

    if not e.log:
        return
    if verbose:
        print(e.log.rstrip("\n"), file=sys.stderr)
    judge = f"the kernel verifier (Linux {os.uname().release})"
    # The loader says which program in its message: "loading program 'NAME': ...".
    m = re.search(r"loading program '([^']*)'", str(e))
    name = e.program or (m.group(1) if m else "")
    expl = explain_rejection(obj, name, e.log, judge=judge)
    if expl.accepted:
        if not verbose:
            print(log_tail(e.log, LOG_TAIL), file=sys.stderr)
        return
    print(render(expl), file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    from bpfkit.errors import BpfkitError
    from bpfkit.kernel import pins
    from bpfkit.kernel.collection import load_collection
    from bpfkit.kernel.features import require_privileges
    from bpfkit.kernel.render import render_collection
    from bpfkit.obj import read_object

    obj = read_object(args.object)
    require_privileges("bpfkit load")
    types: dict[str, int | str] = {}
    for item in args.type:
        name, sep, ptype = item.partition("=")
        if not sep:
            raise BpfkitError(f"--type {item!r}: expected NAME=TYPE")
        types[name] = ptype
    try:
        coll = load_collection(obj, programs=args.program, prog_types=types)
    except VerifierError as e:
        print_verifier_log(e, args.verbose, obj)
        raise
    with coll:
        for note in coll.notes:
            print(f"note: {note}", file=sys.stderr)
        print(render_collection(coll))
        if args.pin:
            pins.bpffs_dir(args.pin)
            paths = coll.pin(args.pin)
            print(f"pinned {len(paths)} objects under {args.pin}")
    return 0
