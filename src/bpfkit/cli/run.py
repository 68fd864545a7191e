"""``bpfkit run OBJ``: load, attach, print the trace lines the programs produce, clean up."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from types import FrameType
from typing import Any

from bpfkit.cli.options import add_type_argument, count, hertz, seconds, typed_object
from bpfkit.errors import VerifierError


class Terminated(BaseException):
    """Raised by the SIGTERM handler so ``with`` blocks detach and close on the way out."""


DEFAULT_PERF_FREQ = 99  # bpfkit.kernel.attach.DEFAULT_PERF_FREQ (not imported for --help)
QUIET_HINT_AFTER = 3.0  # seconds without output before the hint below


def _quiet_hint(names: str) -> None:
    print(
        f"bpfkit: no output yet: the programs run when their attach points fire ({names}); "
        "make that happen (for a syscall: any process making it, e.g. starting a program "
        "makes clone/execve) or wait; Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _run_vm_module() -> Any:
    try:
        return importlib.import_module("bpfkit.cli.run_vm")
    except ImportError:
        return None


def register(sub: Any) -> None:
    """Add the ``run`` sub-command."""
    p = sub.add_parser(
        "run",
        help="load an object, attach its programs and print what they trace",
        description=(
            "Load OBJ into the kernel, attach its programs (where their section names say, "
            "or --attach), print the bpf_trace_printk lines they produce until Ctrl-C, "
            "--count lines or --duration seconds, then detach everything."
        ),
    )
    p.add_argument("object", metavar="OBJ", help="BPF ELF object (.o) or Python program (.py)")
    p.add_argument("--program", metavar="NAME", help="run only this program (name or section)")
    p.add_argument(
        "--attach",
        metavar="SPEC",
        help="attach point: kprobe:FUNC, kretprobe:FUNC, tracepoint:CATEGORY:NAME, "
        "raw_tracepoint:NAME, uprobe:PATH:SYMBOL, uretprobe:PATH:SYMBOL, socket[:IFNAME], "
        "xdp:IFNAME[:generic|native], tcx:IFNAME:ingress|egress, cgroup:PATH, perf_event[:HZ]",
    )
    p.add_argument(
        "--ifname",
        "--dev",
        metavar="IFNAME",
        default="",
        help="network interface for XDP, tc/tcx and socket filter programs",
    )
    p.add_argument(
        "--xdp-mode",
        choices=("generic", "native"),
        default="",
        help="XDP in the generic (skb) path or the driver (native); default: the kernel's choice",
    )
    p.add_argument(
        "--cgroup",
        metavar="PATH",
        default="",
        help="cgroup v2 directory for cgroup programs (cgroup_skb/*, cgroup/sock_create, "
        "cgroup/connect4, cgroup/sysctl, cgroup/getsockopt, cgroup/dev, ...)",
    )
    p.add_argument(
        "--freq",
        type=hertz,
        default=DEFAULT_PERF_FREQ,
        metavar="HZ",
        help=f"sampling frequency of perf_event programs (CPU clock; default {DEFAULT_PERF_FREQ})",
    )
    p.add_argument(
        "--count",
        type=count,
        metavar="N",
        help="stop after N lines or buffer records (0: load, attach, exit)",
    )
    p.add_argument("--duration", type=seconds, metavar="SECONDS", help="stop after SECONDS")
    p.add_argument("--maps", action="store_true", help="print the object's maps at the end")
    p.add_argument(
        "--all-lines",
        action="store_true",
        help="show every bpf_trace_printk line, not only this run's own (its programs' "
        "lines carry a [bpfkit PID] tag, stripped here, so runs of one object at once "
        "each show their own lines)",
    )
    add_type_argument(p)
    p.add_argument("-v", "--verbose", action="store_true", help="show the whole verifier log")
    vm = _run_vm_module()
    if vm is not None and hasattr(vm, "add_vm_arguments"):
        vm.add_vm_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    if getattr(args, "vm", False):
        vm = _run_vm_module()
        if vm is None:
            print("bpfkit: error: --vm is not available in this build", file=sys.stderr)
            return 1
        return int(vm.run_vm(args))
    from bpfkit.kernel.attach import Where
    from bpfkit.kernel.session import Session, render_maps

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        try:
            # --count 0 reads no lines: skip the trace instance (load, attach, detach).
            trace = args.count is None or args.count > 0
            session = Session(
                typed_object(args.object, args.type),
                program=args.program,
                attach=args.attach,
                trace=trace,
                buffers=trace,
                all_lines=args.all_lines,
                where=Where(args.ifname, args.xdp_mode, args.cgroup, args.freq),
            )
        except VerifierError as e:
            from bpfkit.cli.load import print_verifier_log
            from bpfkit.obj import read_object

            print_verifier_log(e, args.verbose, read_object(args.object))
            raise
        with session:
            try:
                # Ctrl-C from here on ends the stream; maps are still printed, all detached.
                for note in session.notes:
                    print(f"bpfkit: {note}", file=sys.stderr)
                names = ", ".join(f"{p.program.name} -> {p.plan.point}" for p in session.planned)
                if args.verbose or args.count is None:
                    print(f"bpfkit: attached {names}", file=sys.stderr, flush=True)
                if trace and session.formats == [] and not session.readers:
                    print(
                        "bpfkit: these programs print nothing (no bpf_trace_printk, no ring "
                        "or perf buffer); --maps shows their maps at the end",
                        file=sys.stderr,
                        flush=True,
                    )
                # On a quiet machine a probe may not fire for a long time: say so once.
                hint = threading.Timer(QUIET_HINT_AFTER, _quiet_hint, (names,))
                hint.daemon = True
                try:
                    if trace:
                        if args.count != 0:
                            hint.start()
                        for event in session.events(count=args.count, duration=args.duration):
                            hint.cancel()
                            print(event.render(), flush=True)
                finally:
                    hint.cancel()
            except KeyboardInterrupt:
                pass
            if session.stats.lost:
                print(f"bpfkit: {session.stats.lost} trace events lost", file=sys.stderr)
            if args.verbose and session.stats.skipped:
                print(
                    f"bpfkit: {session.stats.skipped} lines of other programs not shown "
                    "(--all-lines shows them)",
                    file=sys.stderr,
                )
            if args.maps:
                print(render_maps(session.maps, obj=session.spec))
    except Terminated:
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
