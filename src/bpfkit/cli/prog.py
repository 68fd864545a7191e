"""``bpfkit prog show|list [id N | pinned PATH | name NAME]``, ``bpfkit prog pin``,
``prog dump xlated|jited``, ``prog run``: the programs loaded in the kernel, as ``bpftool
prog`` shows them (``--json``: bpftool's keys)."""

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
        "dump",
        help="the program as the kernel runs it: dump xlated|jited id N "
        "[opcodes] [linum] [visual] [file FILE]",
    )
    dump.add_argument(
        "what",
        choices=["xlated", "jited"],
        help="xlated: the verifier's translation, in the kernel's syntax as bpftool prints it "
        "(--llvm: LLVM's); jited: the x86-64 machine code the JIT made (disassembled by "
        "LLVM as bpftool does). Both show each function's prototype and the source lines "
        "from the program's BTF; opcodes: each instruction's bytes too; linum: source "
        "file, line and column; visual (xlated): the control-flow graph as DOT; "
        "file FILE: the raw code into FILE",
    )
    dump.add_argument("ref", nargs="+", metavar=USAGE)
    dump.add_argument("--json", "-j", action="store_true", help="JSON output (bpftool's keys)")
    dump.add_argument(
        "--llvm", action="store_true", help="LLVM's syntax instead of the kernel's (bpftool's)"
    )
    dump.set_defaults(func=run_dump)
    run = psub.add_parser(
        "run",
        help="BPF_PROG_TEST_RUN on a loaded program: "
        "run PROG data_in FILE [data_out FILE] [ctx_in FILE] [repeat N]",
    )
    run.add_argument("ref", nargs="+", metavar=f"{USAGE} data_in FILE ...")
    run.add_argument("--json", "-j", action="store_true", help="JSON output (bpftool's keys)")
    run.set_defaults(func=run_run)
    p.set_defaults(func=run_show, json=False, name=None, ref=[])


def run_show(args: argparse.Namespace) -> int:
    """Show the programs named (all of them by default)."""
    from bpfkit.cli.objref import open_ref, split_ref
    from bpfkit.kernel.features import require_privileges

    require_privileges("bpfkit prog show")
    if args.json:
        from bpfkit.cli.objref import print_records, show_records
        from bpfkit.kernel.show import prog_record

        records, named = show_records(list(args.ref), "program", prog_record)
        if args.name:
            records = [r for r in records if r.get("name") == args.name]
        print_records(records, named, True, str)
        return 0
    from bpfkit.kernel.info import list_programs, prog_info
    from bpfkit.kernel.render import render_programs

    ref, rest = split_ref(list(args.ref), "program")
    if rest:
        raise KernelError(f"unexpected {' '.join(rest)!r} after {' '.join(ref)}")
    if ref:
        fds = open_ref(ref, "program")
        try:
            infos = [prog_info(fd.fd) for fd in fds]
        finally:
            for fd in fds:
                fd.close()
    else:
        infos = list_programs()
    if args.name:
        infos = [i for i in infos if i.name == args.name]
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
    """``prog dump xlated|jited PROG [opcodes] [linum] [visual] [file FILE]``."""
    from bpfkit.cli.objref import open_ref, split_ref
    from bpfkit.kernel.features import require_privileges
    from bpfkit.kernel.info import prog_jited, prog_xlated
    from bpfkit.kernel.show import prog_header, prog_header_text

    require_privileges("bpfkit prog dump")
    ref, rest = split_ref(list(args.ref), "program")
    jited = args.what == "jited"
    opts = {"opcodes": False, "linum": False} if jited else _DUMP_XLATED_OPTS.copy()
    out_file = None
    while rest:
        word = rest.pop(0)
        if word == "file" and rest:
            out_file = rest.pop(0)
        elif word in opts:
            opts[word] = True
        else:
            words = "[opcodes] [linum]" if jited else "[opcodes] [linum] | visual"
            raise KernelError(
                f"unexpected {word!r}; usage: prog dump {args.what} {USAGE} {words} | file FILE"
            )
    if not ref:
        raise KernelError(f"name the program: {USAGE}")
    fds = open_ref(ref, "program")
    several = len(fds) > 1
    try:
        if several and (out_file is not None or opts.get("visual")):
            raise KernelError(
                f"{len(fds)} programs are called {ref[1]!r}; name one by id for "
                f"{'file' if out_file is not None else 'visual'}"
            )
        dumps = [
            (prog_header(fd.fd) if several else {}, (prog_jited if jited else prog_xlated)(fd.fd))
            for fd in fds
        ]
    finally:
        for fd in fds:
            fd.close()
    image = dumps[0][1]
    if out_file is not None:
        try:
            with open(out_file, "wb") as f:
                f.write(image.image)
        except OSError as e:
            raise KernelError(f"cannot write {out_file}: {e.strerror}") from None
        if args.json:
            print("null")  # bpftool's answer in JSON mode
        return 0
    if not jited and opts.pop("visual"):
        from bpfkit.kernel.xlated import visual

        print("null" if args.json else visual(image), end="\n" if args.json else "")
        return 0
    if args.json:
        import json

        out: list[Any] = [_records(img, jited, opts) for _, img in dumps]
        if several:  # bpftool: each program's header keys, its dump under "insns"
            out = [{**head, "insns": recs} for (head, _), recs in zip(dumps, out, strict=True)]
        print(json.dumps(out if several else out[0], indent=2))
        return 0
    texts = []
    for head, img in dumps:
        text = _listing(img, jited, opts, args.llvm)
        texts.append(prog_header_text(head) + "\n" + text if several else text)
    print("\n".join(texts), end="")
    return 0


