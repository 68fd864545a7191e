"""trace_pipe lines: pure parsing, and a stream with a line count and a time limit.

A line of ``trace_pipe`` (with the default ``context-info`` and ``irq-info`` options)::

    <task>-<pid> [(<tgid>)] [<cpu>] <flags> <timestamp>: <event>: <message>
        bash-1234    [001] d..31  1234.567890: bpf_trace_printk: hello from rust

The task name may hold spaces and dashes (the pid is the last ``-NUMBER`` before the
cpu), ``(tgid)`` appears with the ``record-tgid`` option and the flags column disappears
with ``noirq-info``.  When the ring buffer overflows, the kernel writes
``CPU:N [LOST M EVENTS]``: such lines are counted (:attr:`TraceStats.lost`), not shown.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

_LINE = re.compile(
    r"^\s*(?P<task>.*?)-(?P<pid>\d+)\s+"
    r"(?:\(\s*(?P<tgid>[\d-]+)\)\s+)?"
    r"\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>[^\s\d][^\s]{2,5})\s+)?"
    r"(?P<ts>\d+\.\d+):\s(?P<rest>.*)$"
)
_LOST = re.compile(r"^\s*CPU:(?P<cpu>\d+) \[LOST (?P<n>\d+) EVENTS\]\s*$")
_EVENT = re.compile(r"^(?P<event>[\w.]+):\s?(?P<msg>.*)$", re.S)


@dataclass(frozen=True, slots=True)
class TraceLine:
    """One parsed trace_pipe line."""

    task: str
    pid: int
    cpu: int
    flags: str
    timestamp: float
    event: str  # "bpf_trace_printk", a tracepoint name, or "" if none
    message: str
    tgid: int | None = None

    def render(self) -> str:
        """The line as bpfkit shows it: ``task-pid [cpu] timestamp: message``."""
        return f"{self.task}-{self.pid} [{self.cpu:03d}] {self.timestamp:.6f}: {self.message}"


@dataclass(frozen=True, slots=True)
class Lost:
    """A ``CPU:N [LOST M EVENTS]`` line."""

    cpu: int
    count: int


def parse_line(line: str) -> TraceLine | Lost | None:
    """Parse one trace_pipe line; None for blank lines and ones of no known form."""
    line = line.rstrip("\n")
    if not line.strip():
        return None
    m = _LOST.match(line)
    if m:
        return Lost(int(m["cpu"]), int(m["n"]))
    m = _LINE.match(line)
    if not m:
        return None
    rest = m["rest"]
    ev = _EVENT.match(rest)
    event, message = (ev["event"], ev["msg"]) if ev else ("", rest)
    tgid = m["tgid"]
    return TraceLine(
        task=m["task"],
        pid=int(m["pid"]),
        cpu=int(m["cpu"]),
        flags=m["flags"] or "",
        timestamp=float(m["ts"]),
        event=event,
        message=message,
        tgid=int(tgid) if tgid and tgid.strip("-") else None,
    )


@dataclass
class TraceStats:
    """What a stream saw: lines shown, lost events, lines ``keep`` refused (other
    programs'), lines that did not parse."""

    shown: int = 0
    lost: int = 0
    skipped: int = 0
    unparsed: list[str] = field(default_factory=list)


class LineSource(Protocol):
    """What :func:`stream` reads from (a :class:`bpfkit.kernel.tracefs.TracePipe`)."""

    def lines(self, timeout: float | None) -> Iterable[str]:
        """Raw lines available within ``timeout`` seconds."""


def stream(
    source: LineSource,
    *,
    count: int | None = None,
    duration: float | None = None,
    keep: Callable[[TraceLine], bool] | None = None,
    select: Callable[[TraceLine], TraceLine | None] | None = None,
    stats: TraceStats | None = None,
    poll_interval: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[TraceLine]:
    """Parsed lines from ``source`` until ``count`` lines were yielded or ``duration`` passed.

    ``keep`` filters lines (only kept lines count); ``select`` filters and rewrites them
    (None: not shown; a session strips its tag so); ``stats`` collects lost-event counts.
    ``count=0`` yields nothing; ``None`` means no limit.  Ctrl-C raises
    KeyboardInterrupt out of the iteration, so a ``with`` block around it cleans up.
    """
    stats = stats if stats is not None else TraceStats()
    if count is not None and count <= 0:
        return
    deadline = None if duration is None else clock() + duration
    while True:
        timeout = poll_interval
        if deadline is not None:
            left = deadline - clock()
            if left <= 0:
                return
            timeout = min(timeout, left)
        raw_lines = source.lines(timeout)
        for raw in raw_lines:
            parsed = parse_line(raw)
            if parsed is None:
                if raw.strip():
                    stats.unparsed.append(raw)
                continue
            if isinstance(parsed, Lost):
                stats.lost += parsed.count
                continue
            if keep is not None and not keep(parsed):
                stats.skipped += 1
                continue
            if select is not None:
                chosen = select(parsed)
                if chosen is None:
                    stats.skipped += 1
                    continue
                parsed = chosen
            stats.shown += 1
            yield parsed
            if count is not None and stats.shown >= count:
                return
