"""Where an instruction of a linked program comes from: its function and source line.

:func:`program_view` links a program of an object (as the loader does, without map fds)
and keeps its instructions by slot index, the functions placed in it and the line_info
records of ``.BTF.ext`` remapped to the linked program's instruction indices, so that an
explanation names the source line (C with ``-g``) or, without line info (Rust, assembly),
the function and the instruction.  Surrounding lines are read from the source file when
it is on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bpfkit.errors import BpfkitError
from bpfkit.isa.insn import Insn
from bpfkit.obj.relocate import Extern, Linked, extern_symbols, link, remap_ext_records
from bpfkit.obj.spec import MapSpec, ObjectSpec, RelocKind
from bpfkit.verify.log import Source


@dataclass
class ProgramView:
    """A linked program seen by the explainer."""

    name: str
    section: str
    insns: dict[int, Insn]  # slot index -> instruction
    functions: list[tuple[int, str]]  # (first slot, function name), sorted
    lines: dict[int, Source] = field(default_factory=dict)  # slot -> line_info
    search: list[Path] = field(default_factory=list)  # directories to look for sources in
    linked: Linked | None = None
    maps: dict[int, MapSpec] = field(default_factory=dict)  # pseudo fd in lddw -> map
    data: dict[int, str] = field(default_factory=dict)  # pseudo fd -> global data section
    data_sizes: dict[str, int] = field(default_factory=dict)  # section -> bytes
    global_funcs: set[int] = field(default_factory=set)  # first slots of global sub-programs

    def function_of(self, idx: int) -> str:
        """The name of the function instruction ``idx`` belongs to."""
        name = self.name
        for start, fname in self.functions:
            if start <= idx:
                name = fname
        return name

    def function_start(self, idx: int) -> int:
        """The first slot of the function holding ``idx``."""
        return max((s for s, _ in self.functions if s <= idx), default=0)

    def source_of(self, idx: int) -> Source | None:
        """The line_info of ``idx`` (the nearest record at or before it, same function)."""
        lo = self.function_start(idx)
        best = max((k for k in self.lines if lo <= k <= idx), default=None)
        return None if best is None else self.lines[best]

    def context(self, src: Source, around: int = 2) -> list[tuple[int, str]]:
        """Lines ``src.line - around`` .. ``src.line + around`` of the source file, if it
        can be found; else just the line line_info carries."""
        path = Path(src.file)
        cands = [path] if path.is_absolute() else [d / path for d in self.search]
        cands += [d / path.name for d in self.search]
        for c in cands:
            try:
                text = c.read_text(errors="replace").splitlines()
            except OSError:
                continue
            lo, hi = max(src.line - around, 1), min(src.line + around, len(text))
            if lo <= src.line <= len(text):
                return [(n, text[n - 1]) for n in range(lo, hi + 1)]
        return [(src.line, src.text)]


def program_view(obj: ObjectSpec, name: str) -> ProgramView:
    """The linked program ``name`` of ``obj`` with its functions and line info."""
    # Pseudo fds stand for the maps: 1.. for maps, 1<<20.. for global data sections;
    # externs (kconfig, ksym, kfunc) resolve to a typeless 0 or an unknown kfunc.
    maps = {m.name: i + 1 for i, m in enumerate(obj.maps)}
    sections = sorted(
        {
            r.symbol_section
            for p in obj.programs
            for r in p.relocations
            if r.kind is RelocKind.GLOBAL_DATA and r.symbol_section
        }
    )
    data = {sec: (1 << 20) + i for i, sec in enumerate(sections)}
    externs = {
        sym: Extern("kfunc" if called else "addr", 0) for sym, called in extern_symbols(obj).items()
    }
    linked = link(obj, name, map_fds=maps, data_fds=data, externs=externs)
    insns: dict[int, Insn] = {}
    slot = 0
    for insn in linked.insns:
        insns[slot] = insn
        slot += insn.width
    funcs = sorted((p.start, p.spec.name) for p in linked.functions)
    view = ProgramView(name, linked.section, insns, funcs, linked=linked)
    view.maps = {fd: m for m in obj.maps for n, fd in maps.items() if n == m.name}
    view.data = {fd: sec for sec, fd in data.items()}
    view.data_sizes = {sec.name: sec.size for sec in obj.sections if sec.name in data}
    base = Path(obj.path).resolve().parent if obj.path else Path.cwd()
    view.search = [base, Path.cwd(), base.parent]
    if obj.btf and obj.btf_ext:
        try:
            from bpfkit.btf import parse_btf, parse_btf_ext
            from bpfkit.btf.types import Func

            btf = parse_btf(obj.btf, big_endian=obj.big_endian)
            ext = parse_btf_ext(obj.btf_ext, big_endian=obj.big_endian, btf=btf)
        except BpfkitError:
            return view  # no usable line info: functions and instructions only
        # Sub-programs of global linkage: the kernel verifies them apart from their callers.
        for start, fname in funcs:
            found = [t for t in btf.find_all(fname) if isinstance(t, Func)]
            if start and found and found[0].linkage == 1:
                view.global_funcs.add(start)
        recs = {
            sec: [(r.insn_off, Source(r.source.strip(), r.file_name, r.line)) for r in rs]
            for sec, rs in ext.line_info.items()
        }
        for idx, src in remap_ext_records(linked, recs):
            if src.line:
                view.lines[idx] = src
    return view
