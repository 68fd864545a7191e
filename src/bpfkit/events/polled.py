"""What the perf buffer and ring buffer readers share: an epoll set to wait on, a
finalizer that releases their mappings, ``poll(timeout)`` and the with-block.

A subclass sets ``self._epoll`` and ``self._finalizer`` (a :class:`weakref.finalize`
that closes everything it opened, so a reader its owner forgot is still released) and
implements ``read()``: the records available now, consumed.
"""

from __future__ import annotations

import select
import weakref
from typing import Any, Generic, TypeVar

from bpfkit.syscalls.fd import Closing

R = TypeVar("R")


class PolledReader(Closing, Generic[R]):
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
