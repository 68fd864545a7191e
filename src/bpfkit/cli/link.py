"""``bpfkit link list|show [id N | pinned PATH]``, ``link detach``, ``link pin``: BPF links
in the kernel, as ``bpftool link`` names and shows them (``--json``: bpftool's keys)."""

from __future__ import annotations

import argparse
from typing import Any

from bpfkit.errors import KernelError

_REF = "id N | pinned PATH"


def register(sub: Any) -> None:
    """Add the ``link`` sub-command."""
    p = sub.add_parser("link", help="inspect BPF links in the kernel (like bpftool link)")
    lsub = p.add_subparsers(dest="link_command", metavar="SUBCOMMAND")

    def add(name: str, helptext: str, metavar: str, func: Any, **kw: Any) -> None:
        c = lsub.add_parser(name, help=helptext, **kw)
        c.add_argument("words", nargs="*", metavar=metavar)
        c.add_argument("--json", "-j", action="store_true", help="JSON output (bpftool's keys)")
        c.set_defaults(func=func)

    add("show", "show links: id, type, program", f"[{_REF}]", run_show, aliases=["list"])
    add("detach", "detach a link from its hook: detach id N", _REF, run_detach)
    add("pin", "pin a link: pin id N PATH", f"{_REF} PATH", run_pin)
    p.set_defaults(func=run_show, words=[], json=False)


def _privileged(what: str) -> None:
    from bpfkit.kernel.features import require_privileges

    require_privileges(f"bpfkit link {what}")


def run_show(args: argparse.Namespace) -> int:
    """Show the links named (all of them by default)."""
    from bpfkit.cli.objref import print_records, show_records
    from bpfkit.kernel.show import link_record, link_text

    _privileged("show")
    records, named = show_records(list(args.words), "link", link_record)
    print_records(records, named, args.json, link_text)
    return 0


def run_detach(args: argparse.Namespace) -> int:
    """Detach the link from its hook."""
    from bpfkit.cli.objref import open_one, split_ref
    from bpfkit.kernel.info import link_detach

    _privileged("detach")
    ref, rest = split_ref(list(args.words), "link")
    if rest or not ref:
        raise KernelError(f"usage: bpfkit link detach {_REF}")
    with open_one(ref, "link") as fd:
        link_detach(fd.fd)
    return 0


def run_pin(args: argparse.Namespace) -> int:
    """Pin the link at PATH."""
    from bpfkit.cli.objref import pin_ref

    _privileged("pin")
    print(f"pinned at {pin_ref(list(args.words), 'link')}")
    return 0
