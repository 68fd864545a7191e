"""The fields of an instruction's bytes, decoded for people and re-encodable by tools.

Each :class:`Field` carries the number the bytes hold (``value``) and how to read it
(``text``).  Putting the numbers back together -- ``opcode = class | size | mode`` (or
``class | operation | source``), ``dst``, ``src``, ``off``, ``imm`` (and ``imm_hi`` for
``lddw``) -- gives back the original bytes; a property test checks exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpfkit.isa.encoding import (
    SIZE_BYTES,
    AluOp,
    Class,
    JmpOp,
    Mode,
    Size,
)
from bpfkit.isa.insn import Insn, pack_regs
from bpfkit.isa.table import Op

_CLASS_TEXT = {
    Class.LD: "LD: wide/legacy loads",
    Class.LDX: "LDX: load from memory into a register",
    Class.ST: "ST: store an immediate to memory",
    Class.STX: "STX: store a register to memory",
    Class.ALU: "ALU: 32-bit arithmetic",
    Class.JMP: "JMP: 64-bit jumps, calls, exit",
    Class.JMP32: "JMP32: 32-bit compares",
    Class.ALU64: "ALU64: 64-bit arithmetic",
}


@dataclass(frozen=True, slots=True)
class Field:
    """One decoded field: its name, the number in the bytes, and what it means."""

    name: str
    value: int
    text: str

    @property
    def short(self) -> str:
        """A compact form for one-line displays: ``class LD``, ``off -24``, ``dst r1``."""
        if self.name in ("class", "operation", "size", "mode", "source"):
            return f"{self.name} {self.text.split(': ', 1)[1].split(':')[0].split(' (')[0]}"
        if self.name == "opcode":
            return f"opcode {self.value:#04x}"
        if self.name in ("imm64", "next_raw"):
            return f"{self.name} {self.value:#x}"
        if self.name in ("dst", "src"):
            return f"{self.name} {self.text.split('nibble: ', 1)[1].split(' (')[0].split(' = ')[0]}"
        if self.name == "off":
            return f"off {self.value}" + (f" ({self.value & 0xFFFF:#06x})" if self.value else "")
        v = self.value & 0xFFFFFFFF
        return f"{self.name} {self.value}" + (f" ({v:#x})" if not -10 < self.value < 10 else "")


def _nbytes(n: int) -> str:
    return "1 byte" if n == 1 else f"{n} bytes"


def _hex16(v: int) -> str:
    return f"{v & 0xFFFF:#06x}"


def decode_fields(insn: Insn, op: Op | None, big_endian: bool = False) -> tuple[Field, ...]:
    """All fields of ``insn``: opcode and its parts, registers, offset, immediate(s)."""
    code = insn.opcode
    cls = Class(code & 0x07)
    fields = [
        Field("opcode", code, f"byte 0 = {code:#04x} = {code:08b}b"),
        Field("class", int(cls), f"low 3 bits {int(cls):#x}: {_CLASS_TEXT[cls]}"),
    ]
    if cls in (Class.ALU, Class.ALU64, Class.JMP, Class.JMP32):
        opbits = code & 0xF0
        names = AluOp if cls in (Class.ALU, Class.ALU64) else JmpOp
        try:
            opname = names(opbits).name
        except ValueError:
            opname = "undefined"
        fields.append(Field("operation", opbits, f"high 4 bits {opbits:#04x}: {opname}"))
        srcbit = code & 0x08
        if cls in (Class.ALU, Class.ALU64) and opbits == AluOp.END:
            meaning = (
                ("X: to big-endian" if srcbit else "K: to little-endian")
                if cls is Class.ALU
                else "K: unconditional byte swap"
            )
        else:
            meaning = "X: the operand is register src" if srcbit else "K: the operand is imm"
        fields.append(Field("source", srcbit, f"bit 3 = {srcbit >> 3}: {meaning}"))
    else:
        size = code & 0x18
        mode = code & 0xE0
        fields.append(
            Field(
                "size",
                size,
                f"bits 3-4 {size:#04x}: {Size(size).name} ({_nbytes(SIZE_BYTES[Size(size)])})",
            )
        )
        try:
            mname = Mode(mode).name
        except ValueError:
            mname = "undefined mode"
        fields.append(Field("mode", mode, f"high 3 bits {mode:#04x}: {mname}"))
    regs = pack_regs(insn.dst, insn.src, big_endian)
    if big_endian:
        where_dst, where_src = "high", "low"
    else:
        where_dst, where_src = "low", "high"
    uses = op.uses if op else frozenset({"dst", "src", "off", "imm"})
    fields.append(Field("dst", insn.dst, f"byte 1 = {regs:#04x}, {where_dst} nibble: r{insn.dst}"))
    fields.append(
        Field("src", insn.src, f"byte 1 = {regs:#04x}, {where_src} nibble: " + _src_text(insn, op))
    )
    fields.append(
        Field(
            "off",
            insn.off,
            f"bytes 2-3 = {_hex16(insn.off)}: signed 16-bit {insn.off}",
        )
    )
    fields.append(
        Field(
            "imm",
            insn.imm,
            f"bytes 4-7 = {insn.imm & 0xFFFFFFFF:#010x}: signed 32-bit {insn.imm}",
        )
    )
    if insn.width == 2:
        fields.append(
            Field(
                "imm_hi",
                insn.imm_hi,
                f"bytes 12-15 = {insn.imm_hi & 0xFFFFFFFF:#010x}: the upper half of the "
                "64-bit immediate",
            )
        )
        fields.append(
            Field(
                "imm64",
                insn.imm64,
                f"imm_hi << 32 | imm = {insn.imm64:#018x}",
            )
        )
        if insn.next_raw:
            fields.append(
                Field(
                    "next_raw",
                    insn.next_raw,
                    "bytes 8-11 (second slot's opcode, registers, offset) should be zero",
                )
            )
    # Mark fields the instruction does not use, so a reader knows a value there is junk.
    out = []
    for f in fields:
        if f.name in ("dst", "src", "off", "imm") and f.name not in uses and op is not None:
            disc = getattr(op, f.name, None)
            if disc is None:
                note = " (unused, must be 0)" if f.value else " (unused)"
                f = Field(f.name, f.value, f.text + note)
            else:
                f = Field(f.name, f.value, f.text + " (selects this instruction form)")
        out.append(f)
    return tuple(out)


def _src_text(insn: Insn, op: Op | None) -> str:
    if op is not None and op.kind.value == "lddw":
        return f"{insn.src} = pseudo source ({op.key})"
    if op is not None and op.kind.value == "call":
        return f"{insn.src} = call kind ({op.key})"
    if op is not None and "src" not in op.uses and op.src is None:
        return str(insn.src)
    return f"r{insn.src}"


def reencode(fields: dict[str, int]) -> Insn:
    """The instruction the numeric fields describe (the inverse of :func:`decode_fields`)."""
    parts = ("operation", "source") if "operation" in fields else ("size", "mode")
    opcode = fields["class"] | fields[parts[0]] | fields[parts[1]]
    return Insn(
        opcode,
        fields["dst"],
        fields["src"],
        fields["off"],
        fields["imm"],
        fields.get("imm_hi", 0),
        fields.get("next_raw", 0),
    )
