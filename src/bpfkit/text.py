"""Plain-text helpers shared by the render modules of several layers (L0: imports nothing).

API::

    hexdump(data, width=16) -> str   # ``0000  45 00 00 54 ...  |E..T|`` lines
"""

from __future__ import annotations


def hexdump(data: bytes, width: int = 16) -> str:
    """``offset  hex bytes  |ascii|`` lines, ``width`` bytes a line (``.`` for unprintables)."""
    lines = []
    for off in range(0, len(data), width):
        chunk = data[off : off + width]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:04x}  {hexes:<{width * 3 - 1}}  |{text}|")
    return "\n".join(lines)
