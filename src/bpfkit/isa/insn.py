"""Instructions as values: :class:`Insn`, and the 8-byte slot encoding.

An instruction is ``(opcode, dst, src, off, imm)``.  ``lddw`` (opcode 0x18) takes two
8-byte slots; it is still one :class:`Insn`, with ``width == 2`` and the upper half of its
64-bit immediate in ``imm_hi``.  The second slot's other fields (which must be zero) are
kept in ``next_raw`` so that every byte survives a round trip.

Slot layout, little-endian (``bpfel``)::

    byte 0   opcode
    byte 1   dst (low nibble) | src (high nibble)     -- big-endian objects: dst high, src low
    byte 2-3 off  (signed 16-bit)
    byte 4-7 imm  (signed 32-bit)
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from bpfkit.errors import IsaError

SLOT = 8
LDDW_OPCODE = 0x18

_LE = struct.Struct("<BBhi")
_BE = struct.Struct(">BBhi")


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def pack_regs(dst: int, src: int, big_endian: bool = False) -> int:
    """Byte 1 of a slot: ``dst`` and ``src`` (0..15) as the two nibbles of the byte order."""
    return (dst << 4) | src if big_endian else (src << 4) | dst


def unpack_regs(byte: int, big_endian: bool = False) -> tuple[int, int]:
    """``(dst, src)`` from byte 1 of a slot (the inverse of :func:`pack_regs`)."""
    return (byte >> 4, byte & 0xF) if big_endian else (byte & 0xF, byte >> 4)


@dataclass(frozen=True, slots=True)
class Insn:
    """One eBPF instruction (``lddw`` included, as a single 16-byte instruction)."""

    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    imm_hi: int = 0
    next_raw: int = 0  # the second lddw slot's first four bytes (opcode, regs, off): normally 0

    def __post_init__(self) -> None:
        if not 0 <= self.opcode <= 0xFF:
            raise IsaError(f"opcode {self.opcode:#x} is not a byte")
        if not (0 <= self.dst <= 15 and 0 <= self.src <= 15):
            raise IsaError(f"register numbers must be 0..15, got dst={self.dst} src={self.src}")
        if not -0x8000 <= self.off <= 0x7FFF:
            raise IsaError(f"offset {self.off} does not fit in a signed 16-bit field")
        if not -0x80000000 <= self.imm <= 0x7FFFFFFF:
            raise IsaError(f"immediate {self.imm} does not fit in a signed 32-bit field")
        if not -0x80000000 <= self.imm_hi <= 0x7FFFFFFF:
            raise IsaError(f"immediate {self.imm_hi} does not fit in a signed 32-bit field")

    @property
    def width(self) -> int:
        """Number of 8-byte slots: 2 for ``lddw``, else 1."""
        return 2 if self.opcode == LDDW_OPCODE else 1

    @property
    def imm64(self) -> int:
        """The 64-bit immediate of ``lddw`` (unsigned), or ``imm`` as unsigned 64-bit."""
        if self.opcode == LDDW_OPCODE:
            return ((self.imm_hi & 0xFFFFFFFF) << 32) | (self.imm & 0xFFFFFFFF)
        return self.imm & 0xFFFFFFFFFFFFFFFF

    @staticmethod
    def lddw(dst: int, value: int, src: int = 0) -> Insn:
        """A ``lddw dst, value`` instruction (``value`` taken modulo 2**64)."""
        value &= 0xFFFFFFFFFFFFFFFF
        return Insn(LDDW_OPCODE, dst, src, 0, _s32(value), _s32(value >> 32))

    def encode(self, big_endian: bool = False) -> bytes:
        """The instruction's 8 (or 16) bytes."""
        regs = pack_regs(self.dst, self.src, big_endian)
        first = (_BE if big_endian else _LE).pack(self.opcode, regs, self.off, self.imm)
        if self.opcode != LDDW_OPCODE:
            return first
        hi = struct.pack(">i" if big_endian else "<i", self.imm_hi)
        return first + self.next_raw.to_bytes(4, "big" if big_endian else "little") + hi


