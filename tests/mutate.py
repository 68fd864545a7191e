"""Structure-aware mutation of BPF ELF objects, for fuzzing the reader and the commands.

:func:`mutate` takes a valid object and returns a copy with one to three fields changed
in one of its parts: the ELF header, a section header, a symbol, a relocation, the .BTF
or .BTF.ext header or body, or a map definition (legacy ``maps`` records and the BTF of
``.maps``).  Values are chosen from the ones that break parsers (0, 1, all ones, sign
bits, the field's neighbours, sizes just past the end) or at random.  :func:`run_case`
runs one command on a mutated object and classifies the outcome.

Used by tests/cli/test_fuzz_commands.py (a few hundred cases per command) and
scripts/fuzz_objects.py (100,000 cases, with the findings summarised).
"""

from __future__ import annotations

import contextlib
import io
import random
import struct
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [
    ROOT / "examples" / "hello" / "hello.o",
    ROOT / "tests" / "corpus" / "obj" / "xdp_count_v3_g.o",
    ROOT / "tests" / "corpus" / "obj" / "legacy_maps_v2_g.o",
    ROOT / "tests" / "corpus" / "obj" / "globals_v3_g.o",
    ROOT / "tests" / "corpus" / "obj" / "subprogs_v3_g.o",
]
PARTS = ("header", "section", "symbol", "relocation", "btf", "btf_ext", "maps")
COMMANDS = ("read", "dump", "explain", "btf", "vm", "load")

_EHDR = [("e_type", 16, 2), ("e_machine", 18, 2), ("e_version", 20, 4), ("e_entry", 24, 8)]
_EHDR += [("e_shoff", 40, 8), ("e_flags", 48, 4), ("e_ehsize", 52, 2)]
_EHDR += [("e_shentsize", 58, 2), ("e_shnum", 60, 2), ("e_shstrndx", 62, 2)]
_EHDR += [("EI_CLASS", 4, 1), ("EI_DATA", 5, 1), ("EI_VERSION", 6, 1)]
_SHDR = [("sh_name", 0, 4), ("sh_type", 4, 4), ("sh_flags", 8, 8), ("sh_addr", 16, 8)]
_SHDR += [("sh_offset", 24, 8), ("sh_size", 32, 8), ("sh_link", 40, 4), ("sh_info", 44, 4)]
_SHDR += [("sh_addralign", 48, 8), ("sh_entsize", 56, 8)]
_SYM = [("st_name", 0, 4), ("st_info", 4, 1), ("st_other", 5, 1), ("st_shndx", 6, 2)]
_SYM += [("st_value", 8, 8), ("st_size", 16, 8)]
_REL = [("r_offset", 0, 8), ("r_info.type", 8, 4), ("r_info.sym", 12, 4)]
_BTF_HDR = [("magic", 0, 2), ("version", 2, 1), ("flags", 3, 1), ("hdr_len", 4, 4)]
_BTF_HDR += [("type_off", 8, 4), ("type_len", 12, 4), ("str_off", 16, 4), ("str_len", 20, 4)]
_EXT_HDR = [("magic", 0, 2), ("hdr_len", 4, 4), ("func_info_off", 8, 4)]
_EXT_HDR += [("func_info_len", 12, 4), ("line_info_off", 16, 4), ("line_info_len", 20, 4)]
_EXT_HDR += [("core_relo_off", 24, 4), ("core_relo_len", 28, 4)]


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: int
    offset: int
    size: int
    header: int  # file offset of its section header


def sections(data: bytes) -> list[Section]:
    """The sections of a valid little- or big-endian ELF64 object."""
    e = ">" if data[5] == 2 else "<"
    (shoff,) = struct.unpack_from(e + "Q", data, 40)
    shnum, shstrndx = struct.unpack_from(e + "HH", data, 60)
    heads = [struct.unpack_from(e + "IIQQQQIIQQ", data, shoff + 64 * i) for i in range(shnum)]
    stroff = heads[shstrndx][4]
    out = []
    for i, h in enumerate(heads):
        name_end = data.index(b"\0", stroff + h[0])
        name = data[stroff + h[0] : name_end].decode(errors="replace")
        out.append(Section(i, name, h[1], h[4], h[5], shoff + 64 * i))
    return out


def _values(rng: random.Random, width: int, old: int, limit: int) -> int:
    top = (1 << (8 * width)) - 1
    choices = [0, 1, top, top >> 1, (top >> 1) + 1, old + 1, old - 1, old ^ 0x80]
    choices += [limit, limit + 1, limit - 1, old * 2, 0x10000, 0x100010000, 4096, 8, 7]
    if rng.random() < 0.3:
        return rng.randrange(top + 1)
    return rng.choice(choices) & top


def _field(buf: bytearray, e: str, at: int, width: int, rng: random.Random, limit: int) -> str:
    fmt = e + {1: "B", 2: "H", 4: "I", 8: "Q"}[width]
    (old,) = struct.unpack_from(fmt, buf, at)
    new = _values(rng, width, old, limit)
    struct.pack_into(fmt, buf, at, new)
    return f"{old:#x}->{new:#x}"


