"""Plain-text helpers shared by the render modules of several layers (L0: imports nothing).

API::

    hexdump(data, width=16) -> str   # ``0000  45 00 00 54 ...  |E..T|`` lines
    log2_hist(slots, val_type) -> str     # bcc's print_log2_hist, line for line
    linear_hist(slots, val_type) -> str   # bcc's print_linear_hist, line for line
    log2_slot(value) -> int               # the log2 slot a value counts in (bcc's bpf_log2l)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

_STARS = 40  # bcc's bar width


def hexdump(data: bytes, width: int = 16) -> str:
    """``offset  hex bytes  |ascii|`` lines, ``width`` bytes a line (``.`` for unprintables)."""
    lines = []
    for off in range(0, len(data), width):
        chunk = data[off : off + width]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:04x}  {hexes:<{width * 3 - 1}}  |{text}|")
    return "\n".join(lines)


def log2_slot(value: int) -> int:
    """The slot of a log2 histogram ``value`` counts in, as bcc's ``bpf_log2l`` gives it:
    0 for 0, else the number of bits of the value (slot ``i`` holds ``2**(i-1)`` to
    ``2**i - 1``)."""
    return value.bit_length() if value > 0 else 0


def _slots(slots: Sequence[int] | Mapping[int, int]) -> list[int]:
    if isinstance(slots, Mapping):
        out = [0] * (max(slots, default=-1) + 1)
        for i, n in slots.items():
            if i < 0:
                raise ValueError(f"histogram slot {i} is negative")
            out[i] += n
        return out
    return list(slots)


def _bar(count: int, peak: int, width: int) -> str:
    return "*" * min(width, width * count // peak) if peak > 0 else ""


def log2_hist(
    slots: Sequence[int] | Mapping[int, int],
    val_type: str = "value",
    *,
    strip_leading_zero: bool = False,
) -> str:
    """A log2 histogram drawn as bcc's ``print_log2_hist`` draws it (the same lines, so bcc
    users read it at a glance): slot ``i`` (see :func:`log2_slot`) is the row
    ``2**(i-1) -> 2**i - 1`` (``0 -> 1`` for slots 0 and 1, whose row bcc starts at 1).
    ``slots``: counts by slot, a list or a mapping.  Empty string when all are zero."""
    counts = _slots(slots)
    last = max((i for i, n in enumerate(counts) if n > 0), default=-1)
    peak = max(counts, default=0)
    wide = last > 32
    width = _STARS // 2 if wide else _STARS
    lines = []
    if last > 0:
        lines.append(
            f"{'':15}{val_type:<29} : count     distribution"
            if wide
            else f"{'':5}{val_type:<19} : count     distribution"
        )
    skipping = strip_leading_zero
    for i in range(1, last + 1):
        high = (1 << i) - 1
        low = (1 << i) >> 1
        if low == high:
            low -= 1
        n = counts[i]
        if skipping and not n:
            continue
        skipping = False
        bar = _bar(n, peak, width)
        if wide:
            lines.append(f"{low:20d} -> {high:<20d} : {n:<8d} |{bar:<{width}}|")
        else:
            lines.append(f"{low:10d} -> {high:<10d} : {n:<8d} |{bar:<{width}}|")
    return "".join(line + "\n" for line in lines)


def linear_hist(
    slots: Sequence[int] | Mapping[int, int],
    val_type: str = "value",
    *,
    strip_leading_zero: bool = False,
) -> str:
    """A linear histogram drawn as bcc's ``print_linear_hist`` draws it: one row per slot
    from 0 to the last non-zero one."""
    counts = _slots(slots)
    last = max((i for i, n in enumerate(counts) if n > 0), default=-1)
    peak = max(counts, default=0)
    lines = []
    if last >= 0:
        lines.append(f"{'':5}{val_type:<13} : count     distribution")
    skipping = strip_leading_zero
    for i in range(last + 1):
        n = counts[i]
        if skipping and not n:
            continue
        skipping = False
        lines.append(f"{'':8}{i:<10d} : {n:<8d} |{_bar(n, peak, _STARS):<{_STARS}}|")
    return "".join(line + "\n" for line in lines)
