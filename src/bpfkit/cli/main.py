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

from bpfkit.errors import BpfkitError

# Command modules, in the order `bpfkit --help` lists them.
COMMANDS: tuple[str, ...] = ("build", "asm", "explain", "dump", "run", "trace", "load", "prog", "test_run", "vm", "btf")


def build_parser() -> argparse.ArgumentParser:
    """The whole argument parser."""
    parser = argparse.ArgumentParser(
        prog="bpfkit", description="Build, read, explain, run and load eBPF programs."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"bpfkit.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv``; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
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


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
