"""``bpfkit btf FILE`` / ``bpfkit btf dump file FILE [format c|raw]``: the BTF of an object
or of the kernel, as ``bpftool btf dump file`` prints it (raw: every type; ``format c``:
a C header, the ``vmlinux.h`` of /sys/kernel/btf/vmlinux)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bpfkit.btf import VMLINUX, Btf, load_vmlinux, parse_btf
from bpfkit.btf.cdecl import define
from bpfkit.btf.dump import dump_raw, dump_type
from bpfkit.errors import BtfError, ObjectError
from bpfkit.obj import read_object


def register(sub: Any) -> None:
    """Add the ``btf`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "btf",
        help="dump the BTF types of an object or of /sys/kernel/btf/vmlinux",
        description="Print the types of a BPF object's .BTF, or of a raw BTF file such as "
        "/sys/kernel/btf/vmlinux, as `bpftool btf dump file FILE [format c|raw]` prints "
        "them: raw (the default), or as C (`format c`: a vmlinux.h byte for byte "
        "bpftool's). `bpfkit btf FILE` is the short form of `btf dump file FILE`.",
    )
    p.add_argument(
        "words",
        nargs="+",
        metavar="FILE | dump file FILE [format c|raw]",
        help="BPF ELF object, or raw BTF (/sys/kernel/btf/vmlinux)",
    )
    p.add_argument(
        "--find",
        metavar="NAME",
        action="append",
        help="only the types called NAME (repeatable), each with its C name",
    )
    p.add_argument(
        "--c",
        dest="c_defs",
        action="store_true",
        help="with --find: print C definitions (struct, union, enum, typedef) instead",
    )
    p.set_defaults(func=run)


def load(path: str) -> Btf:
    """The BTF of ``path``: an ELF object's ``.BTF`` section, or a raw BTF file."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise BtfError(f"{path}: cannot read: {e.strerror or e}") from e
    try:
        if head == b"\x7fELF":
            obj = read_object(path, programs=False)  # only the .BTF is needed
            parsed = obj.parsed_btf()  # parsed once, by the reader if it needed it
            if parsed is None:
                raise ObjectError(f"{path}: no .BTF section (compile with clang -g)")
            return parsed
        if path == VMLINUX:
            return load_vmlinux()  # parsed once per process, shared with the loader
        with open(path, "rb") as f:
            btf = parse_btf(f.read())
    except BtfError as e:
        raise BtfError(f"{path}: {e}") from e
    btf.what = path
    return btf


_USAGE = "usage: bpfkit btf FILE | btf dump file FILE [format c|raw]"


def _words(words: list[str]) -> tuple[str, str]:
    """(file, format) of ``FILE`` or bpftool's ``dump file FILE [format c|raw]``."""
    if words[0] != "dump":
        if len(words) != 1:
            raise BtfError(f"unexpected {words[1]!r}; {_USAGE}")
        return words[0], "raw"
    rest = words[1:]
    if len(rest) < 2 or rest[0] != "file":
        raise BtfError(
            f"expected 'file FILE' after 'dump' ({_USAGE}; bpftool's id, map "
            "and prog sources are not supported)"
        )
    path, fmt, rest = rest[1], "raw", rest[2:]
    if rest[:1] == ["format"] and len(rest) == 2 and rest[1] in ("c", "raw"):
        fmt, rest = rest[1], []
    if rest:
        raise BtfError(f"unexpected {' '.join(rest)!r}; {_USAGE}")
    return path, fmt


def run(args: argparse.Namespace) -> int:
    """Print the dump."""
    path, fmt = _words(list(args.words))
    args.file = path
    btf = load(path)
    if fmt == "c" and not args.find:
        from bpfkit.btf.cdump import c_header

        sys.stdout.write(c_header(btf))
        return 0
    if not args.find:
        sys.stdout.write(dump_raw(btf))
        return 0
    for name in args.find:
        for t in btf.find_all(name):
            if args.c_defs:
                sys.stdout.write(define(btf, t.id) + "\n")
            else:
                sys.stdout.write(f"{dump_type(btf, t)}\n\t/* {btf.format(t.id)} */\n")
        if not btf.find_all(name):
            raise BtfError(f"{args.file}: no type named {name!r}")
    return 0
