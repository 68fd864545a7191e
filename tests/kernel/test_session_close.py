"""Session.close() detaches links and removes the trace instance together
(:func:`bpfkit.kernel.session.close_together`): every closer runs, at the same time, and
errors do not stop the others."""

from __future__ import annotations

import threading
from functools import partial

import pytest

from bpfkit.kernel.session import close_together


def test_closers_run_at_the_same_time() -> None:
    # Each closer waits until all three are inside: run one after another, the first
    # would time out (BrokenBarrierError) and the others with it.
    barrier = threading.Barrier(3, timeout=10)
    done: list[int] = []

    def closer(i: int) -> None:
        barrier.wait()
        done.append(i)

    assert close_together([partial(closer, i) for i in range(3)]) == []
    assert sorted(done) == [0, 1, 2]


def test_a_failing_closer_does_not_stop_the_others() -> None:
    done: list[str] = []

    def fail() -> None:
        raise OSError("EBADF")

    errors = close_together([fail, lambda: done.append("b"), fail, lambda: done.append("d")])
    assert sorted(done) == ["b", "d"]
    assert [str(e) for e in errors] == ["EBADF", "EBADF"]


@pytest.mark.parametrize("n", [0, 1])
def test_none_or_one_closer_needs_no_thread(n: int) -> None:
    threads: list[str] = []
    closers = [lambda: threads.append(threading.current_thread().name)] * n
    assert close_together(closers) == []
    assert threads == [threading.main_thread().name] * n


def test_without_new_threads_closers_run_in_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """At interpreter shutdown no thread can start: every closer still runs."""

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    done: list[int] = []
    assert close_together([partial(done.append, i) for i in range(3)]) == []
    assert done == [0, 1, 2]
