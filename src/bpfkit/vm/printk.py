"""``bpf_trace_printk`` formatting with the kernel's rules.

The kernel (kernel/bpf/helpers.c, ``bpf_bprintf_prepare``, 5.13+) accepts a format string
only if it is NUL-terminated within ``fmt_size``, made of printable ASCII or whitespace,
and uses at most three conversions among ``%d %i %u %x %X`` with an optional ``l``/``ll``,
``%p``, ``%s``, ``%c`` and ``%%``, each optionally preceded by flags ``0 + - space`` and
a width.  Anything else makes the helper return ``-EINVAL`` and print nothing.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence

MAX_ARGS = 3
MAX_OUTPUT = 1024  # MAX_BPRINTF_BUF: the kernel formats into a buffer of this size
MAX_STRING = 512  # MAX_BPRINTF_BIN_ARGS: room for %s strings


class PrintkError(Exception):
    """A format the kernel refuses; ``errno`` is what the helper returns (negated)."""

    def __init__(self, message: str, err: int = errno.EINVAL) -> None:
        super().__init__(message)
        self.errno = err


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _pad(text: str, flags: str, width: int) -> str:
    if width <= len(text):
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and text and (text[0] in "+-" or text[0].isdigit() or text[0] in "abcdef"):
        sign = text[0] if text[0] in "+- " else ""
        body = text[len(sign) :]
        return sign + body.rjust(width - len(sign), "0")
    return text.rjust(width)


def format_printk(
    fmt: bytes, args: Sequence[int], read_string: Callable[[int, int], bytes | None]
) -> str:
    """The text ``bpf_trace_printk(fmt, size, args...)`` prints.

    ``fmt`` is the format bytes up to (not including) the NUL; ``args`` the raw 64-bit
    argument registers; ``read_string(address, limit)`` reads a ``%s`` argument (None when
    the address cannot be read: the kernel then prints an empty string).  Raises
    :class:`PrintkError` for formats the kernel rejects.
    """
    out: list[str] = []
    i, n, spec = 0, len(fmt), 0
    text = fmt.decode("latin-1")
    for ch in text:
        if ord(ch) > 0x7F or not (ch.isprintable() or ch.isspace()):
            raise PrintkError(f"format has a non-printable character {ord(ch):#x}")
    while i < n:
        ch = text[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        if i + 1 < n and text[i + 1] == "%":
            out.append("%")
            i += 2
            continue
        if spec >= MAX_ARGS:
            raise PrintkError(f"format uses more than {MAX_ARGS} arguments")
        start = i
        i += 1
        flags = ""
        while i < n and text[i] in "0+- ":
            flags += text[i]
            i += 1
        width = 0
        if i < n and "1" <= text[i] <= "9":
            while i < n and text[i].isdigit():
                width = width * 10 + int(text[i])
                i += 1
        conv = text[i] if i < n else ""
        arg = args[spec] if spec < len(args) else 0
        spec += 1
        if conv == "p":
            # %pK/%px/%pB/%pI4... take extra letters; only plain %p and %px are emulated.
            i += 1
            if i < n and text[i] == "x":
                i += 1
            elif i < n and text[i].isalnum():
                raise PrintkError(f"format conversion {text[start : i + 1]!r} is not emulated")
            out.append(_pad(f"{arg & 0xFFFF_FFFF_FFFF_FFFF:016x}", flags, width))
            continue
        if conv == "s":
            i += 1
            s = read_string(arg, MAX_STRING)
            out.append(_pad((s or b"").decode("latin-1"), flags, width))
            continue
        if conv == "c":
            i += 1
            out.append(_pad(chr(arg & 0xFF), flags, width))
            continue
        bits = 32
        if conv == "l":
            bits = 64
            i += 1
            if i < n and text[i] == "l":
                i += 1
            conv = text[i] if i < n else ""
        if conv not in ("d", "i", "u", "x", "X"):
            bad = text[start : i + 1]
            raise PrintkError(f"format conversion {bad!r} is not one the kernel accepts")
        i += 1
        if conv in "di":
            v = _signed(arg, bits)
            body = str(v)
            if v >= 0 and "+" in flags:
                body = "+" + body
            elif v >= 0 and " " in flags:
                body = " " + body
        elif conv == "u":
            body = str(arg & ((1 << bits) - 1))
        else:
            body = format(arg & ((1 << bits) - 1), conv.lower() if conv == "x" else "X")
        out.append(_pad(body, flags, width))
    return "".join(out)[: MAX_OUTPUT - 1]
