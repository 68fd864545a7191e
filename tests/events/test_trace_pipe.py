"""trace_pipe line parsing and streaming, on synthetic lines (no kernel)."""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given
from hypothesis import strategies as st

from bpfkit.events.trace_pipe import Lost, TraceLine, TraceStats, parse_line, stream

# Lines as kernel 6.x prints them (captured on this machine's kernel, then varied by the
# tracefs options that change the layout: record-tgid, noirq-info).
REAL = " memfd:sealed-91-3221    [000] ...21   606.931310: bpf_trace_printk: hello from rust"


def test_real_line() -> None:
    line = parse_line(REAL)
    assert line == TraceLine(
        task="memfd:sealed-91",
        pid=3221,
        cpu=0,
        flags="...21",
        timestamp=606.931310,
        event="bpf_trace_printk",
        message="hello from rust",
    )


def test_task_with_spaces_and_tgid() -> None:
    line = parse_line(
        "   Web Content-12-4567  (   4500) [013] d.h1. 12.000001: sys_enter: NR 0 (3)"
    )
    assert isinstance(line, TraceLine)
    assert (line.task, line.pid, line.tgid, line.cpu) == ("Web Content-12", 4567, 4500, 13)
    assert (line.event, line.message) == ("sys_enter", "NR 0 (3)")


def test_unknown_tgid_and_no_irq_info() -> None:
    line = parse_line("          <idle>-0       (-------) [001]   77.5: bpf_trace_printk: x")
    assert isinstance(line, TraceLine)
    assert (line.task, line.pid, line.tgid, line.flags) == ("<idle>", 0, None, "")
    assert line.message == "x"


def test_message_keeps_colons_and_empty_message() -> None:
    line = parse_line("a-1 [000] .... 1.000000: bpf_trace_printk: key: value: 3")
    assert isinstance(line, TraceLine) and line.message == "key: value: 3"
    line = parse_line("a-1 [000] .... 1.000000: bpf_trace_printk: ")
    assert isinstance(line, TraceLine) and line.message == ""


def test_lost_blank_and_garbage() -> None:
    assert parse_line("CPU:1 [LOST 42 EVENTS]") == Lost(1, 42)
    assert parse_line("") is None
    assert parse_line("   \n") is None
    assert parse_line("##### CPU 1 buffer started ####") is None


class FakePipe:
    """A line source that hands out one batch of lines per read and advances a clock."""

    def __init__(self, batches: list[list[str]], clock: list[float]) -> None:
        self.batches, self.clock, self.timeouts = batches, clock, []  # type: ignore[var-annotated]

    def lines(self, timeout: float | None) -> Iterator[str]:
        self.timeouts.append(timeout)
        if self.batches:
            yield from self.batches.pop(0)
        else:
            self.clock[0] += timeout or 0.0


def _line(pid: int, msg: str) -> str:
    return f"task-{pid} [000] d..1. 1.{pid:06d}: bpf_trace_printk: {msg}"


def test_stream_counts_filters_and_tallies_lost() -> None:
    now = [0.0]
    pipe = FakePipe(
        [
            [_line(1, "a"), "", "CPU:0 [LOST 3 EVENTS]", _line(2, "skip")],
            ["garbage", _line(3, "b"), _line(4, "c"), _line(5, "d")],
        ],
        now,
    )
    stats = TraceStats()
    got = list(
        stream(pipe, count=3, keep=lambda t: t.message != "skip", stats=stats, clock=lambda: now[0])
    )
    assert [t.message for t in got] == ["a", "b", "c"]
    assert (stats.shown, stats.lost, stats.unparsed) == (3, 3, ["garbage"])
    assert pipe.batches == []  # the "d" line was read but not yielded: count reached


def test_stream_duration_and_zero_count() -> None:
    now = [100.0]
    pipe = FakePipe([[_line(1, "a")]], now)
    got = list(stream(pipe, duration=1.0, clock=lambda: now[0], poll_interval=0.3))
    assert [t.message for t in got] == ["a"]
    assert now[0] >= 101.0 and all(t is not None and t <= 0.3 for t in pipe.timeouts)
    assert list(stream(FakePipe([[_line(1, "a")]], now), count=0)) == []


_task = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=16
).filter(lambda s: s.strip() == s)


@given(
    task=_task,
    pid=st.integers(0, 4_000_000),
    cpu=st.integers(0, 511),
    msg=st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=40),
)
def test_render_parse_round_trip(task: str, pid: int, cpu: int, msg: str) -> None:
    text = f"{task}-{pid} [{cpu:03d}] d..1. 123.456789: bpf_trace_printk: {msg}"
    line = parse_line(text)
    assert isinstance(line, TraceLine)
    assert (line.task, line.pid, line.cpu, line.message) == (task, pid, cpu, msg.rstrip("\n"))