# Fast construction of already-valid instructions: the slots' own setters skip the frozen
# ``__setattr__`` and ``__post_init__``'s range checks, which decoded fields (unpacked from
# fixed-width struct fields) always pass.  Twice as fast as ``Insn(...)``, which matters when
# a disassembler decodes hundreds of thousands of instructions.
_new = object.__new__
_set_opcode = Insn.__dict__["opcode"].__set__
_set_dst = Insn.__dict__["dst"].__set__
_set_src = Insn.__dict__["src"].__set__
_set_off = Insn.__dict__["off"].__set__
_set_imm = Insn.__dict__["imm"].__set__
_set_imm_hi = Insn.__dict__["imm_hi"].__set__
_set_next_raw = Insn.__dict__["next_raw"].__set__


def trusted_insn(
    opcode: int, dst: int, src: int, off: int, imm: int, imm_hi: int = 0, next_raw: int = 0
) -> Insn:
    """An :class:`Insn` built without validation, for fields that are in range by
    construction (unpacked from an encoding: opcode a byte, registers nibbles, off a signed
    16-bit, imm and imm_hi signed 32-bit, next_raw an unsigned 32-bit field).

    Equal to (and hashing like) ``Insn(...)`` with the same fields; never use it for values
    from a user, whose ranges are what ``Insn``'s checks are for.
    """
    insn: Insn = _new(Insn)
    _set_opcode(insn, opcode)
    _set_dst(insn, dst)
    _set_src(insn, src)
    _set_off(insn, off)
    _set_imm(insn, imm)
    _set_imm_hi(insn, imm_hi)
    _set_next_raw(insn, next_raw)
    return insn


def decode(data: bytes | bytearray | memoryview, pos: int = 0, big_endian: bool = False) -> Insn:
    """Decode the instruction at byte ``pos`` of ``data``.

    Raises :class:`IsaError` when the bytes end inside the instruction.  Any opcode
    decodes (use :func:`bpfkit.isa.table.lookup` to know whether it is a valid one).
    """
    if pos < 0 or pos + SLOT > len(data):
        raise IsaError(f"truncated instruction at byte {pos}: {len(data) - pos} bytes left, need 8")
    opcode, regs, off, imm = (_BE if big_endian else _LE).unpack_from(data, pos)
    dst, src = unpack_regs(regs, big_endian)
    if opcode != LDDW_OPCODE:
        return trusted_insn(opcode, dst, src, off, imm)
    if pos + 2 * SLOT > len(data):
        raise IsaError(f"truncated lddw at byte {pos}: its second 8-byte slot is missing")
    next_raw = int.from_bytes(bytes(data[pos + 8 : pos + 12]), "big" if big_endian else "little")
    (imm_hi,) = struct.unpack_from(">i" if big_endian else "<i", data, pos + 12)
    return trusted_insn(opcode, dst, src, off, imm, imm_hi, next_raw)


def decode_all(data: bytes | bytearray | memoryview, big_endian: bool = False) -> list[Insn]:
    """Decode a whole instruction stream (its length must be a multiple of 8)."""
    if len(data) % SLOT:
        raise IsaError(f"instruction stream of {len(data)} bytes is not a multiple of 8")
    return [insn for _, insn in iter_insns(data, big_endian)]


def iter_insns(
    data: bytes | bytearray | memoryview, big_endian: bool = False
) -> Iterator[tuple[int, Insn]]:
    """Yield ``(slot_index, insn)`` for each instruction of a stream."""
    pos = 0
    n = len(data)
    while pos + SLOT <= n:
        insn = decode(data, pos, big_endian)
        yield pos // SLOT, insn
        pos += SLOT * insn.width
    if pos != n and pos < n:
        raise IsaError(f"instruction stream ends with {n - pos} stray bytes")


def encode_all(insns: list[Insn], big_endian: bool = False) -> bytes:
    """Encode a list of instructions into bytes."""
    return b"".join(i.encode(big_endian) for i in insns)
