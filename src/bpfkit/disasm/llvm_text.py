"""Instruction text in LLVM's C-like syntax, exactly as ``llvm-objdump-19 -d`` prints it.

Every text comes from the ``llvm`` template of the instruction's row in
:data:`bpfkit.isa.table.OPS`; this module only knows how LLVM 19's *decoder* departs from
the table, which depends on ``--mcpu``:

* ``v1``/``v2`` (and llvm-objdump's default, which decodes like ``v1``): loads and stores of
  1, 2 or 4 bytes name ``r`` registers; of the 32-bit atomics only ``lock ... +=`` decodes
  (any 32-bit atomic whose imm has the add operation nibble, fetch-add included, prints as
  the plain add); the other 32-bit atomics are ``<unknown>``.
* ``v3``/``v4``: the ``w`` registers of the templates, every atomic.
* at any ``--mcpu`` LLVM 19 ignores the fields an instruction's text does not show (except
  exit's imm), tells atomics apart by imm's operation nibble and fetch bit only, has no
  registers above r11, prints ``lddw`` with a non-zero src as ``ld_pseudo`` (dropping the
  high half of imm), and rejects an ``lddw`` with a non-zero offset after its first 8 bytes.
* load-acquire, store-release (LLVM 21) and ``gotox`` (LLVM 22) do not exist in LLVM 19
  (a 4- or 8-byte load-acquire is even taken for ``lock ... +=``).

bpfkit's default (``mcpu=None``) prints what llvm-objdump-19 prints by default, except that a
valid instruction it cannot decode, or decodes as another form, is printed as
``--mcpu=v4`` prints it, and when LLVM 19 has no text at all, as the table's template (the
text of LLVM 22 at ``--mcpu=v4``).  So bpfkit never prints ``<unknown>`` or a wrong text for a
valid instruction.  With ``mcpu=1..4`` the text is llvm-objdump-19's exactly.

Immediates are decimal unless ``imm_hex`` (llvm-objdump's ``--print-imm-hex``, its own
default for BPF; bpfkit's default is decimal, like ``--no-print-imm-hex``).

For whole-file listings, :func:`slot_plan` and :func:`lddw_plan` give the same texts as
:func:`render` straight from an instruction's fields, for the many encodings that differ
only in offset or immediate, without building an :class:`Insn` for each.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bpfkit.errors import IsaError
from bpfkit.isa.encoding import AtomicOp, Class, JmpOp, Mode, Size
from bpfkit.isa.insn import Insn
from bpfkit.isa.table import OPS, Kind, Op, forms, is_valid, lookup

UNKNOWN = "<unknown>"
"""What llvm-objdump prints for bytes it cannot decode."""

MCPUS = (1, 2, 3, 4)


def parse_mcpu(value: str | int | None) -> int | None:
    """``"v3"``, ``"3"`` or ``3`` -> 3; ``None`` stays ``None`` (bpfkit's default)."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text.startswith("v"):
        text = text[1:]
    if text in ("1", "2", "3", "4"):
        return int(text)
    if text in ("probe", "generic"):
        return 1  # llvm-objdump decodes "generic" and "probe" like v1
    raise IsaError(f"unknown --mcpu value {value!r}: use v1, v2, v3 or v4")


# --- immediates ------------------------------------------------------------------------


def _hex(v: int) -> str:
    # LLVM's MCInstPrinter::formatHex (C style): -0x10 for negatives.
    return f"-0x{-v:x}" if v < 0 else f"0x{v:x}"


def _s64(v: int) -> int:
    return v - (1 << 64) if v & (1 << 63) else v


# --- template compilation ---------------------------------------------------------------

# A formatter turns an instruction into its text (numbers already decimal or hex).
Formatter = Callable[[Insn], str]

_FIELD = re.compile(r"\{(\w+)\}")


def _target(i: Insn, n: Callable[[int], str]) -> str:
    # JMP jumps by off (16 bits); gotol (JMP32 JA) by imm.
    return _distance(i.imm if i.opcode == (Class.JMP32 | JmpOp.JA) else i.off, n)


def _distance(v: int, n: Callable[[int], str]) -> str:
    return f"+{n(v)}" if v >= 0 else n(v)


def _field(name: str, wide: bool) -> str:
    """The Python expression (in an f-string) for one template placeholder; ``N`` formats
    a number, ``i`` is the instruction."""
    regs = {
        "rd": "r{i.dst}",
        "wd": ("r" if wide else "w") + "{i.dst}",
        "rs": "r{i.src}",
        "ws": ("r" if wide else "w") + "{i.src}",
    }
    if name in regs:
        return regs[name]
    numbers = {
        "imm": "i.imm",
        "imm64": "S64(i.imm64)",
        "pseudo": "i.src",
        "imm_lo": "i.imm & 0xFFFFFFFF",
        "as_dst": "(i.imm >> 16) & 0xFFFF",
        "as_src": "i.imm & 0xFFFF",
    }
    if name in numbers:
        return "{N(" + numbers[name] + ")}"
    if name == "off":
        # (double quotes: the f-string itself is single-quoted; Python < 3.12)
        return '{"+ " + N(i.off) if i.off >= 0 else "- " + N(-i.off)}'
    if name == "target":
        return "{T(i, N)}"
    raise ValueError(f"unknown template field {{{name}}}")


def compile_template(template: str, *, wide: bool = False, imm_hex: bool = False) -> Formatter:
    """Turn an ``Op.llvm`` template into a fast formatter (one f-string, no loop per call).

    ``wide`` prints the ``{wd}``/``{ws}`` placeholders as ``r`` registers (LLVM 19's
    decoding of narrow loads and stores below ``--mcpu=v3``); ``imm_hex`` prints numbers
    as llvm-objdump's ``--print-imm-hex`` does.
    """
    body = []
    pos = 0
    for m in _FIELD.finditer(template):
        body.append(_escape(template[pos : m.start()]))
        body.append(_field(m.group(1), wide))
        pos = m.end()
    body.append(_escape(template[pos:]))
    env = {"N": _hex if imm_hex else str, "S64": _s64, "T": _target}
    # Only our table's template text (escaped) and the expressions above go into it.
    fmt: Formatter = eval("lambda i: f'" + "".join(body) + "'", env)  # noqa: S307
    return fmt


# A formatter of a one-slot instruction's fields: (dst, src, off, imm) -> text.
FieldFormatter = Callable[[int, int, int, int], str]

# (i.imm64 first: i.imm is a prefix of it)
_FIELD_NAMES = (("i.imm64", "m"), ("i.dst", "d"), ("i.src", "s"), ("i.off", "o"), ("i.imm", "m"))


def _compile_fields(
    template: str, *, wide: bool, imm_hex: bool, gotol: bool
) -> FieldFormatter | None:
    """:func:`compile_template`'s formatter as a function of the fields of a one-slot
    instruction (no :class:`Insn` to build); ``gotol``: the jump distance is imm.  For
    ``lddw`` (whose template has ``{imm64}`` and no ``{imm}``), ``m`` is the 64-bit
    immediate.  None for a template with both."""
    body = []
    pos = 0
    if "{imm64}" in template and any(
        f in template for f in ("{imm}", "{imm_lo}", "{as_dst}", "{as_src}")
    ):
        return None  # m cannot be both immediates
    for m in _FIELD.finditer(template):
        name = m.group(1)
        body.append(_escape(template[pos : m.start()]))
        if name == "target":
            expr = "{D(" + ("m" if gotol else "o") + ", N)}"
        else:
            expr = _field(name, wide)
            for attr, var in _FIELD_NAMES:
                expr = expr.replace(attr, var)
        body.append(expr)
        pos = m.end()
    body.append(_escape(template[pos:]))
    env = {"N": _hex if imm_hex else str, "D": _distance, "S64": _s64}
    fmt: FieldFormatter = eval("lambda d, s, o, m: f'" + "".join(body) + "'", env)  # noqa: S307
    return fmt


def _escape(text: str) -> str:
    """``text`` as the literal part of a single-quoted f-string."""
    return (
        text.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("{", "{{")
        .replace("}", "}}")
    )


@dataclass(frozen=True, slots=True)
class _Form:
    """One way of printing a row: the row and whether narrow registers print as ``r``."""

    op: Op
    dec: Formatter  # text with decimal numbers
    hex: Formatter  # with --print-imm-hex numbers
    dst: bool  # the text names the dst register (LLVM 19 decodes only r0..r11)
    src: bool  # the text names the src register


def _form(op: Op, wide: bool) -> _Form:
    t = op.llvm
    return _Form(
        op,
        compile_template(t, wide=wide),
        compile_template(t, wide=wide, imm_hex=True),
        "{rd}" in t or "{wd}" in t,
        "{rs}" in t or "{ws}" in t,
    )


_NARROW_MEM = {
    Class.LDX | Mode.MEM | Size.B,
    Class.LDX | Mode.MEM | Size.H,
    Class.LDX | Mode.MEM | Size.W,
    Class.STX | Mode.MEM | Size.B,
    Class.STX | Mode.MEM | Size.H,
    Class.STX | Mode.MEM | Size.W,
    Class.STX | Mode.ATOMIC | Size.W,
}

_OP_BY_ID: dict[int, Op] = {id(op): op for op in OPS}


class _Forms(dict[int, _Form]):
    """``id(op) -> _Form``, compiled on first use: compiling every row's templates at
    import would cost every command that imports this module tens of milliseconds."""

    def __init__(self, wide_narrow_mem: bool) -> None:
        super().__init__()
        self.wide_narrow_mem = wide_narrow_mem

    def __missing__(self, key: int) -> _Form:
        op = _OP_BY_ID[key]
        form = self[key] = _form(op, self.wide_narrow_mem and op.opcode in _NARROW_MEM)
        return form


_FORM_V4 = _Forms(False)
_FORM_WIDE = _Forms(True)

# Rows LLVM 19 cannot decode at any --mcpu (their text is LLVM 22's).
_NOT_IN_LLVM19 = frozenset({Kind.LOAD_ACQ, Kind.STORE_REL, Kind.GOTOX})
# Kinds whose ``off`` LLVM 19's decoder does not look at (the table requires 0).
_OFF_IGNORED = frozenset({Kind.NEG, Kind.ENDIAN})
_ATOMIC_W = Class.STX | Mode.ATOMIC | Size.W


def _llvm19_matches(op: Op, insn: Insn, alu32: bool) -> bool:
    """Whether LLVM 19's decoder takes ``insn`` for the row ``op``.

    LLVM checks fewer bits than the table: fields an instruction's text does not show are
    ignored (except exit's imm), and atomics are told apart by imm's operation nibble
    (bits 4-7) and fetch bit (bit 0) only.  Measured against llvm-objdump-19 on every
    opcode byte with varied fields (tests/disasm/test_disasm.py keeps it so).
    """
    kind = op.kind
    if kind in _NOT_IN_LLVM19:
        return False
    if kind is Kind.ATOMIC:
        assert op.imm is not None
        if (insn.imm & 0xF0) != (op.imm & 0xF0):
            return False
        fetch = (insn.imm & 0xF) == 1
        if op.width == 32 and not alu32:
            # Without ALU32 only XADDW exists, and it ignores the fetch bit.
            return op.imm == AtomicOp.ADD
        if op.key in ("xchg", "cmpxchg"):
            return fetch
        return fetch == bool(op.imm & AtomicOp.FETCH)
    if op.off is not None and insn.off != op.off and kind not in _OFF_IGNORED:
        return False
    if op.imm is not None and insn.imm != op.imm:
        return False
    if op.src is not None:
        if kind is Kind.LDDW:
            if (insn.src == 0) != (op.src == 0):  # LD_imm64 or LD_pseudo (any src)
                return False
        elif kind not in (Kind.CALL, Kind.MAY_GOTO) and insn.src != op.src:
            return False
    return not (kind is Kind.EXIT and insn.imm != 0)


def llvm19_row(insn: Insn, alu32: bool) -> Op | None:
    """The row llvm-objdump-19 decodes ``insn`` as (``alu32``: ``--mcpu=v3``/``v4``)."""
    exact = lookup(insn)
    if exact is not None and _llvm19_matches(exact, insn, alu32):
        return exact
    for op in forms(insn.opcode):
        if _llvm19_matches(op, insn, alu32):
            return op
    return None


def _llvm19_form(insn: Insn, alu32: bool) -> _Form | None:
    op = llvm19_row(insn, alu32)
    if op is None:
        return None
    form = _FORM_V4[id(op)] if alu32 else _FORM_WIDE[id(op)]
    if (form.dst and insn.dst > 11) or (form.src and insn.src > 11):
        return None  # LLVM's register class has r0..r11 only
    return form


def format_insn(insn: Insn, *, imm_hex: bool = False, mcpu: str | int | None = None) -> str:
    """The text llvm-objdump prints for ``insn`` (without its jump-target comment).

    ``mcpu`` is ``None`` (bpfkit's default: llvm-objdump-19's default text, with the
    forms it cannot decode printed as ``--mcpu=v4`` or LLVM 22 print them) or ``"v1"`` ..
    ``"v4"`` (llvm-objdump-19 ``--mcpu=vN`` exactly, ``<unknown>`` included).
    """
    form = select_form(insn, parse_mcpu(mcpu))
    if form is None:
        return UNKNOWN
    return form.hex(insn) if imm_hex else form.dec(insn)


def _unused(op: Op) -> list[str]:
    """The fields ``op`` neither uses nor discriminates on (they must be zero)."""
    return [
        n for n in ("dst", "src", "off", "imm") if n not in op.uses and getattr(op, n, None) is None
    ]


def _unused_clear(op: Op) -> Callable[[Insn], bool]:
    """A test that the fields ``op`` does not use are zero (as ``reserved_nonzero``)."""
    names = _unused(op)
    if not names:
        return lambda i: True
    test: Callable[[Insn], bool] = eval(  # noqa: S307 - field names from the list above
        "lambda i: not (" + " or ".join(f"i.{n}" for n in names) + ")"
    )
    return test


class _Simple(dict[int, "Callable[[Insn], bool] | None"]):
    """``id(op) ->`` the row's unused-fields test, for the rows LLVM 19 decodes exactly as
    the table does when the instruction is valid: every kind but the atomics (imm nibble
    rules), lddw (ld_pseudo) and the LLVM 22-only ones (``None`` for those).  Compiled on
    first use, like :class:`_Forms`."""

    def __missing__(self, key: int) -> Callable[[Insn], bool] | None:
        op = _OP_BY_ID[key]
        simple = op.kind not in _NOT_IN_LLVM19 and op.kind not in (Kind.ATOMIC, Kind.LDDW)
        test = self[key] = _unused_clear(op) if simple else None
        return test


_SIMPLE = _Simple()

# The row of every opcode byte that has a single row with no discriminator (off, imm or
# src): lookup() of any instruction with that opcode is that row, so it need not be called.
_SOLE: dict[int, Op] = {}
for _op in OPS:
    if _op.off is None and _op.imm is None and _op.src is None and len(forms(_op.opcode)) == 1:
        _SOLE[_op.opcode] = _op

# lookup() of an instruction depends only on its opcode and the fields that some row of that
# opcode discriminates on (off, imm, src): which ones, by opcode, and lookup()'s answers
# by those fields, so that a disassembly calls lookup() once per distinct key.
_DISCRIMINATES: dict[int, tuple[bool, bool, bool]] = {
    opcode: (
        any(op.off is not None for op in forms(opcode)),
        any(op.imm is not None for op in forms(opcode)),
        any(op.src is not None for op in forms(opcode)),
    )
    for opcode in {op.opcode for op in OPS}
}
_LOOKUP: dict[tuple[int, int | None, int | None, int | None], Op | None] = {}


def _lookup(insn: Insn) -> Op | None:
    """``lookup(insn)``, remembered by the fields it depends on."""
    op = _SOLE.get(insn.opcode)
    if op is not None:
        return op
    disc = _DISCRIMINATES.get(insn.opcode)
    if disc is None:
        return None  # no row has this opcode
    key = (
        insn.opcode,
        insn.off if disc[0] else None,
        insn.imm if disc[1] else None,
        insn.src if disc[2] else None,
    )
    try:
        return _LOOKUP[key]
    except KeyError:
        if len(_LOOKUP) >= 1 << 16:
            _LOOKUP.clear()  # keys can hold any imm: bound the memory of a long-lived process
        op = _LOOKUP[key] = lookup(insn)
        return op


def select_form(insn: Insn, cpu: int | None) -> _Form | None:
    """How ``insn`` is printed at ``--mcpu=v{cpu}`` (``None``: bpfkit's default rule)."""
    op = _lookup(insn)
    if op is not None and insn.dst <= 10 and insn.src <= 10:
        unused_clear = _SIMPLE[id(op)]
        if unused_clear is not None and unused_clear(insn):
            return (_FORM_V4 if cpu is not None and cpu >= 3 else _FORM_WIDE)[id(op)]
    if cpu is not None:
        return _llvm19_form(insn, cpu >= 3)
    form = _llvm19_form(insn, False)
    if op is None or not is_valid(insn):
        return form  # bytes that are no instruction: as llvm-objdump-19 shows them
    if form is not None and form.op is op:
        return form
    v4 = _llvm19_form(insn, True)
    if v4 is not None and v4.op is op:
        return v4
    return _FORM_V4[id(op)]  # LLVM 19 has no text for it: LLVM 22's, the table's


_BRANCH_KINDS = frozenset({Kind.JA, Kind.JCOND, Kind.MAY_GOTO})
_GOTOL = Class.JMP32 | JmpOp.JA


# id(row) -> whether the jump distance is imm (gotol) rather than off, for the rows
# llvm-objdump follows; precomputed because Enum hashing is slow in a per-instruction path.
_BRANCH_IMM: dict[int, bool] = {
    id(op): op.opcode == _GOTOL for op in OPS if op.kind in _BRANCH_KINDS
}


def _jump(op: Op, insn: Insn) -> int | None:
    imm = _BRANCH_IMM.get(id(op))
    if imm is None:
        return None
    return insn.imm if imm else insn.off


def render(insn: Insn, cpu: int | None, imm_hex: bool) -> tuple[str, int | None]:
    """``(text, jump)``: the text of ``insn`` and, for jumps llvm-objdump follows (goto,
    gotol, conditional jumps, may_goto; not calls), the distance in 8-byte slots."""
    form = select_form(insn, cpu)
    if form is None:
        return UNKNOWN, None
    return (form.hex(insn) if imm_hex else form.dec(insn)), _jump(form.op, insn)


def branch_target(insn: Insn, address: int, mcpu: str | int | None = None) -> int | None:
    """Byte address a jump at byte ``address`` goes to, or None if ``insn`` is no jump."""
    form = select_form(insn, parse_mcpu(mcpu))
    off = None if form is None else _jump(form.op, insn)
    return None if off is None else address + 8 + off * 8


@dataclass(frozen=True, slots=True)
class SlotPlan:
    """How :func:`render` prints the one-slot instructions of one opcode and register
    pair, as a function of their ``off`` and ``imm``: when ``off_zero`` (``imm_zero``)
    the plan holds only for ``off == 0`` (``imm == 0``), else for any value."""

    text: FieldFormatter  # (dst, src, off, imm) -> the text render() gives
    off_zero: bool
    imm_zero: bool
    jump: int  # 0: no jump llvm-objdump follows; 1: it jumps by off; 2: by imm


_PLANS: dict[tuple[int, int, int, int | None, bool], SlotPlan | None] = {}
_FIELD_FORMS: dict[tuple[int, bool, bool], FieldFormatter | None] = {}


def slot_plan(opcode: int, dst: int, src: int, cpu: int | None, imm_hex: bool) -> SlotPlan | None:
    """The :class:`SlotPlan` of one-slot instructions with these fields, or None when
    their text depends on ``off`` or ``imm`` in other ways (a row picked by them, LLVM 19's
    decoder rules, ``lddw``): then use :func:`render`.

    A disassembler that meets many encodings differing only in ``off`` and ``imm`` (stack
    offsets, constants, jump distances) formats each without building an :class:`Insn`.
    """
    key = (opcode, dst, src, cpu, imm_hex)
    if key in _PLANS:
        return _PLANS[key]
    plan = _PLANS[key] = _slot_plan(opcode, dst, src, cpu, imm_hex)
    return plan


def _slot_plan(opcode: int, dst: int, src: int, cpu: int | None, imm_hex: bool) -> SlotPlan | None:
    disc = _DISCRIMINATES.get(opcode)
    if disc is None or disc[1] or dst > 10 or src > 10:
        return None  # no row, or the row depends on imm
    # imm does not pick the row: it is the one for off 0 (if off picks rows, the plan
    # holds for off 0 only), or for any off.
    op = lookup(Insn(opcode, dst, src))
    if op is None or _SIMPLE[id(op)] is None:
        return None  # select_form's rules beyond its fast path apply
    unused = _unused(op)
    if ("dst" in unused and dst) or ("src" in unused and src):
        return None
    wide = (cpu is None or cpu < 3) and op.opcode in _NARROW_MEM
    fkey = (id(op), wide, imm_hex)
    if fkey not in _FIELD_FORMS:
        gotol = op.opcode == _GOTOL
        _FIELD_FORMS[fkey] = _compile_fields(op.llvm, wide=wide, imm_hex=imm_hex, gotol=gotol)
    text = _FIELD_FORMS[fkey]
    if text is None:
        return None
    branch = _BRANCH_IMM.get(id(op))
    jump = 0 if branch is None else 2 if branch else 1
    return SlotPlan(text, disc[0] or "off" in unused, "imm" in unused, jump)


def lddw_plan(dst: int, cpu: int | None, imm_hex: bool) -> Callable[[int], str] | None:
    """For a plain ``lddw`` (src 0, off 0, the second slot's other fields 0) into ``dst``:
    its 64-bit immediate (unsigned) -> the text :func:`render` gives, or None."""
    if dst > 10:
        return None
    op = lookup(Insn.lddw(dst, 0))
    if op is None or op.kind is not Kind.LDDW:
        return None
    # Such an lddw is valid and LLVM 19 decodes it as the table's row at every --mcpu.
    fkey = (id(op), False, imm_hex)
    if fkey not in _FIELD_FORMS:
        _FIELD_FORMS[fkey] = _compile_fields(op.llvm, wide=False, imm_hex=imm_hex, gotol=False)
    text = _FIELD_FORMS[fkey]
    if text is None:
        return None
    return lambda value: text(dst, 0, 0, value)


__all__ = [
    "SlotPlan",
    "MCPUS",
    "UNKNOWN",
    "branch_target",
    "compile_template",
    "format_insn",
    "lddw_plan",
    "llvm19_row",
    "parse_mcpu",
    "render",
    "select_form",
    "slot_plan",
]
