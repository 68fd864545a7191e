"""``bpfkit run --vm``: run an object's program in the userspace VM instead of the kernel.

``bpfkit.cli.run`` (the kernel runner) calls :func:`add_vm_arguments` on its parser and
:func:`run_vm` when ``--vm`` is given; ``bpfkit vm`` (:mod:`bpfkit.cli.vm`) is the same
without the kernel options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bpfkit.errors import BpfkitError
from bpfkit.obj.spec import ObjectSpec, ProgramSpec


def add_vm_arguments(parser: argparse.ArgumentParser, *, with_flag: bool = True) -> None:
    """Add ``--vm`` (unless ``with_flag`` is False), ``--ctx``, ``--packet`` and ``--repeat``."""
    if with_flag:
        parser.add_argument(
            "--vm", action="store_true", help="run in bpfkit's userspace VM, not the kernel"
        )
    if not with_flag:  # `bpfkit run` has its own --type (for both engines)
        from bpfkit.cli.options import add_type_argument

        add_type_argument(parser)
    parser.add_argument("--ctx", metavar="HEXFILE", help="(VM) the context: a file of hex bytes")
    parser.add_argument("--packet", metavar="FILE", help="(VM) packet data: a file of raw bytes")
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="(VM) run N times (maps persist)"
    )


def _read(path: str, what: str, hex_text: bool) -> bytes:
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as e:
        raise BpfkitError(f"cannot read {what} {path}: {e.strerror}") from None
    if not hex_text:
        return raw
    text = raw.decode("ascii", "replace")
    cleaned = "".join(line.split("#", 1)[0] for line in text.splitlines())
    cleaned = "".join(cleaned.replace("0x", " ").split())
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise BpfkitError(f"{what} {path} is not hex bytes") from None


def _programs(obj: ObjectSpec, name: str | None) -> list[ProgramSpec]:
    if name:
        for p in obj.programs:
            if p.name == name or p.section == name:
                return [p]
        return [obj.program(name)]  # raises ObjectError listing the programs
    mains = [p for p in obj.programs if not p.is_subprog]
    if not mains:
        raise BpfkitError(f"{obj.path}: no program to run (only subprograms in .text)")
    return mains


def run_vm(args: argparse.Namespace) -> int:
    """Run the program(s) of ``args.object`` in the VM; print output, retval (and maps)."""
    # Imported here: `bpfkit run` (the kernel runner) adds the VM options through this
    # module and should not pay for importing the VM.
    from bpfkit.cli.options import typed_object
    from bpfkit.obj.reader import read_object
    from bpfkit.vm import Vm
    from bpfkit.vm.render import render_result

    source = typed_object(args.object, getattr(args, "type", None))
    obj = source if not isinstance(source, str) else read_object(source)
    ctx = _read(args.ctx, "context", True) if getattr(args, "ctx", None) else None
    packet = _read(args.packet, "packet", False) if getattr(args, "packet", None) else None
    repeat = getattr(args, "repeat", None)
    repeat = 1 if repeat is None else repeat  # not `or 1`: --repeat 0 is an error
    if repeat < 1:
        raise BpfkitError(f"--repeat must be at least 1, not {repeat}")
    budget = getattr(args, "budget", None) or 1_000_000
    memory = getattr(args, "memory", None)
    memory = 256 if memory is None else memory
    if memory < 0:
        raise BpfkitError(f"--memory must be at least 0 MiB, not {memory}")
    programs = _programs(obj, getattr(args, "program", None))
    for prog in programs:
        if ctx is None and packet is None:
            _note_missing_context(prog)
        vm = Vm(prog, obj=obj, ctx=ctx, packet=packet, budget=budget, memory=memory << 20)
        outputs: list[str] = []
        result = None
        for _ in range(repeat):
            result = vm.run()
            outputs.extend(result.output)
        assert result is not None
        result.output = outputs
        label = prog.name if len(programs) > 1 or repeat > 1 else ""
        show_maps = bool(getattr(args, "maps", False))
        print(render_result(result, program=label, maps=show_maps, obj=obj))
    return 0


def _note_missing_context(prog: ProgramSpec) -> None:
    """Say on stderr what context a tracing program reads when none was given: it runs on
    zero bytes, which is rarely what the user meant."""
    from bpfkit.explain.sections import explain_program_section
    from bpfkit.uapi import ProgType
    from bpfkit.vm.vm import DEFAULT_CTX_SIZE

    if prog.prog_type in (
        0,
        ProgType.XDP,
        ProgType.SOCKET_FILTER,
        ProgType.SCHED_CLS,
        ProgType.SCHED_ACT,
        ProgType.CGROUP_SKB,
    ):
        return
    info = explain_program_section(prog)
    print(
        f"bpfkit vm: note: {prog.name} reads {info.context} as its context; none was given, so it "
        f"runs on {DEFAULT_CTX_SIZE} zero bytes (--ctx FILE gives the bytes: raw, or hex text)",
        file=sys.stderr,
    )
