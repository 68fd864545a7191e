"""``bpfkit feature probe [kernel]``: what this kernel supports (program types, map types,
the helpers of each program type), found by asking it, listed as ``bpftool feature probe``
lists it (``--json``: bpftool's keys)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the ``feature`` sub-command."""
    p = sub.add_parser("feature", help="what this kernel supports (like bpftool feature)")
    fsub = p.add_subparsers(dest="feature_command", metavar="SUBCOMMAND")
    pr = fsub.add_parser(
        "probe",
        help="probe the system configuration, program types, map types, helpers and "
        "instruction set extensions: probe [kernel] [full]",
    )
    pr.add_argument(
        "words",
        nargs="*",
        metavar="[kernel] [full]",
        help="kernel: this kernel (the default); full: also try the helpers that write to "
        "the kernel log (bpf_trace_printk, bpf_trace_vprintk, bpf_probe_write_user)",
    )
    pr.add_argument("--json", "-j", action="store_true", help="JSON output (bpftool's keys)")
    pr.add_argument(
        "--no-helpers", action="store_true", help="skip the helpers of each program type"
    )
    pr.set_defaults(func=run_probe)
    p.set_defaults(func=run_probe, json=False, no_helpers=False, words=[])


def run_probe(args: argparse.Namespace) -> int:
    """Probe and print."""
    from bpfkit.errors import KernelError
    from bpfkit.kernel.features import require_privileges
    from bpfkit.kernel.probe import probe, probe_text

    words = list(args.words)
    if words[:1] == ["kernel"]:
        words.pop(0)
    full = words[:1] == ["full"]
    if full:
        words.pop(0)
    if words:
        raise KernelError(
            f"unexpected {words[0]!r}; usage: feature probe [kernel] [full] "
            "(bpftool's dev, unprivileged and macros are not supported)"
        )
    require_privileges("bpfkit feature probe")
    result = probe(helpers=not args.no_helpers, full=full)
    if args.json:
        import json

        print(json.dumps(result, indent=2))
    else:
        print(probe_text(result))
    return 0
