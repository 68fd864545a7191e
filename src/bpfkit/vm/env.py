"""The world a VM program sees through its helpers: task identity, clock, CPU, randomness
and the kernel/user memory that ``bpf_probe_read_*`` may read.  All of it is given by the
caller, so two runs with the same :class:`Env` do the same thing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Env:
    """What helpers report; defaults describe an imaginary ``bpfkit`` process."""

    pid: int = 4242  # the thread id (the kernel's pid)
    tgid: int = 4242  # the process id
    uid: int = 1000
    gid: int = 1000
    comm: bytes = b"bpfkit"
    cpu: int = 0
    numa_node: int = 0
    ktime_ns: int = 1_000_000_000  # bpf_ktime_get_ns returns this, then advances it
    ktime_step_ns: int = 1_000
    seed: int = 0  # of bpf_get_prandom_u32
    # (address, bytes) ranges that bpf_probe_read_kernel / _user can read.
    kernel_memory: list[tuple[int, bytes]] = field(default_factory=list)
    user_memory: list[tuple[int, bytes]] = field(default_factory=list)
    _random: random.Random | None = field(default=None, repr=False)

    def now(self) -> int:
        """The clock: the current time, then one step later for the next call."""
        t = self.ktime_ns
        self.ktime_ns += self.ktime_step_ns
        return t

    def prandom_u32(self) -> int:
        """A pseudo-random 32-bit number from ``seed``."""
        if self._random is None:
            self._random = random.Random(self.seed)
        return self._random.getrandbits(32)

    def probe(self, address: int, size: int, user: bool) -> bytes | None:
        """``size`` bytes at ``address`` in the given kernel or user memory, or None."""
        for base, data in self.user_memory if user else self.kernel_memory:
            if base <= address and address + size <= base + len(data):
                return data[address - base : address - base + size]
        return None

    def probe_str(self, address: int, limit: int, user: bool) -> bytes | None:
        """The bytes of the string at ``address`` (up to a NUL or ``limit``), or None."""
        for base, data in self.user_memory if user else self.kernel_memory:
            if base <= address < base + len(data):
                chunk = data[address - base : address - base + limit]
                nul = chunk.find(b"\0")
                return chunk if nul < 0 else chunk[:nul]
        return None