def _in(
    buf: bytearray,
    sec: Section | None,
    table: list[tuple[str, int, int]],
    rec: int,
    e: str,
    rng: random.Random,
) -> str:
    """Change a field of a random record of ``sec`` (records of ``rec`` bytes)."""
    if sec is None or sec.size < rec or sec.offset + sec.size > len(buf):
        return ""
    i = rng.randrange(sec.size // rec)
    name, off, width = rng.choice(table)
    return f"{sec.name}[{i}].{name} " + _field(
        buf, e, sec.offset + i * rec + off, width, rng, sec.size
    )


def _bytes(buf: bytearray, sec: Section | None, rng: random.Random) -> str:
    """Change one to four bytes (or a u32) inside ``sec``'s contents."""
    if sec is None or sec.size == 0 or sec.offset + sec.size > len(buf):
        return ""
    at = sec.offset + rng.randrange(sec.size)
    if at + 4 <= sec.offset + sec.size and rng.random() < 0.5:
        return f"{sec.name}+{at - sec.offset:#x}.u32 " + _field(buf, "<", at, 4, rng, sec.size)
    n = rng.randint(1, 4)
    for k in range(n):
        if at + k < len(buf):
            buf[at + k] = rng.randrange(256)
    return f"{sec.name}+{at - sec.offset:#x} {n} random bytes"


def mutate(data: bytes, rng: random.Random, part: str | None = None) -> tuple[bytes, str]:
    """A mutated copy of ``data`` and a description of what was changed."""
    buf = bytearray(data)
    e = ">" if data[5] == 2 else "<"
    secs = sections(data)
    by_name = {s.name: s for s in secs}
    notes = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        p = part or rng.choice(PARTS)
        note = ""
        if p == "header":
            name, off, width = rng.choice(_EHDR)
            note = f"ehdr.{name} " + _field(buf, e, off, width, rng, len(data))
        elif p == "section":
            sec = rng.choice(secs[1:])
            name, off, width = rng.choice(_SHDR)
            note = f"shdr[{sec.index} {sec.name}].{name} " + _field(
                buf, e, sec.header + off, width, rng, len(data)
            )
        elif p == "symbol":
            note = _in(buf, by_name.get(".symtab"), _SYM, 24, e, rng)
        elif p == "relocation":
            rels = [s for s in secs if s.type == 9 and not s.name.startswith(".rel.debug")]
            note = _in(buf, rng.choice(rels) if rels else None, _REL, 16, e, rng)
        elif p == "btf":
            sec = by_name.get(".BTF")
            if sec is not None and rng.random() < 0.4:
                note = _in(buf, Section(0, ".BTF hdr", 0, sec.offset, 24, 0), _BTF_HDR, 24, e, rng)
            else:
                note = _bytes(buf, sec, rng)
        elif p == "btf_ext":
            sec = by_name.get(".BTF.ext")
            if sec is not None and rng.random() < 0.4:
                hdr = Section(0, ".BTF.ext hdr", 0, sec.offset, 32, 0)
                note = _in(buf, hdr, _EXT_HDR, 32, e, rng)
            else:
                note = _bytes(buf, sec, rng)
        elif p == "maps":
            sec = by_name.get("maps") or by_name.get(".maps")
            if sec is not None and sec.name == "maps":
                note = _bytes(buf, sec, rng)
            else:  # BTF maps: their definition lives in .BTF (__uint arrays, pointers)
                note = _bytes(buf, by_name.get(".BTF"), rng)
        notes.append(note or f"{p}: nothing to change")
    return bytes(buf), "; ".join(notes)


@dataclass(frozen=True)
class Outcome:
    kind: str  # "ok", "refused" (one bpfkit error), "crash" (anything else)
    detail: str


def run_case(command: str, path: Path) -> Outcome:
    """Run ``command`` on the object at ``path`` in this process (the CLI's main, or the
    reader for "read"): "ok" or "refused" with one message, else "crash"."""
    from bpfkit.cli.main import main
    from bpfkit.errors import BpfkitError
    from bpfkit.obj.reader import read_object

    out, err = io.StringIO(), io.StringIO()
    try:
        if command == "read":
            try:
                read_object(str(path))
                return Outcome("ok", "")
            except BpfkitError as e:
                return Outcome("refused", str(e).splitlines()[0] if str(e) else "")
        args = {
            "dump": ["dump", "-r"],
            "explain": ["explain"],
            "btf": ["btf"],
            "vm": ["vm", "--budget", "20000"],
            "load": ["load"],
        }[command] + [str(path)]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(args)
    except Exception as e:  # noqa: BLE001 - classifying is the point
        import traceback

        return Outcome("crash", "".join(traceback.format_exception(e))[-3000:])
    text = err.getvalue()
    if status == 0:
        return Outcome("ok", "")
    if status == 1 and "bpfkit: error: " in text and "Traceback" not in text:
        return Outcome("refused", text.split("bpfkit: error: ", 1)[1].splitlines()[0])
    return Outcome("crash", f"status {status}: {text[-3000:]}")
