"""``bpfkit vm OBJ``: run an object's programs in the userspace VM (``bpfkit run --vm``)."""

from __future__ import annotations

import argparse
from typing import Any

from bpfkit.cli.run_vm import add_vm_arguments, run_vm


def register(sub: Any) -> None:
    """Add the ``vm`` sub-command."""
    p = sub.add_parser(
        "vm",
        help="run an object's program in the userspace VM",
        description=(
            "Run the programs of OBJ (or --program NAME) in bpfkit's VM: print what they "
            "print with bpf_trace_printk, their return value and instruction count, the "
            "packet after the run and, with --maps, the maps."
        ),
    )
    p.add_argument("object", metavar="OBJ", help="BPF ELF object (.o) or Python program (.py)")
    p.add_argument("--program", metavar="NAME", help="run only this program (name or section)")
    p.add_argument("--maps", action="store_true", help="print the maps after the runs")
    p.add_argument(
        "--budget", type=int, default=1_000_000, metavar="N", help="instruction budget per run"
    )
    p.add_argument(
        "--memory",
        type=int,
        default=256,
        metavar="MIB",
        help="memory budget in MiB for maps, records and samples (default 256)",
    )
    add_vm_arguments(p, with_flag=False)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    return run_vm(args)
