"""Ring and perf buffer records delivered to a callback, decoded by their BTF type, in
bcc's shape (``b["events"].open_ring_buffer(cb)`` then ``poll``).

::

    def on_event(event):              # one decoded record: a Record (event.pid, ...)
        print(event.pid, event.comm)

    with coll["events"].open_ring_buffer(on_event) as events:   # or vm["events"]
        while running:
            events.poll(1.0)          # seconds (None: wait for some); calls on_event

A callback of three parameters is called as bcc calls it: ``cb(ctx, data, size)`` for
a ring buffer (``ctx`` as given to ``open_ring_buffer``), ``cb(cpu, data, size)`` for a
perf buffer, ``data`` being the record's bytes (``m.event(data)`` decodes them).  The
records' type is the one :func:`bpfkit.btf.mapview.object_map_types` found (the size the
program sends, :mod:`bpfkit.obj.records`) or ``type="struct event"``; without either
they come as bytes.  Readers of kernel maps wait on epoll and must be closed (a
with-block does it); readers of VM maps return at once with what the runs submitted.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol

from bpfkit.btf.mapview import MapTypes
from bpfkit.errors import BpfkitError, BtfError

__all__ = ["RecordReader"]


class TypedSource(Protocol):
    """What a reader needs of a typed map (:class:`bpfkit.btf.typedmap.TypedMap`)."""

    name: str
    types: MapTypes
    raw: Any


def _bcc_shape(callback: Callable[..., Any]) -> bool:
    """True if ``callback`` takes bcc's three arguments (rather than one event)."""
    try:
        params = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3


def record_types(m: TypedSource, type_name: str | None) -> MapTypes:
    """The types a reader decodes ``m``'s records with: ``type_name`` looked up in the
    map's BTF, else what the map's types say."""
    if type_name is None:
        return m.types
    btf = m.types.btf
    if btf is None:
        raise BpfkitError(
            f"map {m.name!r}: no BTF to find {type_name!r} in (build the object with -g, "
            "or decode the bytes yourself: a three-parameter callback gets them)"
        )
    words = type_name.split()
    kind, name = (words[0], words[-1]) if len(words) == 2 else (None, type_name)
    try:
        found = btf.find(name, kind)
    except BtfError:
        raise BpfkitError(
            f"map {m.name!r}: the object's BTF has no type {type_name!r} "
            "(give it as 'struct NAME', 'union NAME' or a typedef's name)"
        ) from None
    return MapTypes(btf, None, found.id)


class RecordReader:
    """Calls a callback with a ring or perf buffer's records (see the module docstring).

    ``poll(timeout)`` waits up to ``timeout`` seconds for records and calls the callback
    with each; it returns how many it delivered.  ``lost`` counts records the kernel
    dropped (perf buffers), ``discarded`` those a program discarded (ring buffers)."""

    def __init__(
        self,
        m: TypedSource,
        callback: Callable[..., Any],
        ctx: Any = None,
        *,
        type_name: str | None = None,
        perf: bool = False,
        lost_cb: Callable[[int], Any] | None = None,
    ) -> None:
        self.map = m
        self.types = record_types(m, type_name)
        self.callback = callback
        self.ctx = ctx
        self.perf = perf
        self.lost_cb = lost_cb
        self.bcc = _bcc_shape(callback)
        self._lost_seen = 0
        self._source = m.raw.open_records()

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release what the reader opened (kernel: mappings, perf events; idempotent)."""
        self._source.close()

    @property
    def lost(self) -> int:
        """Records the kernel dropped (a full perf buffer)."""
        return int(getattr(self._source, "lost", 0))

    @property
    def discarded(self) -> int:
        """Ring buffer records the program discarded."""
        return int(getattr(self._source, "discarded", 0))

    def decode(self, data: bytes) -> Any:
        """One record's bytes as a Python value (bytes when its type is unknown)."""
        if self.types.value is None:
            return bytes(data)
        return self.types.decode_value(bytes(data))

    def _deliver(self, records: list[Any]) -> int:
        for rec in records:
            cpu, data = rec if isinstance(rec, tuple) else (0, rec)
            if self.bcc:
                self.callback(cpu if self.perf else self.ctx, data, len(data))
            else:
                self.callback(self.decode(data))
        lost = self.lost
        if self.lost_cb is not None and lost > self._lost_seen:
            self.lost_cb(lost - self._lost_seen)
        self._lost_seen = lost
        return len(records)

    def poll(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds (None: until some come) and deliver the records;
        return how many were delivered."""
        return self._deliver(self._source.poll(timeout))

    def consume(self) -> int:
        """Deliver the records available now, without waiting."""
        return self._deliver(self._source.read())