def _records(image: Any, jited: bool, opts: dict[str, bool]) -> Any:
    if jited:
        from bpfkit.kernel import jited as dump_jited

        return dump_jited.records(image, **opts)
    from bpfkit.kernel import xlated as dump_xlated

    return dump_xlated.records(image, **opts)


def _listing(image: Any, jited: bool, opts: dict[str, bool], llvm: bool) -> str:
    if jited:
        from bpfkit.kernel import jited as dump_jited

        return dump_jited.listing(image, **opts)
    from bpfkit.kernel import xlated as dump_xlated

    return dump_xlated.listing(image, llvm=llvm, **opts)


_DUMP_XLATED_OPTS = {"opcodes": False, "linum": False, "visual": False}


_RUN_WORDS = ("data_in", "data_out", "ctx_in", "repeat")


def _read_input(path: str, what: str) -> bytes:
    import sys

    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise KernelError(f"{what} {path}: {e.strerror}; give a readable file or -") from None


def run_run(args: argparse.Namespace) -> int:
    """Run the program once (or ``repeat`` times) on the data given, as bpftool prog run."""
    from bpfkit.cli.objref import open_one, split_ref
    from bpfkit.kernel.features import require_privileges
    from bpfkit.kernel.info import prog_info
    from bpfkit.kernel.program import Program
    from bpfkit.text import hexdump

    require_privileges("bpfkit prog run")
    ref, rest = split_ref(list(args.ref), "program")
    opts: dict[str, str] = {}
    while rest:
        if rest[0] not in _RUN_WORDS or len(rest) < 2:
            raise KernelError(
                f"unexpected {rest[0]!r}; usage: prog run {USAGE} data_in FILE "
                "[data_out FILE] [ctx_in FILE] [repeat N]"
            )
        opts[rest[0]] = rest[1]
        rest = rest[2:]
    if "data_in" not in opts and "ctx_in" not in opts:
        raise KernelError("give the input: data_in FILE (a packet) or ctx_in FILE (a context)")
    try:
        repeat = int(opts.get("repeat", "1"))
    except ValueError:
        raise KernelError(f"repeat {opts['repeat']!r} is not a number") from None
    if not 1 <= repeat < 2**32:
        raise KernelError(f"repeat {repeat} is out of range; give 1 to {2**32 - 1}")
    data = _read_input(opts["data_in"], "data_in") if "data_in" in opts else b""
    ctx = _read_input(opts["ctx_in"], "ctx_in") if "ctx_in" in opts else None
    fd = open_one(ref, "program")
    info = prog_info(fd.fd)
    with Program(fd, info.name, info.type) as prog:
        result = prog.test_run(data, repeat=repeat, ctx=ctx)
    out = opts.get("data_out")
    if out and out != "-":
        with open(out, "wb") as f:
            f.write(result.data_out)
    if args.json:
        import json

        print(json.dumps({"retval": result.retval, "duration": result.duration_ns}, indent=2))
    else:
        if out == "-":
            print(hexdump(result.data_out))
        avg = " (average)" if repeat > 1 else ""
        print(f"Return value: {result.retval}, duration{avg}: {result.duration_ns}ns")
    return 0
