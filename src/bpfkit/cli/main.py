"""``bpfkit`` entry point: parse arguments, dispatch to one module per command.

Each command module under :mod:`bpfkit.cli` defines ``register(subparsers)`` which adds
its sub-parser and sets ``func`` (``args -> int``).  Errors that are
:class:`~bpfkit.errors.BpfkitError` print as one message and exit 1 (``--debug`` shows the
traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bpfkit import __version__
from bpfkit.errors import BpfkitError

# Command modules, in the order `bpfkit --help` lists them.  A module `x_y` registers the
# command `x-y`.
COMMANDS: tuple[str, ...] = (
    "build",
    "asm",
    "explain",
    "cfg",
    "dump",
    "run",
    "trace",
    "load",
    "prog",
    "map",
    "link",
    "feature",
    "test_run",
    "vm",
    "btf",
    "verify",
)


def _wanted(argv: Sequence[str]) -> tuple[str, ...]:
    """The command modules to import for ``argv``: just the one named, if any.

    Importing every command costs a few hundred milliseconds (the kernel layer, rich, ...),
    which a one-shot command like ``bpfkit dump`` should not pay.
    """
    for arg in argv:
        if arg.startswith("-"):
            continue
        name = arg.replace("-", "_")
        return (name,) if name in COMMANDS else COMMANDS
    if "--version" in argv or "-V" in argv:
        return ()  # no command module is needed to say the version
    return COMMANDS


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser (with only the command named in ``argv``, if one is)."""
    parser = argparse.ArgumentParser(
        prog="bpfkit", description="Build, read, explain, run and load eBPF programs."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", "-V", action="version", version=f"bpfkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if argv is None else _wanted(argv):
        module = importlib.import_module(f"bpfkit.cli.{name}")
        module.register(sub)
    return parser


# The attributes holding a bpftool-style command's trailing words (prog/link: ref, map: words).
TRAILING = ("ref", "words")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv``; return the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    # bpftool's commands end in words (`prog dump jited id 7 linum`) that may follow an
    # option (`... id 7 --json linum`): argparse stops the words at the option; carry on.
    words = next(
        (getattr(args, a) for a in TRAILING if isinstance(getattr(args, a, None), list)), None
    )
    if extra and words is not None and not any(w.startswith("-") for w in extra):
        words.extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BpfkitError as e:
        if args.debug:
            raise
        print(f"bpfkit: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `bpfkit dump x.o | head`: the reader went away; not an error of ours.
        sys.stdout = None
        return 0
    except OSError as e:
        # Writing the output failed (`> /dev/full`, a full disk): say so; nothing more
        # can be written there, so the rest of the buffer is dropped.
        if args.debug:
            raise
        where = f"{e.filename}" if e.filename else "writing the output"
        print(f"bpfkit: error: {where}: {e.strerror or e}", file=sys.stderr)
        sys.stdout = None
        return 1


def entry() -> None:
    """Run the CLI and exit (the console script uses :func:`bpfkit.cli.entry`)."""
    from bpfkit.cli import entry as cli_entry

    cli_entry()
