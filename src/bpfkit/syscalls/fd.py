"""``Fd``: a file descriptor owned by one Python object.

``close()`` is idempotent; ``with Fd(n) as fd:`` closes on exit; a finalizer closes a
descriptor its owner forgot and emits a :class:`ResourceWarning` (an error under the test
suite's ``-W error``), so leaks are loud in tests and harmless in production.

Owners build on two mixins: :class:`Closing` (the with-block calls ``close()``: links,
tracefs entries, readers, sessions, collections) and :class:`FdOwner` (``.fd``,
``.closed`` and ``close()`` over one ``Fd`` in ``self._fd``: maps, programs).
"""

from __future__ import annotations

import os
import warnings
from typing import TypeVar

from bpfkit.errors import KernelError

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
