"""Argument types shared by the commands: a bad value is a usage error (exit 2) naming
the option, not a traceback or a silently odd run."""

from __future__ import annotations

import argparse
import math
from typing import Any


def count(text: str) -> int:
    """A whole number >= 0 (``--count N``)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative; give 0 or more")
    return n


def seconds(text: str) -> float:
    """A duration in seconds, >= 0 (``--duration SECONDS``)."""
    try:
        s = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if math.isnan(s) or s < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; give 0 or more seconds")
    return s


def hertz(text: str) -> int:
    """A sampling frequency, 1..100000 Hz (``--freq HZ``)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of Hz") from None
    if not 1 <= n <= 100_000:
        raise argparse.ArgumentTypeError(f"{n} Hz is outside 1..100000")
    return n


def prog_type(text: str) -> int:
    """A program type by name, as bpftool and the uapi write it (``xdp``, ``kprobe``,
    ``BPF_PROG_TYPE_SCHED_CLS``) or number (``--type TYPE``)."""
    from bpfkit.uapi import ProgType

    key = text.strip().upper().removeprefix("BPF_PROG_TYPE_")
    if key.isdigit() and int(key) in {int(t) for t in ProgType}:
        return int(key)
    if key in ProgType.__members__ and ProgType[key]:
        return int(ProgType[key])
    known = ", ".join(t.name.lower() for t in ProgType if t)
    raise argparse.ArgumentTypeError(f"unknown program type {text!r}; known: {known}")


def add_type_argument(parser: argparse.ArgumentParser) -> None:
    """``--type TYPE``: load the programs as this type whatever their section says."""
    parser.add_argument(
        "--type",
        type=prog_type,
        metavar="TYPE",
        help="program type to use instead of the one the section name implies (xdp, "
        "kprobe, tracepoint, socket_filter, sched_cls, cgroup_skb, perf_event, ...); "
        "needed for sections libbpf does not name",
    )


def python_object(path: str) -> Any:
    """``path`` itself, or for a ``.py`` program the ObjectSpec bpfkit.lang compiles from it."""
    if not str(path).endswith(".py"):
        return path
    from bpfkit.lang.compiler import compile_file

    return compile_file(str(path)).spec


def typed_object(path: str, prog_type: int | None) -> Any:
    """:func:`python_object` of ``path``, its programs retyped as ``prog_type`` (``--type``)
    when given (an ObjectSpec then; else the path as is)."""
    obj = python_object(path)
    if prog_type is None:
        return obj
    from bpfkit.obj.reader import read_object
    from bpfkit.obj.sections import retype

    return retype(read_object(obj) if isinstance(obj, str) else obj, prog_type)
