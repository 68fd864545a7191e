"""``Fd``: a file descriptor owned by one Python object.

``close()`` is idempotent; ``with Fd(n) as fd:`` closes on exit; a finalizer closes a
descriptor its owner forgot and emits a :class:`ResourceWarning` (an error under the test
suite's ``-W error``), so leaks are loud in tests and harmless in production.

Owners build on two mixins: :class:`Closing` (the with-block calls ``close()``: links,
tracefs entries, readers, sessions, collections) and :class:`FdOwner` (``.fd``,
``.closed`` and ``close()`` over one ``Fd`` in ``self._fd``: maps, programs).

:class:`HeldSignals` makes creating and owning atomic with respect to Ctrl-C: inside
``with held:`` a SIGINT/SIGTERM is recorded instead of raising between a resource's
creation and the registration of its cleanup; ``held.deliver()`` raises it afterwards.
"""

from __future__ import annotations

import os
import signal
import threading
import warnings
from types import FrameType

from bpfkit.errors import KernelError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any, TypeVar

    _C = TypeVar("_C", bound="Closing")


class Closing:
    """Mixin for owners of kernel resources: ``with obj:`` calls ``obj.close()`` on exit."""

    __slots__ = ()

    def close(self) -> None:
        """Release what the object owns (again is a no-op)."""
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Fd(Closing):
    """An owned file descriptor (a BPF map, program, link, BTF object or perf event)."""

    __slots__ = ("_fd", "_what")

    def __init__(self, fd: int, what: str = "fd") -> None:
        if fd < 0:
            raise ValueError(f"invalid file descriptor {fd}")
        self._fd = fd
        self._what = what

    @property
    def fd(self) -> int:
        """The descriptor number; raises KernelError once closed."""
        if self._fd < 0:
            raise KernelError(f"{self._what} is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        """True after :meth:`close` or :meth:`detach`."""
        return self._fd < 0

    def fileno(self) -> int:
        """The descriptor number (for select/epoll)."""
        return self.fd

    def __int__(self) -> int:
        return self.fd

    def close(self) -> None:
        """Close the descriptor (again is a no-op)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def detach(self) -> int:
        """Give up ownership: return the number without closing it."""
        fd, self._fd = self.fd, -1
        return fd

    def dup(self) -> Fd:
        """An independent descriptor for the same kernel object (close-on-exec)."""
        return Fd(os.dup(self.fd), self._what)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            self._fd = -1
            try:
                os.close(fd)
            except OSError:
                pass
            warnings.warn(f"unclosed {self._what} {fd}", ResourceWarning, stacklevel=1)

    def __repr__(self) -> str:
        state = "closed" if self._fd < 0 else str(self._fd)
        return f"Fd({self._what}: {state})"


class FdOwner(Closing):
    """Mixin for a kernel object owning one :class:`Fd` in ``self._fd`` (a map, a program):
    ``.fd``, ``.closed``, ``close()`` and the with-block."""

    __slots__ = ()
    _fd: Fd

    @property
    def fd(self) -> int:
        """The file descriptor (KernelError once closed)."""
        return self._fd.fd

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._fd.closed

    def close(self) -> None:
        """Close the descriptor (again is a no-op)."""
        self._fd.close()


class HeldSignals:
    """Hold SIGINT and SIGTERM (those with Python handlers) over a critical section.

    ::

        held = HeldSignals()
        with held:
            ...create resources and register their cleanup...
        held.deliver()  # the held signal's handler runs now (KeyboardInterrupt, ...)

    In a thread other than the main one nothing is held (signals are handled by the main
    thread only, so they do not interrupt this one).  Nested holds pass a signal outward.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.pending: list[tuple[int, FrameType | None]] = []
        self._old: dict[int, Any] = {}

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        self.pending.append((signum, frame))

    def __enter__(self) -> HeldSignals:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                handler = signal.getsignal(s)
                if callable(handler):
                    self._old[s] = signal.signal(s, self._hold)
        return self

    def __exit__(self, *exc: object) -> None:
        old, self._old = self._old, {}
        for s, handler in old.items():
            signal.signal(s, handler)
        self._handlers = old

    def deliver(self) -> None:
        """Run the original handler of the first held signal (if one came)."""
        if self.pending:
            signum, frame = self.pending[0]
            self.pending.clear()
            handler = getattr(self, "_handlers", {}).get(signum)
            if callable(handler):
                handler(signum, frame)
