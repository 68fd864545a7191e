"""``bpfkit load OBJ [--pin DIR]``: load every map and program of an object, print them."""

from __future__ import annotations

import sys

from bpfkit.errors import VerifierError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: `bpfkit load` of a recorded load is cheap
if TYPE_CHECKING:
    import argparse
    from typing import Any

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
            "DIR/maps/NAME in bpffs (mounted at /sys/fs/bpf if needed).  A load without "
            "--pin and -v is recorded in bpfkit's cache directory: the next load of the same "
            "bytes with the same options on the same kernel boot replays its bpf() calls "
            "(BPFKIT_NO_CACHE=1: never)."
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
    import re

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


def _options(programs: list[str] | None, types: list[str]) -> tuple[object, ...]:
    """The options a recorded load depends on (bpfkit.kernel.replay.plan_key)."""
    return (tuple(programs or ()), tuple(types))


def replayed(argv: list[str]) -> int | None:
    """``bpfkit load OBJ [--program NAME] [--type NAME=TYPE]`` by replaying the load the
    whole road recorded for the same object, options, bpfkit and kernel
    (:mod:`bpfkit.kernel.replay`); None when there is none or the kernel refused it (then
    the whole road runs, and says why).  Imports little: this is the cheap road."""
    obj: str | None = None
    programs: list[str] = []
    types: list[str] = []
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        name, eq, value = arg.partition("=")
        if name in ("--program", "--type"):
            if not eq:
                if not rest:
                    return None
                value = rest.pop(0)
            (programs if name == "--program" else types).append(value)
        elif arg.startswith("-") or obj is not None:
            return None  # --pin, -v, --help, ...: the whole road
        else:
            obj = arg
    if obj is None:
        return None
    from bpfkit.kernel import replay
    from bpfkit.kernel.loaded import format_loaded

    try:
        with open(obj, "rb") as f:
            data = f.read()
    except OSError:
        return None
    plan = replay.lookup(replay.plan_key(obj, _options(programs, types)), data)
    if plan is None:
        return None
    try:
        fds = replay.replay(plan)
    except replay.ReplayError:
        return None
    try:
        progs, maps = replay.rows(plan, fds)
    except replay.ReplayError:
        replay.close(fds)
        return None
    for note in plan["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(format_loaded(obj, progs, maps))
    replay.close(fds)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    from contextlib import nullcontext

    from bpfkit.errors import BpfkitError, ObjectError
    from bpfkit.kernel import pins, replay
    from bpfkit.kernel.collection import load_collection
    from bpfkit.kernel.features import require_privileges
    from bpfkit.kernel.loaded import format_loaded
    from bpfkit.kernel.render import collection_rows
    from bpfkit.obj import read_object

    try:
        with open(args.object, "rb") as f:
            data = f.read()  # read once: a recorded load is kept for exactly these bytes
    except OSError as e:
        raise ObjectError(f"{args.object}: cannot read: {e.strerror or e}") from e
    obj = read_object(data, name=args.object)
    require_privileges("bpfkit load")
    types: dict[str, int | str] = {}
    for item in args.type:
        name, sep, ptype = item.partition("=")
        if not sep:
            raise BpfkitError(f"--type {item!r}: expected NAME=TYPE")
        types[name] = ptype
    record = not args.pin and not args.verbose
    try:
        with replay.Recorder.watching() if record else nullcontext() as rec:
            coll = load_collection(obj, programs=args.program, prog_types=types)
    except VerifierError as e:
        print_verifier_log(e, args.verbose, obj)
        raise
    with coll:
        for note in coll.notes:
            print(f"note: {note}", file=sys.stderr)
        progs, maps = collection_rows(coll)
        print(format_loaded(obj.path, progs, maps))
        if rec is not None and rec.why is None:
            _keep(rec, coll, progs, maps, data, _options(args.program, args.type))
        if args.pin:
            pins.bpffs_dir(args.pin)
            paths = coll.pin(args.pin)
            print(f"pinned {len(paths)} objects under {args.pin}")
    return 0


def _keep(
    rec: Any, coll: Any, progs: list[Any], maps: list[Any], data: bytes, options: tuple[object, ...]
) -> None:
    """Store what ``rec`` recorded of loading ``coll`` from ``data``, for the next
    ``bpfkit load`` of the same object with the same options (:func:`replayed`)."""
    from bpfkit.kernel import replay

    plan = rec.plan(
        progs=[(row[1], coll.programs[row[1]].fd, row[2]) for row in progs],
        maps=[(row[1], coll.maps[row[1]].fd, row[2]) for row in maps],
        notes=list(coll.notes),
    )
    replay.store(replay.plan_key(coll.spec.path, options), data, plan)
