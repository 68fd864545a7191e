"""Reading a kernel verifier log (``log_level`` 1 or 2) into data.

The log is the verifier's walk: each instruction it processes, ``N: (op) text`` with the
registers it touched after ``;`` (6.x prints those at level 1 too); ``; source @ file:line``
before the first instruction of each source line (when line_info was loaded); ``from A to
B: state`` where it resumes a branch it pushed at instruction A; and at the end the reason
for a rejection and statistics.  :func:`parse_log` keeps the instructions in order, the
source line of each, the register state after each, and reconstructs the path that led to
the failing instruction: the last segment, then the segments that pushed it, back to 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_INSN = re.compile(r"^(\d+): \(([0-9a-f]{2})\) (.*?)(?:\s+; (.*))?$")
_STATE = re.compile(r"^(\d+): (R\d.*|frame\d.*)$")
_FROM = re.compile(r"^from (\d+) to (\d+): (.*)$")
_SOURCE = re.compile(r"^; (.*) @ (.+):(\d+)$")
_NOT_REASON = re.compile(
    r"^(processed \d+ insns|verification time|stack depth|max_states_per_insn|peak_states|"
    r"mark_read|total_states|-- END PROG LOAD LOG --|(cur|old) state:|\d+: |from \d+ to|; |"
    r"mark_precise|func#|Func#|Validating|caller:|callee:|returning from|last_idx|"
    r"propagating|frame\d|parent |regs=|Global function|Live regs|\s)"
)


@dataclass(frozen=True, slots=True)
class Source:
    """A source position the log (or line_info) gives for an instruction."""

    text: str
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Step:
    """One instruction as the verifier processed it."""

    idx: int  # instruction index (8-byte slot)
    opcode: int
    text: str  # the kernel's disassembly: "r1 = *(u64 *)(r0 +0)"
    state: str  # registers after it: "R1=map_value(map=m,ks=4,vs=8)" ("" if not printed)


@dataclass
class VerifierLog:
    """A parsed log."""

    steps: list[Step] = field(default_factory=list)  # in the order the verifier walked them
    segment_starts: list[tuple[int, int, int]] = field(default_factory=list)  # (step, from, to)
    reason: str = ""  # the line saying why it was rejected ("" if it was accepted)
    reason_lines: list[str] = field(default_factory=list)  # that line and what follows it
    processed: int | None = None  # "processed N insns"
    sources: dict[int, Source] = field(default_factory=dict)  # insn -> line annotated before it
    known_path: list[Step] | None = None  # bpfkit's verifier knows its path exactly
    text: str = ""

    def source_of(self, idx: int) -> Source | None:
        """The source line of instruction ``idx``: the nearest annotation at or before it."""
        best = max((k for k in self.sources if k <= idx), default=None)
        return None if best is None else self.sources[best]

    @property
    def failing(self) -> Step | None:
        """The instruction the verifier was at when it gave up (the last one printed)."""
        return self.steps[-1] if self.steps and self.reason else None

    def entry_state(self, idx: int) -> str:
        """The state printed alone at instruction ``idx`` (``0: R1=ctx() R10=fp0``)."""
        for line in self.text.splitlines():
            m = _STATE.match(line)
            if m and int(m.group(1)) == idx:
                return m.group(2)
        return ""

    def path(self) -> list[Step]:
        """The steps of the path that led to the failing instruction, from instruction 0.

        The last segment starts where a branch pushed at instruction A resumed; the push
        happened on the latest earlier segment that went through A, up to that visit.
        """
        if self.known_path is not None:
            return self.known_path
        if not self.steps:
            return []
        bounds = [0] + [s for s, _, _ in self.segment_starts] + [len(self.steps)]
        froms = [None] + [(a, b) for _, a, b in self.segment_starts]
        segs = [(bounds[i], bounds[i + 1], froms[i]) for i in range(len(bounds) - 1)]
        out: list[Step] = []
        end = len(self.steps)
        k = len(segs) - 1
        seen = 0
        while k >= 0 and seen < 10_000:
            seen += 1
            lo, _, fr = segs[k]
            out[:0] = self.steps[lo:end]
            if fr is None:
                break
            a = fr[0]
            found = False
            for j in range(k - 1, -1, -1):
                jlo, jhi, _ = segs[j]
                hit = [i for i in range(jlo, min(jhi, end)) if self.steps[i].idx == a]
                if hit:
                    end, k, found = hit[-1] + 1, j, True
                    break
            if not found:
                break
        return out


def parse_log(text: str) -> VerifierLog:
    """Parse a verifier log (see the module docstring)."""
    out = VerifierLog(text=text)
    source: Source | None = None
    lines = text.splitlines()
    last_walk = max(
        (n for n, x in enumerate(lines) if _INSN.match(x) or _FROM.match(x)), default=-1
    )
    for n, raw in enumerate(lines):
        line = raw.rstrip()
        if m := _SOURCE.match(line):
            source = Source(m.group(1).strip(), m.group(2), int(m.group(3)))
            continue
        if m := _INSN.match(line):
            idx = int(m.group(1))
            if source is not None:
                out.sources.setdefault(idx, source)
                source = None
            out.steps.append(Step(idx, int(m.group(2), 16), m.group(3).strip(), m.group(4) or ""))
            continue
        if m := _FROM.match(line):
            out.segment_starts.append((len(out.steps), int(m.group(1)), int(m.group(2))))
            continue
        if m := re.match(r"^processed (\d+) insns", line):
            out.processed = int(m.group(1))
            continue
        if line and not _NOT_REASON.match(line) and not out.reason:
            # The first line that is none of the above with no instruction after it.
            if n > last_walk:
                out.reason = line.strip()
                out.reason_lines = [x for x in lines[n:] if x.strip()]
    return out
