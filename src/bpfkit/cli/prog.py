"""``bpfkit prog show|list [id N | pinned PATH | name NAME]``, ``bpfkit prog pin``: the
programs loaded in the kernel, as ``bpftool prog`` shows them (``--json``: bpftool's keys)."""

from __future__ import annotations

import argparse
from typing import Any

from bpfkit.cli.objref import USAGE
from bpfkit.errors import KernelError


def register(sub: Any) -> None:
    """Add the ``prog`` sub-command."""
    p = sub.add_parser("prog", help="inspect programs loaded in the kernel (like bpftool prog)")
    psub = p.add_subparsers(dest="prog_command", metavar="SUBCOMMAND")
    lst = psub.add_parser(
        "show",
        aliases=["list"],
        help="show loaded programs: id, type, name, tag, loaded at",
    )
    lst.add_argument("ref", nargs="*", metavar=USAGE, help="which programs (default: all)")
    lst.add_argument("--json", "-j", action="store_true", help="JSON output (bpftool's keys)")
    lst.add_argument("--name", metavar="NAME", help="only programs called NAME")
    lst.set_defaults(func=run_show)
    pin = psub.add_parser("pin", help="pin a loaded program: pin id N PATH")
    pin.add_argument("ref", nargs="+", metavar="id N | pinned PATH | name NAME  PATH")
    pin.set_defaults(func=run_pin)
    dump = psub.add_parser(
        "dump", help="the program as the kernel runs it: dump xlated id N [--llvm]"
    )
    dump.add_argument("what", choices=["xlated"], help="xlated: the verifier's translation")
    dump.add_argument("ref", nargs="+", metavar=USAGE)
    dump.add_argument("--json", "-j", action="store_true", help="JSON output (bpftool's keys)")
    dump.add_argument(
        "--llvm", action="store_true", help="LLVM's syntax instead of the kernel's (bpftool's)"
    )
    dump.set_defaults(func=run_dump)
    p.set_defaults(func=run_show, json=False, name=None, ref=[])


def run_show(args: argparse.Namespace) -> int:
    """Show the programs named (all of them by default)."""
    from bpfkit.cli.objref import open_ref, split_ref
    from bpfkit.kernel.features import require_privileges
    from bpfkit.kernel.info import list_programs, prog_info
    from bpfkit.kernel.render import render_programs
    from bpfkit.kernel.show import prog_record

    require_privileges("bpfkit prog show")
    ref, rest = split_ref(list(args.ref), "program")
    if rest:
        raise KernelError(f"unexpected {' '.join(rest)!r} after {' '.join(ref)}")
    if ref:
        fds = open_ref(ref, "program")
        try:
            records = [prog_record(fd.fd) for fd in fds]
            infos = [prog_info(fd.fd) for fd in fds]
        finally:
            for fd in fds:
                fd.close()
    else:
        infos = list_programs()
        records = []
        if args.json:
            from bpfkit.kernel.info import prog_fd_by_id

            for i in infos:
                try:
                    with prog_fd_by_id(i.id) as fd:
                        records.append(prog_record(fd.fd))
                except KernelError:
                    continue  # unloaded since listed
    if args.name:
        infos = [i for i in infos if i.name == args.name]
        records = [r for r in records if r["name"] == args.name]
    if args.json:
        import json

        out: Any = records[0] if ref and len(records) == 1 else records
        print(json.dumps(out, indent=2))
    else:
        print(render_programs(infos))
    return 0


def run_pin(args: argparse.Namespace) -> int:
    """Pin the program named at PATH."""
    from bpfkit.cli.objref import pin_ref
    from bpfkit.kernel.features import require_privileges

    require_privileges("bpfkit prog pin")
    path = pin_ref(list(args.ref), "program")
    print(f"pinned at {path}")
    return 0


def run_dump(args: argparse.Namespace) -> int:
    """The translated instructions of one program."""
    from bpfkit.cli.objref import open_one, split_ref
    from bpfkit.kernel.features import require_privileges
    from bpfkit.kernel.info import prog_code
    from bpfkit.kernel.show import xlated

    require_privileges("bpfkit prog dump")
    ref, rest = split_ref(list(args.ref), "program")
    if rest:
        raise KernelError(f"unexpected {' '.join(rest)!r} after {' '.join(ref)}")
    with open_one(ref, "program") as fd:
        code = prog_code(fd.fd)
    if not code:
        raise KernelError("the kernel shows no translated instructions for this program")
    lines = xlated(code, llvm=args.llvm)
    if args.json:
        import json

        print(json.dumps([{"disasm": text} for _, text in lines], indent=2))
    else:
        for slot, text in lines:
            print(f"{slot:4d}: {text}")
    return 0
