"""Assembler directives of LLVM's ELF assembly, and the ``.eh_frame`` of ``.cfi_startproc``.

Each handler gets the assembler, the directive's text (name included) and the 0-based
column where it starts.  What they do follows llvm-mc's ELF streamer: section switching
and default flags, symbol attributes, data, alignment, ``.comm``, ``.addrsig``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

from bpfkit.asm import dwarf
from bpfkit.asm.builder import FK_DATA, FixupError, Section, Symbol
from bpfkit.asm.expr import Value, parse_int
from bpfkit.asm.state import Assembling
from bpfkit.obj import writer as w

_NAME = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[A-Za-z_.$][\w.$@-]*)')
_PLAIN_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|[1-9][0-9]*|0)\Z")
_STRING = re.compile(r'\s*"((?:[^"\\]|\\.)*)"')

_TYPES = {
    "function": w.STT_FUNC,
    "object": w.STT_OBJECT,
    "notype": w.STT_NOTYPE,
    "tls_object": w.STT_TLS,
    "common": w.STT_COMMON,
    "stt_func": w.STT_FUNC,
    "stt_object": w.STT_OBJECT,
    "stt_notype": w.STT_NOTYPE,
    "stt_tls": w.STT_TLS,
    "stt_common": w.STT_COMMON,
}
_SECTION_TYPES = {
    "progbits": w.SHT_PROGBITS,
    "nobits": w.SHT_NOBITS,
    "note": w.SHT_NOTE,
    "init_array": w.SHT_INIT_ARRAY,
    "fini_array": w.SHT_FINI_ARRAY,
    "preinit_array": w.SHT_PREINIT_ARRAY,
    "llvm_addrsig": w.SHT_LLVM_ADDRSIG,
}
_FLAG_CHARS = {
    "a": w.SHF_ALLOC,
    "w": w.SHF_WRITE,
    "x": w.SHF_EXECINSTR,
    "M": w.SHF_MERGE,
    "S": w.SHF_STRINGS,
    "T": w.SHF_TLS,
    "e": w.SHF_EXCLUDE,
}
_DATA_SIZES = {
    ".byte": 1,
    ".short": 2,
    ".2byte": 2,
    ".value": 2,
    ".long": 4,
    ".int": 4,
    ".4byte": 4,
    ".word": 4,
    ".quad": 8,
    ".8byte": 8,
}
_ESCAPES = {"b": 8, "f": 12, "n": 10, "r": 13, "t": 9, '"': 34, "\\": 92, "'": 39}


def _args(a: Assembling, text: str, col: int) -> tuple[str, int]:
    """The directive's argument text and the 0-based column where it starts."""
    parts = text.split(None, 1)
    if len(parts) < 2:
        return "", col + len(text)
    rest = parts[1]
    return rest, col + len(text) - len(rest)


def _split(rest: str) -> list[tuple[str, int]]:
    """Split arguments at commas outside quotes and parentheses, with 0-based offsets."""
    if '"' not in rest and "(" not in rest:  # the common case, without a character loop
        pieces: list[tuple[str, int]] = []
        at = 0
        for piece in rest.split(","):
            stripped = piece.lstrip()
            pieces.append((stripped.rstrip(), at + len(piece) - len(stripped)))
            at += len(piece) + 1
        return pieces
    out = [(rest[s:e], s) for s, e in split_spans(rest, ",")]
    return [(p.strip(), s + len(p) - len(p.lstrip())) for p, s in out]


def split_spans(text: str, sep: str, nest: bool = True) -> list[tuple[int, int]]:
    """``(start, end)`` of each ``sep``-separated piece of ``text``: a ``sep`` inside double
    quotes (backslash escapes respected) or, with ``nest``, inside parentheses does not split."""
    out: list[tuple[int, int]] = []
    depth, quote, start = 0, False, 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quote = False
        elif ch == '"':
            quote = True
        elif nest and ch == "(":
            depth += 1
        elif nest and ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            out.append((start, i))
            start = i + 1
        i += 1
    out.append((start, len(text)))
    return out


def _name(a: Assembling, text: str, base: int) -> str:
    m = _NAME.match(text)
    if not m or m.end() != len(text.rstrip()):
        raise a.error(f"expected a symbol name, got '{text}'", base + 1)
    return m.group(1).strip('"')


