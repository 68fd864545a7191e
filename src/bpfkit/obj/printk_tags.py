"""Tagging the lines a run's programs print: pure rewriting of ``bpf_trace_printk`` calls.

A line ``bpf_trace_printk`` writes does not say which program wrote it, and every tracefs
instance receives every program's lines: two ``bpfkit run`` of one object at once would
each show both runs' lines.  So, when ``bpfkit run`` loads (only then: ``bpfkit load``,
the VM, dump and explain see the object as it is), each call whose format is known before
loading (:func:`bpfkit.events.printk.printk_sites` finds them with explain's value
analysis) prints a copy of its format that starts with the run's tag, ``[bpfkit PID] ``::

    call bpf_trace_printk          ->   call pc+N          (a bpf-to-bpf call of a stub)
    ...                                 ...
                                        stub: r1 = map_value(.printk_tags) + OFF ll
                                              r2 = LEN
                                              call bpf_trace_printk
                                              exit

The tagged formats live in one small read-only (frozen) array map, the data section
:data:`TAG_SECTION`; the stubs are appended to the linked program.  ``r3``-``r5`` (the
printed values, or vprintk's data and its length) reach the stub untouched, as a
bpf-to-bpf call passes them.  A program loaded with BTF func_info needs a record (and a
line_info record) at each new function: the stubs get a static FUNC ``long
bpfkit_printk(void)`` (:func:`stub_types`, appended to the object's BTF) and the line of
the call they replace.  The reader (:class:`bpfkit.events.printk.TagFilter`) keeps the
lines with its own tag and strips it.

API::

    PrintkSite(section, function, slot, helper, format, why)   one call, found statically
    PrintkTagging(tag, sites): .taggable, .untaggable, .data() -> DataSpec of the formats
    run_tag(pid, serial=0) -> "[bpfkit PID] " (or "[bpfkit PID.SERIAL] ")
    stub_types(first_id) -> the INT, FUNC_PROTO and FUNC the stubs' func_info names
    tag_program(insns, functions, map_refs, func_info, line_info, tagging, func_id)
        -> TaggedProgram: the rewritten instructions, map_refs and ext records
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bpfkit.errors import ObjectError
from bpfkit.isa.insn import Insn
from bpfkit.obj.spec import DataSpec

if TYPE_CHECKING:  # bpfkit.btf is imported only for objects that have BTF
    from bpfkit.btf import types as T

TAG_SECTION = ".printk_tags"
STUB_NAME = "bpfkit_printk"
CALL, EXIT, LDDW, MOV_IMM = 0x85, 0x95, 0x18, 0xB7
PSEUDO_CALL, PSEUDO_MAP_VALUE = 1, 2
_FUNC_INFO = struct.Struct("<II")
_LINE_INFO = struct.Struct("<IIII")
STUB_SLOTS = 5  # lddw (2 slots), mov, call, exit
MAX_FORMAT = 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class PrintkSite:
    """One ``bpf_trace_printk``/``bpf_trace_vprintk`` call of an object's function.

    ``section`` and ``function`` (the function's byte offset in it) name the function,
    ``slot`` the call's instruction slot inside it, ``helper`` the helper id; ``format``
    is the format's bytes without the NUL, or None with ``why`` it cannot be known before
    loading (such a call prints untagged lines)."""

    section: str
    function: int
    slot: int
    helper: int
    format: bytes | None
    why: str = ""


def run_tag(pid: int, serial: int = 0) -> str:
    """The tag of a run: ``[bpfkit PID] `` (``[bpfkit PID.SERIAL] `` for a process's second
    and later sessions): short, and says whose line it is to anyone reading trace_pipe."""
    return f"[bpfkit {pid}.{serial}] " if serial else f"[bpfkit {pid}] "


@dataclass(frozen=True, slots=True)
class PrintkTagging:
    """A run's tag and the printk calls of the object it loads."""

    tag: str
    sites: tuple[PrintkSite, ...]

    def __post_init__(self) -> None:
        if not self.tag or "%" in self.tag or not all(32 <= ord(c) < 127 for c in self.tag):
            raise ObjectError(
                f"printk tag {self.tag!r}: use printable ASCII without '%' "
                "(bpf_trace_printk refuses other bytes in a format)"
            )

    @property
    def taggable(self) -> tuple[PrintkSite, ...]:
        """The calls whose lines will carry the tag."""
        return tuple(s for s in self.sites if s.format is not None)

    @property
    def untaggable(self) -> tuple[PrintkSite, ...]:
        """The calls whose lines will not (their format is not known before loading)."""
        return tuple(s for s in self.sites if s.format is None)

    def formats(self) -> dict[bytes, int]:
        """Each distinct tagged format (NUL included) and its offset in :meth:`data`."""
        out: dict[bytes, int] = {}
        size = 0
        for s in self.taggable:
            assert s.format is not None
            text = self.tag.encode() + s.format + b"\0"
            if text not in out:
                out[text] = size
                size += len(text)
        return out

    def data(self) -> DataSpec | None:
        """The read-only data section holding the tagged formats (None: nothing to tag)."""
        formats = self.formats()
        if not formats:
            return None
        blob = b"".join(formats)
        if len(blob) > MAX_FORMAT:
            raise ObjectError(f"printk formats of {len(blob)} bytes cannot be tagged")
        return DataSpec(TAG_SECTION, -1, len(blob), blob, readonly=True)


def stub_types(first_id: int) -> tuple[list[T.Type], int]:
    """The types the stubs' func_info names, numbered from ``first_id``: ``long``, the
    prototype ``long (void)`` and the static FUNC ``bpfkit_printk``; and the FUNC's id."""
    from bpfkit.btf import types as T

    long_id, proto_id, func_id = first_id, first_id + 1, first_id + 2
    types: list[T.Type] = [
        T.Int(long_id, "long", 8, T.INT_SIGNED, 0, 64),
        T.FuncProto(proto_id, "", long_id, ()),
        T.Func(func_id, STUB_NAME, proto_id, T.Linkage.STATIC),
    ]
    return types, func_id


@dataclass(frozen=True, slots=True)
class TaggedProgram:
    """A linked program with its printk calls going through the stubs."""

    insns: tuple[Insn, ...]
    map_refs: tuple[tuple[int, str], ...]
    func_info: bytes
    line_info: bytes
    tagged: int  # calls rewritten


def _slots(insns: Sequence[Insn]) -> list[int]:
    out, slot = [], 0
    for i in insns:
        out.append(slot)
        slot += i.width
    return out


def _line_at(line_info: bytes, slot: int) -> bytes | None:
    """The line_info record (without its insn_off) in force at ``slot``."""
    found = None
    for off in range(0, len(line_info) - _LINE_INFO.size + 1, _LINE_INFO.size):
        insn_off = struct.unpack_from("<I", line_info, off)[0]
        if insn_off > slot:
            break
        found = line_info[off + 4 : off + _LINE_INFO.size]
    return found


def tag_program(
    insns: Sequence[Insn],
    functions: Sequence[tuple[str, int, int]],
    map_refs: Sequence[tuple[int, str]],
    func_info: bytes,
    line_info: bytes,
    tagging: PrintkTagging,
    func_id: int | None,
) -> TaggedProgram:
    """Route the tagged printk calls of one linked program through appended stubs.

    ``functions`` lists ``(section, byte offset, start slot)`` of each function placed in
    the linked program (:attr:`bpfkit.obj.relocate.Linked.functions`); ``func_id`` is the
    stubs' FUNC type id when the program carries func_info (:func:`stub_types`).  A site
    whose instruction is not the helper call it names is left alone."""
    formats = tagging.formats()
    out = list(insns)
    refs = list(map_refs)
    slot_of = _slots(out)
    index_of = {s: i for i, s in enumerate(slot_of)}
    end = slot_of[-1] + out[-1].width if out else 0
    stubs: dict[tuple[bytes, int], int] = {}  # (tagged format, helper) -> stub's first slot
    stub_sites: list[int] = []  # the call slot each stub's line_info is copied from
    tagged = 0
    for section, function, start in functions:
        for site in tagging.taggable:
            if (site.section, site.function) != (section, function):
                continue
            slot = start + site.slot
            i = index_of.get(slot)
            if i is None or out[i] != Insn(CALL, imm=site.helper):
                continue
            assert site.format is not None
            text = tagging.tag.encode() + site.format + b"\0"
            key = (text, site.helper)
            if key not in stubs:
                stubs[key] = end + STUB_SLOTS * len(stubs)
                stub_sites.append(slot)
            out[i] = Insn(CALL, src=PSEUDO_CALL, imm=stubs[key] - (slot + 1))
            tagged += 1
    for (text, helper), _first in stubs.items():
        refs.append((len(out), TAG_SECTION))
        out += [
            Insn(LDDW, 1, PSEUDO_MAP_VALUE, 0, 0, formats[text]),  # descriptor bound later
            Insn(MOV_IMM, 2, 0, 0, len(text)),
            Insn(CALL, imm=helper),
            Insn(EXIT),
        ]
    new_func, new_line = func_info, line_info
    if stubs and func_info:
        if func_id is None:
            raise ObjectError("printk tagging: the program has func_info but no stub FUNC type")
        new_func += b"".join(_FUNC_INFO.pack(first, func_id) for first in stubs.values())
    if stubs and line_info:
        for first, site_slot in zip(stubs.values(), stub_sites, strict=True):
            rest = _line_at(line_info, site_slot)
            if rest is not None:
                new_line += struct.pack("<I", first) + rest
    return TaggedProgram(tuple(out), tuple(sorted(refs)), new_func, new_line, tagged)
