"""``bpfkit prog list``: the programs loaded in the kernel (like ``bpftool prog show``)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the ``prog`` sub-command."""
    p = sub.add_parser("prog", help="inspect programs loaded in the kernel")
    psub = p.add_subparsers(dest="prog_command", metavar="SUBCOMMAND")
    lst = psub.add_parser(
        "list",
        aliases=["show"],
        help="list loaded programs: id, type, name, tag, loaded at",
    )
    lst.add_argument("--json", action="store_true", help="JSON output")
    lst.add_argument("--name", metavar="NAME", help="only programs called NAME")
    lst.set_defaults(func=run_list)
    p.set_defaults(func=run_list, json=False, name=None)


def run_list(args: argparse.Namespace) -> int:
    """List the loaded programs."""
    from bpfkit.kernel.features import require_privileges
    from bpfkit.kernel.info import list_programs
    from bpfkit.kernel.render import render_programs

    require_privileges("bpfkit prog list")
    infos = list_programs()
    if args.name:
        infos = [i for i in infos if i.name == args.name]
    print(render_programs(infos, as_json=args.json))
    return 0
