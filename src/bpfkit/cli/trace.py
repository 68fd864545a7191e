"""``bpfkit trace``: stream the kernel's trace_pipe, parsed."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bpfkit.cli.options import count, seconds
from bpfkit.cli.run import Terminated, _on_sigterm


def register(sub: Any) -> None:
    """Add the ``trace`` sub-command."""
    p = sub.add_parser(
        "trace",
        help="stream the kernel's trace_pipe (bpf_trace_printk output)",
        description=(
            "Print trace_pipe lines as task-pid [cpu] timestamp: message until Ctrl-C, "
            "--count lines or --duration seconds.  trace_pipe reads are shared: with "
            "--private, bpfkit reads its own tracefs instance that receives every "
            "bpf_trace_printk line, so other readers do not take lines from it."
        ),
    )
    p.add_argument("--count", type=count, metavar="N", help="stop after N lines")
    p.add_argument("--duration", type=seconds, metavar="SECONDS", help="stop after SECONDS")
    p.add_argument("--private", action="store_true", help="read a private tracefs instance")
    p.add_argument("--raw", action="store_true", help="print lines as the kernel writes them")
    p.set_defaults(func=trace)


def trace(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    import signal

    from bpfkit.events.trace_pipe import TraceStats, stream
    from bpfkit.kernel import tracefs

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    stats = TraceStats()
    try:
        if args.private:
            instance = tracefs.TraceInstance()
            pipe = instance.pipe
        else:
            instance = None
            pipe = tracefs.main_pipe()
        try:
            for line in stream(pipe, count=args.count, duration=args.duration, stats=stats):
                if args.raw:
                    print(
                        f"{line.task}-{line.pid} [{line.cpu:03d}] {line.flags} "
                        f"{line.timestamp:.6f}: {line.event}: {line.message}",
                        flush=True,
                    )
                else:
                    print(line.render(), flush=True)
        except KeyboardInterrupt:
            pass
        finally:
            pipe.close()
            if instance is not None:
                instance.close()
    except Terminated:
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    if stats.lost:
        print(f"bpfkit: {stats.lost} trace events lost", file=sys.stderr)
    return 0
