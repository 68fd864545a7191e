"""``bpfkit test-run OBJ --program NAME --packet FILE``: run a program once in the kernel
(BPF_PROG_TEST_RUN) and print its return value, duration and output packet."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from typing import Any

from bpfkit.cli.options import add_type_argument
from bpfkit.errors import BpfkitError, VerifierError
from bpfkit.uapi import MapType, ProgType


def register(sub: Any) -> None:
    """Add the ``test-run`` sub-command."""
    p = sub.add_parser(
        "test-run",
        help="run a program on a packet in the kernel (BPF_PROG_TEST_RUN)",
        description=(
            "Load OBJ, run program NAME on the bytes of FILE with BPF_PROG_TEST_RUN and "
            "print the return value, the time per run and the output packet.  Socket "
            "filter, tc, XDP, cgroup_skb, flow dissector and similar packet programs can "
            "be test-run; tracing programs cannot."
        ),
    )
    p.add_argument("object", metavar="OBJ", help="BPF ELF object (.o)")
    p.add_argument("--program", metavar="NAME", help="program to run (default: the only one)")
    p.add_argument("--packet", metavar="FILE", help="input packet (raw bytes; - for stdin)")
    p.add_argument("--hex", action="store_true", help="FILE holds hex text, not raw bytes")
    p.add_argument("--repeat", type=int, default=1, metavar="N", help="run N times (timing)")
    p.add_argument("--maps", action="store_true", help="print the object's maps after the run")
    add_type_argument(p)
    p.add_argument("-v", "--verbose", action="store_true", help="show the whole verifier log")
    p.set_defaults(func=run)


def _packet(args: argparse.Namespace) -> bytes:
    if not args.packet:
        return b""
    try:
        if args.packet == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(args.packet, "rb") as f:
                data = f.read()
    except OSError as e:
        raise BpfkitError(f"{args.packet}: cannot read the packet: {e.strerror or e}") from e
    if args.hex:
        try:
            data = bytes.fromhex(data.decode("ascii", errors="strict").replace("\n", " "))
        except ValueError as e:
            raise BpfkitError(f"{args.packet}: not hex text ({e})") from e
    return data


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    from bpfkit.cli.load import print_verifier_log
    from bpfkit.kernel.collection import load_collection
    from bpfkit.kernel.features import require_privileges
    from bpfkit.kernel.render import render_maps, render_test_run
    from bpfkit.obj import read_object

    if args.repeat < 1:
        raise BpfkitError(f"--repeat {args.repeat}: must be at least 1")
    obj = read_object(args.object)
    if args.type is not None:
        from bpfkit.obj.sections import retype

        obj = retype(obj, args.type)
    data = _packet(args)
    mains = [p.name for p in obj.programs if not p.is_subprog]
    name = args.program
    if name is None:
        if len(mains) != 1:
            raise BpfkitError(
                f"{args.object} has {len(mains)} programs ({', '.join(mains) or 'none'}): "
                "choose one with --program"
            )
        name = mains[0]
    _check_packet(obj.program(name), data, args.packet)
    require_privileges("bpfkit test-run")
    try:
        coll = load_collection(obj, programs=[name])
    except VerifierError as e:
        print_verifier_log(e, args.verbose, obj)
        raise
    with coll, _printk_reader(obj) as trace, ExitStack() as readers:
        # With --maps, a perf event array's samples are caught as the VM keeps them: a
        # reader is open while the program runs.
        perf = {
            n: readers.enter_context(m.open_records())
            for n, m in (coll.maps.items() if args.maps else ())
            if m.type == MapType.PERF_EVENT_ARRAY
        }
        result = coll.programs[name].test_run(data, repeat=args.repeat)
        samples = {n: r.read() for n, r in perf.items()}
        for message in trace.messages():
            print(message)
        prog_type = coll.programs[name].type
        print(render_test_run(result, program=name, repeat=args.repeat, prog_type=prog_type))
        if args.maps and coll.maps:
            from bpfkit.btf.mapview import object_map_types

            print(render_maps(coll.maps, types=object_map_types(obj), samples=samples))
    return 0


# Program types BPF_PROG_TEST_RUN runs on a packet (it refuses one shorter than ETH_HLEN).
_PACKET_TYPES = {
    ProgType.XDP,
    ProgType.SOCKET_FILTER,
    ProgType.SCHED_CLS,
    ProgType.SCHED_ACT,
    ProgType.CGROUP_SKB,
    ProgType.LWT_IN,
    ProgType.LWT_OUT,
    ProgType.LWT_XMIT,
    ProgType.LWT_SEG6LOCAL,
}
_ETH_HLEN = 14


def _check_packet(prog: Any, data: bytes, given: str | None) -> None:
    """Say what the kernel would refuse before loading: a packet program without a packet
    (or with one shorter than an Ethernet header) gets EINVAL from BPF_PROG_TEST_RUN."""
    if prog.prog_type not in _PACKET_TYPES:
        return
    kind = ProgType(prog.prog_type).name.lower()
    if not given:
        raise BpfkitError(
            f"program {prog.name!r} ({kind}) runs on a packet: give one with --packet FILE "
            "(raw bytes, or hex text with --hex; at least 14 bytes, an Ethernet header first)"
        )
    if len(data) < _ETH_HLEN:
        raise BpfkitError(
            f"{given}: the packet has {len(data)} bytes; BPF_PROG_TEST_RUN refuses {kind} "
            f"packets shorter than an Ethernet header ({_ETH_HLEN} bytes) with EINVAL"
        )


_PRINTK_HELPERS = (6, 177)  # bpf_trace_printk, bpf_trace_vprintk


class _Printk:
    """The ``bpf_printk`` lines this process's test runs print, read from a private tracefs
    instance (the VM prints them too: ``test-run`` and ``vm`` show the same)."""

    def __init__(self, wanted: bool) -> None:
        self.instance: Any = None
        if wanted:
            from bpfkit.kernel.tracefs import TraceInstance

            self.instance = TraceInstance()

    def messages(self) -> list[str]:
        if self.instance is None:
            return []
        import threading

        from bpfkit.events.trace_pipe import TraceLine, parse_line

        me = threading.get_native_id()  # BPF_PROG_TEST_RUN runs in the caller's thread
        out: list[str] = []
        for _ in range(20):  # the event reaches the instance's buffer at once; read it all
            got = list(self.instance.pipe.lines(0.05))
            for raw in got:
                line = parse_line(raw)
                if isinstance(line, TraceLine) and line.pid == me:
                    out.append(line.message.rstrip("\n"))
            if not got:
                break
        return out

    def __enter__(self) -> _Printk:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.instance is not None:
            self.instance.close()


def _printk_reader(obj: Any) -> _Printk:
    calls = any(
        i.opcode == 0x85 and i.src == 0 and i.imm in _PRINTK_HELPERS
        for p in obj.programs
        for i in p.insns
    )
    return _Printk(calls)