def _string(a: Assembling, text: str, base: int) -> bytes:
    m = _STRING.match(text)
    if not m or m.end() != len(text.rstrip()):
        raise a.error("expected a string in double quotes", base + 1)
    body = m.group(1)
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode()
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in "01234567":
            j = i + 1
            while j < len(body) and j < i + 4 and body[j] in "01234567":
                j += 1
            out.append(int(body[i + 1 : j], 8) & 0xFF)
            i = j
        elif nxt in "xX":
            j = i + 2
            while j < len(body) and body[j] in "0123456789abcdefABCDEF":
                j += 1
            if j == i + 2:
                raise a.error("invalid \\x escape in string", base + 1)
            out.append(int(body[i + 2 : j], 16) & 0xFF)
            i = j
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            raise a.error(f"invalid escape sequence '\\{nxt}' in string", base + 1)
    return bytes(out)


def _expr(a: Assembling, text: str, base: int) -> Value:
    v, end = a.parse_expr(text, 0, base)
    if text[end:].strip():
        raise a.error(f"unexpected '{text[end:].strip()}' after expression", base + end + 1)
    return v


def _const(a: Assembling, text: str, base: int) -> int:
    v = _expr(a, text, base)
    try:
        return a.b.absolute(v, None)
    except FixupError:
        raise a.error(f"expected a constant expression, got '{text}'", base + 1) from None


# --- sections --------------------------------------------------------------------


def _default_type(name: str) -> int:
    if name.startswith((".bss", ".tbss", ".sbss")) or name == ".bss":
        return w.SHT_NOBITS
    if name.startswith(".note"):
        return w.SHT_NOTE
    if name.startswith(".init_array"):
        return w.SHT_INIT_ARRAY
    if name.startswith(".fini_array"):
        return w.SHT_FINI_ARRAY
    if name.startswith(".preinit_array"):
        return w.SHT_PREINIT_ARRAY
    return w.SHT_PROGBITS


