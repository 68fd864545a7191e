"""What the perf buffer and ring buffer readers share: an epoll set to wait on, a
finalizer that releases their mappings, ``poll(timeout)`` and the with-block.

A subclass sets ``self._epoll`` and ``self._finalizer`` (a :class:`weakref.finalize`
that closes everything it opened, so a reader its owner forgot is still released) and
implements ``read()``: the records available now, consumed.
"""

from __future__ import annotations

import select
import weakref

from bpfkit.syscalls.fd import Closing

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any, Generic, TypeVar

    R = TypeVar("R")

    class _OfRecords(Generic[R]):
        """Generic in the record type (for type checking)."""

else:
    from types import GenericAlias

    R = "R"

    class _OfRecords:
        """Subscriptable as ``list`` is (``PolledReader[bytes]``), without typing."""

        __class_getitem__ = classmethod(GenericAlias)


class PolledReader(Closing, _OfRecords[R]):
    """Base of :class:`~bpfkit.events.perf.PerfBufferReader` and
    :class:`~bpfkit.events.ringbuf.RingBufReader`."""

    _epoll: select.epoll
    _finalizer: weakref.finalize[Any, Any]

    def read(self) -> list[R]:
        """The records available now (without waiting), consumed."""
        raise NotImplementedError

    def poll(self, timeout: float | None) -> list[R]:
        """Records available within ``timeout`` seconds (None: wait for some; maybe none)."""
        records = self.read()
        if records:
            return records
        self._epoll.poll(-1 if timeout is None else timeout)
        return self.read()

    def close(self) -> None:
        """Unmap and close what the reader opened (idempotent)."""
        self._finalizer()
