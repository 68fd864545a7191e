"""Dropping the read-only constants rustc leaves behind unused.

rustc 1.95 keeps the anonymous constant of a byte string (``*b"hello from rust\\n\\0"``) in
``.rodata.str1.1`` even after the optimizer turned every use into immediates.  A loader
makes a map of every ``.rodata*`` section, so the seed's program would load with a useless
17-byte array map.  This pass removes a ``.rodata*`` section whose labels are all local
(``.L...``) and referenced nowhere else, as a linker's ``--gc-sections`` would.
"""

from __future__ import annotations

import re

_SECTION = re.compile(r"^\s*\.section\s+(\"[^\"]*\"|[^\s,]+)")
_PLAIN_SECTION = re.compile(r"^\s*\.(text|data|bss|rodata)\b\s*$")
_LABEL = re.compile(r"^([A-Za-z_.$][\w.$]*):")
_SYMBOL_DIRECTIVE = re.compile(r"^\s*\.(type|size)\s+([A-Za-z_.$][\w.$]*)\s*,")
_WORD = re.compile(r"[A-Za-z_.$][\w.$]*")


def _section_of_lines(lines: list[str]) -> list[str] | None:
    """The section each line belongs to (None if the text switches sections in ways not
    followed here, such as .pushsection)."""
    current = ".text"
    out = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith((".pushsection", ".popsection", ".previous", ".subsection")):
            return None
        m = _SECTION.match(line)
        if m:
            current = m.group(1).strip('"')
        else:
            p = _PLAIN_SECTION.match(line)
            if p:
                current = "." + p.group(1)
        out.append(current)
    return out


def drop_unused_rodata(text: str) -> str:
    """``text`` without the ``.rodata*`` sections nothing refers to (see the module doc)."""
    lines = text.splitlines(keepends=True)
    sections = _section_of_lines(lines)
    if sections is None:
        return text
    labels: dict[str, set[str]] = {}
    for line, section in zip(lines, sections, strict=True):
        m = _LABEL.match(line)
        if m:
            labels.setdefault(section, set()).add(m.group(1))
    # The words of every line but labels and .type/.size directives, by section.
    all_words: list[tuple[str, set[str]]] = []
    for line, section in zip(lines, sections, strict=True):
        if _SYMBOL_DIRECTIVE.match(line) or _LABEL.match(line):
            continue
        code = line.split("#", 1)[0]
        all_words.append((section, set(_WORD.findall(code))))
    dead: set[str] = set()
    for section, defined in labels.items():
        if not section.startswith(".rodata") or not all(n.startswith(".L") for n in defined):
            continue
        used: set[str] = set()
        for where, words in all_words:
            if where != section:
                used |= words & defined
        if not used:
            dead.add(section)
    if not dead:
        return text
    dead_labels = {name for s in dead for name in labels[s]}
    kept = []
    for line, section in zip(lines, sections, strict=True):
        if section in dead:
            continue
        m = _SYMBOL_DIRECTIVE.match(line)
        if m and m.group(2) in dead_labels:
            continue
        kept.append(line)
    return "".join(kept)