def _prefixed(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _default_flags(name: str) -> int:
    if _prefixed(name, ".rodata") or name == ".rodata1":
        return w.SHF_ALLOC
    if name in (".fini", ".init") or _prefixed(name, ".text"):
        return w.SHF_ALLOC | w.SHF_EXECINSTR
    if (
        _prefixed(name, ".data")
        or name == ".data1"
        or _prefixed(name, ".bss")
        or _prefixed(name, ".init_array")
        or _prefixed(name, ".fini_array")
        or _prefixed(name, ".preinit_array")
    ):
        return w.SHF_ALLOC | w.SHF_WRITE
    if _prefixed(name, ".tdata") or _prefixed(name, ".tbss"):
        return w.SHF_ALLOC | w.SHF_WRITE | w.SHF_TLS
    return 0


def _switch(a: Assembling, sec: Section | None) -> None:
    if sec is not None and sec is not a.b.current:
        a.previous = a.b.current
        a.b.current = sec


def _enter(a: Assembling, name: str, type_: int, flags: int, entsize: int = 0) -> None:
    before = a.b.current
    a.b.section(name, type_, flags, entsize)
    if a.b.current is not before:
        a.previous = before


def d_section(a: Assembling, text: str, col: int) -> None:
    """``.section name[, "flags"[, @type[, entsize]]]``."""
    rest, base = _args(a, text, col)
    args = _split(rest)
    name_text, name_off = args[0]
    if not name_text:
        raise a.error("expected a section name", base + 1)
    name = name_text[1:-1] if name_text.startswith('"') else name_text
    flags = _default_flags(name)
    type_ = _default_type(name)
    entsize = 0
    if len(args) > 1:
        ftext, foff = args[1]
        if not (ftext.startswith('"') and ftext.endswith('"')):
            raise a.error('expected a flags string such as "ax"', base + foff + 1)
        for ch in ftext[1:-1]:
            if ch not in _FLAG_CHARS:
                raise a.error(f"unsupported section flag '{ch}'", base + foff + 1)
            flags |= _FLAG_CHARS[ch]
    if len(args) > 2:
        ttext, toff = args[2]
        tname = ttext.lstrip("@%").strip('"')
        if tname not in _SECTION_TYPES:
            raise a.error(f"unknown section type '{ttext}'", base + toff + 1)
        type_ = _SECTION_TYPES[tname]
    if len(args) > 3:
        etext, eoff = args[3]
        if not flags & w.SHF_MERGE:
            raise a.error("unsupported section argument (groups and unique ids)", base + eoff + 1)
        entsize = _const(a, etext, base + eoff)
    if len(args) > 4:
        raise a.error("section groups and unique ids are not supported", base + args[4][1] + 1)
    if flags & w.SHF_MERGE and len(args) <= 3:
        raise a.error("a mergeable section needs an entry size", base + 1)
    _enter(a, name, type_, flags, entsize)


def _simple_section(name: str) -> Callable[[Assembling, str, int], None]:
    def handler(a: Assembling, text: str, col: int) -> None:
        rest, base = _args(a, text, col)
        if rest:
            raise a.error("subsections are not supported", base + 1)
        _enter(a, name, _default_type(name), _default_flags(name))

    return handler


def d_previous(a: Assembling, text: str, col: int) -> None:
    """``.previous``: back to the section before the last switch."""
    prev = a.previous
    if isinstance(prev, Section):
        _switch(a, prev)


def d_pushsection(a: Assembling, text: str, col: int) -> None:
    """``.pushsection name, ...``."""
    a.section_stack.append((a.b.current, a.previous))
    d_section(a, text, col)


def d_popsection(a: Assembling, text: str, col: int) -> None:
    """``.popsection``."""
    if not a.section_stack:
        raise a.error(".popsection without .pushsection", col + 1)
    cur, prev = a.section_stack.pop()
    a.b.current = cur
    a.previous = prev


# --- symbols ---------------------------------------------------------------------


def _names(a: Assembling, text: str, col: int) -> list[Symbol]:
    rest, base = _args(a, text, col)
    if not rest:
        raise a.error("expected a symbol name", base + 1)
    return [a.b.register(a.b.symbol(_name(a, t, base + off))) for t, off in _split(rest)]


def _binding(bind: int) -> Callable[[Assembling, str, int], None]:
    def handler(a: Assembling, text: str, col: int) -> None:
        for sym in _names(a, text, col):
            sym.binding = bind

    return handler


def _visibility(vis: int) -> Callable[[Assembling, str, int], None]:
    def handler(a: Assembling, text: str, col: int) -> None:
        for sym in _names(a, text, col):
            sym.other = (sym.other & ~3) | vis

    return handler


def d_type(a: Assembling, text: str, col: int) -> None:
    """``.type sym, @function``."""
    rest, base = _args(a, text, col)
    args = _split(rest)
    if len(args) != 2:
        raise a.error("expected '.type symbol, @type'", base + 1)
    sym = a.b.register(a.b.symbol(_name(a, args[0][0], base + args[0][1])))
    tname = args[1][0].lstrip("@%").strip('"').lower()
    if tname not in _TYPES:
        raise a.error(f"unsupported symbol type '{args[1][0]}'", base + args[1][1] + 1)
    sym.type = _TYPES[tname]


def d_size(a: Assembling, text: str, col: int) -> None:
    """``.size sym, expr`` (evaluated at the end)."""
    rest, base = _args(a, text, col)
    args = _split(rest)
    if len(args) != 2:
        raise a.error("expected '.size symbol, expression'", base + 1)
    sym = a.b.symbol(_name(a, args[0][0], base + args[0][1]))
    sym.size = _expr(a, args[1][0], base + args[1][1])
    sym.size_where = a.here(base + args[1][1] + 1)


def d_set(a: Assembling, text: str, col: int) -> None:
    """``.set sym, expr`` / ``.equ``."""
    rest, base = _args(a, text, col)
    args = _split(rest)
    if len(args) != 2:
        raise a.error("expected '.set symbol, expression'", base + 1)
    sym = a.b.register(a.b.symbol(_name(a, args[0][0], base + args[0][1])))
    _assign_value(a, sym, _expr(a, args[1][0], base + args[1][1]), base + 1)


def _assign_value(a: Assembling, sym: Symbol, v: Value, column: int) -> None:
    if sym.defined:
        raise a.error(f"symbol '{sym.name}' is already defined", column)
    try:
        r = a.b.resolve(v, None)
    except FixupError:
        r = v
    if r.a is None and r.b is None:
        sym.absolute, sym.offset, sym.variable = True, r.c, None
        return
    sym.variable = v


def d_comm(a: Assembling, text: str, col: int) -> None:
    """``.comm sym, size[, align]`` and ``.lcomm sym, size``."""
    rest, base = _args(a, text, col)
    args = _split(rest)
    local = text.split(None, 1)[0].lower() == ".lcomm"
    if len(args) not in (2, 3) or (local and len(args) != 2):
        raise a.error("expected 'symbol, size[, alignment]'", base + 1)
    sym = a.b.register(a.b.symbol(_name(a, args[0][0], base + args[0][1])))
    size = _const(a, args[1][0], base + args[1][1])
    align = _const(a, args[2][0], base + args[2][1]) if len(args) == 3 else 1
    if local:
        sym.binding = w.STB_LOCAL
    if sym.binding is None:
        sym.binding = w.STB_GLOBAL
    sym.type = w.STT_OBJECT
    sym.size = Value(None, None, size)
    if sym.binding == w.STB_LOCAL:
        keep = a.b.current
        a.b.section(".bss", w.SHT_NOBITS, w.SHF_ALLOC | w.SHF_WRITE)
        a.b.align_to(max(align, 1), 0)
        a.b.define(sym)
        a.b.emit(bytes(size))
        a.b.current = keep
    else:
        sym.common = (size, max(align, 1))


# --- data ------------------------------------------------------------------------


def _data(size: int) -> Callable[[Assembling, str, int], None]:
    def handler(a: Assembling, text: str, col: int) -> None:
        rest, base = _args(a, text, col)
        fmt = (">" if a.big_endian else "<") + {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
        limit = 1 << (8 * size)
        for part, off in _split(rest):
            column = base + off + 1
            if _PLAIN_INT.match(part):  # most data is plain numbers: no expression parser
                value = parse_int(part.lstrip("+-"))
                value = -value if part[0] == "-" else value
                if not -(limit >> 1) <= value < limit:
                    raise a.error(f"value {value} does not fit in {size} byte(s)", column)
                try:
                    a.b.emit(struct.pack(fmt, value & (limit - 1)))
                except ValueError as e:
                    raise a.error(str(e), column) from None
                continue
            v = _expr(a, part, base + off)
            try:
                r = a.b.resolve(v, None)
            except FixupError:
                r = v
            if r.a is None and r.b is None:
                if not -(limit >> 1) <= r.c < limit:
                    raise a.error(f"value {r.c} does not fit in {size} byte(s)", column)
                try:
                    a.b.emit(struct.pack(fmt, r.c & (limit - 1)))
                except ValueError as e:
                    raise a.error(str(e), column) from None
                continue
            if size not in (4, 8):
                raise a.error(f"a {size}-byte value cannot name a symbol on BPF", column)
            offset = a.b.emit(bytes(size))
            a.b.fixup(FK_DATA, offset, v, size, a.here(column))

    return handler


def _leb(signed: bool) -> Callable[[Assembling, str, int], None]:
    def handler(a: Assembling, text: str, col: int) -> None:
        rest, base = _args(a, text, col)
        for part, off in _split(rest):
            v = _const(a, part, base + off)
            a.b.emit(w.sleb128(v) if signed else w.uleb128(v))

    return handler


def _ascii(zero: bool) -> Callable[[Assembling, str, int], None]:
    def handler(a: Assembling, text: str, col: int) -> None:
        rest, base = _args(a, text, col)
        for part, off in _split(rest):
            data = _string(a, part, base + off)
            a.b.emit(data + (b"\0" if zero else b""))

    return handler


def d_zero(a: Assembling, text: str, col: int) -> None:
    """``.zero n[, fill]`` / ``.space`` / ``.skip``."""
    rest, base = _args(a, text, col)
    args = _split(rest)
    if len(args) > 2 or not args[0][0]:
        raise a.error("expected 'size[, fill]'", base + 1)
    n = _const(a, args[0][0], base + args[0][1])
    fill = _const(a, args[1][0], base + args[1][1]) if len(args) == 2 else 0
    if n < 0:
        raise a.error("size must not be negative", base + 1)
    try:
        a.b.emit(bytes([fill & 0xFF]) * n)
    except ValueError as e:
        raise a.error(str(e), base + 1) from None


def d_fill(a: Assembling, text: str, col: int) -> None:
    """``.fill repeat[, size[, value]]``."""
    rest, base = _args(a, text, col)
    args = _split(rest)
    repeat = _const(a, args[0][0], base + args[0][1])
    size = _const(a, args[1][0], base + args[1][1]) if len(args) > 1 else 1
    value = _const(a, args[2][0], base + args[2][1]) if len(args) > 2 else 0
    if size not in (1, 2, 4, 8) or repeat < 0:
        raise a.error("unsupported .fill size or repeat", base + 1)
    item = (value & ((1 << (8 * min(size, 4))) - 1)).to_bytes(
        min(size, 4), "big" if a.big_endian else "little"
    )
    if size == 8:
        item = item + bytes(4) if not a.big_endian else bytes(4) + item
    a.b.emit(item * repeat)


def _align(pow2: bool) -> Callable[[Assembling, str, int], None]:
    def handler(a: Assembling, text: str, col: int) -> None:
        rest, base = _args(a, text, col)
        args = _split(rest)
        if not args[0][0]:
            raise a.error("expected an alignment", base + 1)
        n = _const(a, args[0][0], base + args[0][1])
        align = 1 << n if pow2 else n
        if align <= 0 or align & (align - 1) or (pow2 and n > 32):
            raise a.error("alignment must be a power of 2", base + 1)
        fill = None
        if len(args) > 1 and args[1][0]:
            fill = _const(a, args[1][0], base + args[1][1])
        max_skip = _const(a, args[2][0], base + args[2][1]) if len(args) > 2 else 0
        try:
            a.b.align_to(align, fill, max_skip)
        except ValueError as e:
            raise a.error(str(e), base + 1) from None

    return handler


# --- files, addrsig, cfi, ident ----------------------------------------------------


def d_file(a: Assembling, text: str, col: int) -> None:
    """``.file "name"`` (a FILE symbol) or ``.file N ...`` (a line-table file)."""
    rest, base = _args(a, text, col)
    if rest[:1].isdigit():
        dwarf.file_directive(a, rest, base)
        return
    name = _string(a, rest, base).decode("utf-8", "replace")
    a.b.files.append((name, 0 if not a.b.files else len(a.b.registered)))


def d_addrsig(a: Assembling, text: str, col: int) -> None:
    """``.addrsig``: write an ``.llvm_addrsig`` section."""
    if a.b.addrsig is None:
        a.b.addrsig = []


def d_addrsig_sym(a: Assembling, text: str, col: int) -> None:
    """``.addrsig_sym sym``."""
    rest, base = _args(a, text, col)
    sym = a.b.symbol(_name(a, rest, base))
    if a.b.addrsig is None:
        a.b.addrsig = []
    a.b.addrsig.append(sym)


def d_ident(a: Assembling, text: str, col: int) -> None:
    """``.ident "text"``: a string in ``.comment``."""
    rest, base = _args(a, text, col)
    data = _string(a, rest, base)
    keep = a.b.current
    exists = (".comment", "") in a.b.by_name
    a.b.section(".comment", w.SHT_PROGBITS, w.SHF_MERGE | w.SHF_STRINGS, 1)
    a.b.emit((b"" if exists else b"\0") + data + b"\0")
    a.b.current = keep


HANDLERS: dict[str, Callable[[Assembling, str, int], None]] = {
    ".section": d_section,
    ".text": _simple_section(".text"),
    ".data": _simple_section(".data"),
    ".bss": _simple_section(".bss"),
    ".rodata": _simple_section(".rodata"),
    ".previous": d_previous,
    ".pushsection": d_pushsection,
    ".popsection": d_popsection,
    ".globl": _binding(w.STB_GLOBAL),
    ".global": _binding(w.STB_GLOBAL),
    ".weak": _binding(w.STB_WEAK),
    ".local": _binding(w.STB_LOCAL),
    ".hidden": _visibility(2),
    ".protected": _visibility(3),
    ".internal": _visibility(1),
    ".type": d_type,
    ".size": d_size,
    ".set": d_set,
    ".equ": d_set,
    ".comm": d_comm,
    ".lcomm": d_comm,
    ".ascii": _ascii(False),
    ".asciz": _ascii(True),
    ".string": _ascii(True),
    ".zero": d_zero,
    ".space": d_zero,
    ".skip": d_zero,
    ".fill": d_fill,
    ".p2align": _align(True),
    ".p2alignw": _align(True),
    ".p2alignl": _align(True),
    ".align": _align(False),
    ".balign": _align(False),
    ".uleb128": _leb(False),
    ".sleb128": _leb(True),
    ".file": d_file,
    ".loc": dwarf.loc_directive,
    ".addrsig": d_addrsig,
    ".addrsig_sym": d_addrsig_sym,
    ".cfi_startproc": dwarf.cfi_startproc,
    ".cfi_endproc": dwarf.cfi_endproc,
    ".cfi_sections": dwarf.cfi_sections,
    ".ident": d_ident,
}
for _n, _s in _DATA_SIZES.items():
    HANDLERS[_n] = _data(_s)
for _c in (
    "def_cfa",
    "def_cfa_offset",
    "def_cfa_register",
    "offset",
    "rel_offset",
    "restore",
    "remember_state",
    "restore_state",
    "adjust_cfa_offset",
    "personality",
    "lsda",
    "undefined",
    "same_value",
    "register",
    "escape",
    "signal_frame",
    "return_column",
    "window_save",
):
    HANDLERS[".cfi_" + _c] = dwarf.cfi_other
