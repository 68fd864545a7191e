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


def python_object(path: str) -> Any:
    """``path`` itself, or for a ``.py`` program the ObjectSpec bpfkit.lang compiles from it."""
    if not str(path).endswith(".py"):
        return path
    from bpfkit.lang.compiler import compile_file

    return compile_file(str(path)).spec
