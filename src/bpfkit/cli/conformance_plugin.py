"""``bpfkit-conformance-plugin``: the BPF conformance suite's plugin protocol, over the VM.

The suite's runner starts the plugin with the initial memory as hex bytes in the first
argument (optional), the program as hex bytes on one line of standard input (or in
``--program``), and optionally ``--elf`` (the bytes are an ELF object: its first program
runs), ``--debug`` and ``--engine interp|jit|auto`` (the VM's engine).  The plugin prints r0 in hex on one line and exits 0, or exits 1
(printing why on standard error with ``--debug``) when the program cannot run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bpfkit.errors import BpfkitError
from bpfkit.obj.reader import read_object
from bpfkit.vm.vm import Vm


def _hex_bytes(text: str, what: str) -> bytes:
    cleaned = "".join(text.split())
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise BpfkitError(f"{what} is not hex bytes: {text[:40]!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The plugin's arguments (the suite's protocol)."""
    p = argparse.ArgumentParser(
        prog="bpfkit-conformance-plugin",
        description="Run one BPF program in bpfkit's VM for the BPF conformance suite.",
    )
    p.add_argument("memory", nargs="?", default="", help="initial memory as hex bytes")
    p.add_argument("--program", help="the program as hex bytes (default: read from stdin)")
    p.add_argument("--elf", action="store_true", help="the program bytes are an ELF object")
    p.add_argument("--debug", action="store_true", help="say why a program cannot run")
    p.add_argument(
        "--engine",
        choices=("interp", "jit", "auto"),
        default="interp",
        help="the VM's engine: the interpreter, the compiling engine (llvmlite), or auto",
    )
    return p


def run(argv: Sequence[str] | None = None) -> int:
    """Run the plugin with ``argv``; return the exit status."""
    # Options of other runtimes' plugins (or of newer runners) are ignored, not fatal.
    args, _unknown = build_parser().parse_known_args(argv)
    try:
        text = args.program if args.program is not None else sys.stdin.readline()
        code = _hex_bytes(text, "the program")
        try:
            memory = _hex_bytes(args.memory, "the memory")
        except BpfkitError:
            if not _unknown:
                raise
            memory = b""  # it was the value of an option we ignore (`--cpu_version v4`)
        if args.elf:
            obj = read_object(code)
            mains = [p for p in obj.programs if not p.is_subprog] or list(obj.programs)
            if not mains:
                raise BpfkitError("the ELF object holds no program")
            vm = Vm(mains[0], obj=obj, ctx=memory or None, prog_type="", engine=args.engine)
        else:
            vm = Vm(code, ctx=memory or None, engine=args.engine)
        r0 = vm.run().r0
    except BpfkitError as e:
        if args.debug:
            print(f"bpfkit-conformance-plugin: {e}", file=sys.stderr)
        return 1
    print(f"{r0:x}")
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(run())
