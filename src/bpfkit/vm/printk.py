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


def _pointer_suffix(text: str, i: int) -> int:
    """How many letters after ``%p`` belong to the conversion (the kernel's rules)."""
    nxt = text[i : i + 1]
    if not nxt or nxt.isspace() or (nxt.isascii() and not nxt.isalnum()):
        return 0  # plain %p
    if nxt in ("K", "x", "B"):
        return 1
    if nxt in ("k", "u") and text[i + 1 : i + 2] == "s":
        return 2
    if nxt in ("i", "I") and text[i + 1 : i + 2] in ("4", "6"):
        return 2
    raise PrintkError(f"format conversion %p{nxt} is not one the kernel accepts")


def _pointer(
    text: str, i: int, arg: int, read_memory: Callable[[int, int], bytes | None] | None
) -> str:
    """The text of one %p conversion starting after the ``p`` at ``i``."""
    n = _pointer_suffix(text, i)
    ext = text[i : i + n]
    if ext in ("ks", "us"):
        data = read_memory(arg, MAX_STRING) if read_memory else None
        data = data or b""
        nul = data.find(b"\0")
        return (data if nul < 0 else data[:nul]).decode("latin-1")
    if ext[:1] in ("i", "I"):
        size = 4 if ext[1] == "4" else 16
        raw = (read_memory(arg, size) if read_memory else None) or bytes(size)
        raw = raw[:size].ljust(size, b"\0")  # the kernel zeroes what it cannot read
        if size == 4:  # %pi4 pads each number to three digits, %pI4 does not
            return ".".join(f"{b:03d}" if ext[0] == "i" else str(b) for b in raw)
        if ext[0] == "i":
            return raw.hex()
        return ":".join(raw[j : j + 2].hex() for j in range(0, 16, 2))
    # %p (hashed by the kernel), %px, %pK, %pB: the value in hex (only %px is exact).
    return f"{arg & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def format_printk(
    fmt: bytes,
    args: Sequence[int],
    read_string: Callable[[int, int], bytes | None],
    read_memory: Callable[[int, int], bytes | None] | None = None,
) -> str:
    """The text ``bpf_trace_printk(fmt, size, args...)`` prints.

    ``fmt`` is the format bytes up to (not including) the NUL; ``args`` the raw 64-bit
    argument registers; ``read_string(address, limit)`` reads a ``%s`` argument (None when
    the address cannot be read: the kernel then prints an empty string);
    ``read_memory(address, size)`` reads the bytes of ``%pI4``/``%pi6``/``%pks``
    arguments.  Raises :class:`PrintkError` for formats the kernel rejects.
    """
    out: list[str] = []
    i, n, spec = 0, len(fmt), 0
    text = fmt.decode("latin-1")
    for ch in text:
        # Control characters other than whitespace are refused; bytes >= 0x80 pass
        # (Linux 6.18 prints them; older kernels refused them with the isascii check).
        if (ord(ch) < 0x20 and not ch.isspace()) or ord(ch) == 0x7F:
            raise PrintkError(f"format has a control character {ord(ch):#x}")
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
            i += 1
            shown = _pointer(text, i, arg, read_memory)
            if text[i : i + 2] not in ("ks", "us"):  # Linux 6.18 ignores width for %pks
                shown = _pad(shown, flags, width)
            out.append(shown)
            i += _pointer_suffix(text, i)
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
