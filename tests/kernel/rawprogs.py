"""Small BPF programs as raw instructions, for the attach tests.

Each builder returns the program's bytes; map fds go into ``lddw`` with src=1
(BPF_PSEUDO_MAP_FD), as a loader would put them.  Opcodes are the ISA's
(BPF_ALU64|BPF_MOV|BPF_K = 0xb7, ...), spelled out so the tests do not depend on the
assembler.
"""

from __future__ import annotations

import struct

# Helper ids (include/uapi/linux/bpf.h).
MAP_LOOKUP_ELEM = 1
MAP_UPDATE_ELEM = 2
TRACE_PRINTK = 6
GET_CURRENT_PID_TGID = 14
PERF_EVENT_OUTPUT = 25
RINGBUF_OUTPUT = 130


def ins(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One 8-byte instruction."""
    return struct.pack("<BBhI", op, (src << 4) | dst, off, imm & 0xFFFFFFFF)


def lddw_map(dst: int, map_fd: int) -> bytes:
    """``dst = map`` (two slots, src=1)."""
    return ins(0x18, dst, 1, 0, map_fd) + ins(0, 0, 0, 0, 0)


def mov_imm(dst: int, imm: int) -> bytes:
    return ins(0xB7, dst, imm=imm)


def mov_reg(dst: int, src: int) -> bytes:
    return ins(0xBF, dst, src)


def add_imm(dst: int, imm: int) -> bytes:
    return ins(0x07, dst, imm=imm)


def call(helper: int) -> bytes:
    return ins(0x85, imm=helper)


EXIT = ins(0x95)


def ret(value: int) -> bytes:
    """``r0 = value; exit``."""
    return mov_imm(0, value) + EXIT


def count_key0(map_fd: int, verdict: int = 0) -> bytes:
    """Add 1 to the u64 at key 0 of an array map; return ``verdict``."""
    return (
        mov_imm(1, 0)
        + ins(0x63, 10, 1, -4)  # *(u32 *)(r10 - 4) = r1
        + lddw_map(1, map_fd)
        + mov_reg(2, 10)
        + add_imm(2, -4)
        + call(MAP_LOOKUP_ELEM)
        + ins(0x15, 0, 0, 2, 0)  # if r0 == 0 goto +2
        + mov_imm(1, 1)
        + ins(0xDB, 0, 1, 0, 0)  # lock *(u64 *)(r0 + 0) += r1
        + ret(verdict)
    )


def count_per_tgid(map_fd: int) -> bytes:
    """Count events per process (tgid) in a hash map u32 -> u64."""
    return (
        call(GET_CURRENT_PID_TGID)
        + ins(0x77, 0, imm=32)  # r0 >>= 32
        + ins(0x63, 10, 0, -4)  # *(u32 *)(r10 - 4) = r0
        + lddw_map(1, map_fd)
        + mov_reg(2, 10)
        + add_imm(2, -4)
        + call(MAP_LOOKUP_ELEM)
        + ins(0x15, 0, 0, 3, 0)  # if r0 == 0 goto +3 (insert)
        + mov_imm(1, 1)
        + ins(0xDB, 0, 1, 0, 0)  # lock *(u64 *)(r0 + 0) += r1
        + ins(0x05, off=10)  # goto +10 (exit)
        + mov_imm(1, 1)
        + ins(0x7B, 10, 1, -16)  # *(u64 *)(r10 - 16) = r1
        + lddw_map(1, map_fd)
        + mov_reg(2, 10)
        + add_imm(2, -4)
        + mov_reg(3, 10)
        + add_imm(3, -16)
        + mov_imm(4, 1)  # BPF_NOEXIST: another CPU may have inserted meanwhile
        + call(MAP_UPDATE_ELEM)
        + ret(0)
    )


def ringbuf_pid_tgid(map_fd: int) -> bytes:
    """Write the current pid_tgid (8 bytes) to a ring buffer."""
    return (
        call(GET_CURRENT_PID_TGID)
        + ins(0x7B, 10, 0, -8)  # *(u64 *)(r10 - 8) = r0
        + lddw_map(1, map_fd)
        + mov_reg(2, 10)
        + add_imm(2, -8)
        + mov_imm(3, 8)
        + mov_imm(4, 0)
        + call(RINGBUF_OUTPUT)
        + ret(0)
    )


def perf_pid_tgid(map_fd: int) -> bytes:
    """``bpf_perf_event_output(ctx, map, BPF_F_CURRENT_CPU, &pid_tgid, 8)``."""
    return (
        mov_reg(6, 1)  # keep ctx
        + call(GET_CURRENT_PID_TGID)
        + ins(0x7B, 10, 0, -8)  # *(u64 *)(r10 - 8) = r0
        + mov_reg(1, 6)
        + lddw_map(2, map_fd)
        + ins(0xB4, 3, imm=-1)  # w3 = -1: BPF_F_CURRENT_CPU (0xffffffff)
        + mov_reg(4, 10)
        + add_imm(4, -8)
        + mov_imm(5, 8)
        + call(PERF_EVENT_OUTPUT)
        + ret(0)
    )


def printk(message: bytes) -> bytes:
    """``bpf_trace_printk(message)`` (message up to 15 bytes, NUL added)."""
    text = message + b"\0"
    assert len(text) <= 16
    text = text.ljust(16, b"\0")
    lo, hi = struct.unpack("<QQ", text)
    out = b""
    for off, value in ((-16, lo), (-8, hi)):
        out += ins(0x18, 1, 0, 0, value & 0xFFFFFFFF) + ins(0, 0, 0, 0, value >> 32)
        out += ins(0x7B, 10, 1, off)  # *(u64 *)(r10 + off) = r1
    return (
        out
        + mov_reg(1, 10)
        + add_imm(1, -16)
        + mov_imm(2, len(message) + 1)
        + call(TRACE_PRINTK)
        + ret(0)
    )
