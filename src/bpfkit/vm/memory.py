"""The VM's address space: regions of bytes that a program cannot escape.

A pointer in the VM is a 64-bit integer.  Its high 32 bits select a *slot*; each region
lives alone in its slot, at ``base`` (normally ``slot << 32``), so finding the region of an
address is one dictionary lookup and a bounds check, never a search.  Addresses that fall
outside every region, or past the end of one, fault.

Layout (slot → what lives there)::

    0x0            packet data, at 0x1000_0000 — below 4 GiB so that the 32-bit
                   ``data``/``data_end`` fields of xdp_md and __sk_buff can hold it
    0x1            the context (or the conformance suite's memory)
    0x10 .. 0x17   the stack of call frame 0 .. 7 (512 bytes each; r10 = base + 512)
    0x20 ..        everything made later: map values, global data, ring buffer records,
                   regions the caller adds (probe_read sources), in creation order
    0xFFFF_0000    map handles (lddw src=1): not memory; reading them faults
    0xFFFF_F000    code addresses (lddw src=4, callx, gotox): not memory

Regions are either writable or read-only; every load and store checks both bounds and
that permission.

The VM allocates within a memory budget (:data:`DEFAULT_MEMORY_LIMIT`, 256 MiB; ``Vm(...,
memory=N)``, ``bpfkit vm --memory MIB``): map storage (allocated lazily: a large array
costs only the elements a program touches), hash entries, ring buffer records and perf
event samples are charged to it, and a program that would exceed it stops with a
:class:`~bpfkit.errors.VmError` naming the map or buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpfkit.errors import VmError

M64 = 0xFFFF_FFFF_FFFF_FFFF

PACKET_BASE = 0x1000_0000
CTX_SLOT = 0x1
STACK_SLOT = 0x10
STACK_SIZE = 512
MAX_FRAMES = 8
FIRST_DYNAMIC_SLOT = 0x20
MAP_HANDLE_BASE = 0xFFFF_0000 << 32
MAP_HANDLE_STRIDE = 0x1000
CODE_BASE = 0xFFFF_F000 << 32
DEFAULT_MEMORY_LIMIT = 256 << 20  # bytes the VM may allocate for maps, records and samples


class Fault(VmError):
    """A VmError raised inside an instruction or helper; the interpreter adds pc and text."""

    def __init__(self, message: str, *, address: int | None = None, region: str = "") -> None:
        super().__init__(message, address=address, region=region)
        self.message = message
        self.at: int | None = None  # the pc to blame, when not the one running


@dataclass(slots=True, eq=False)
class Region:
    """A contiguous range of VM memory backed by a bytearray (or a view of one)."""

    name: str
    base: int
    buf: bytearray | memoryview
    size: int
    writable: bool

    @property
    def end(self) -> int:
        """One past the last address of the region."""
        return self.base + self.size

    def __repr__(self) -> str:
        rw = "rw" if self.writable else "ro"
        return f"<Region {self.name} {self.base:#x}+{self.size} {rw}>"


class Memory:
    """All regions of one VM, by slot."""

    def __init__(self, limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        self.slots: dict[int, Region] = {}
        self._next_slot = FIRST_DYNAMIC_SLOT
        self.limit = limit  # the memory budget, in bytes
        self.used = 0  # bytes charged to it

    def charge(self, size: int, what: str) -> None:
        """Account ``size`` more bytes to ``what`` (a map or buffer), or raise a Fault
        naming it if that would exceed the budget."""
        if self.used + size > self.limit:
            raise Fault(
                f"{what} needs {size} more bytes, which exceeds the VM's memory budget of "
                f"{_mib(self.limit)} ({_mib(self.used)} in use); give the VM more with "
                "--memory MIB (Vm(memory=BYTES)) or make the map or buffer smaller",
                region=what,
            )
        self.used += size

    def release(self, size: int) -> None:
        """Give back ``size`` bytes charged earlier."""
        self.used = max(0, self.used - size)

    def add(
        self,
        name: str,
        buf: bytearray | memoryview,
        *,
        writable: bool = True,
        slot: int | None = None,
        base: int | None = None,
    ) -> Region:
        """Map ``buf`` as a new region and return it (a new slot unless ``slot`` is given)."""
        if slot is None:
            slot = self._next_slot
            self._next_slot += 1
        if base is None:
            base = slot << 32
        if base >> 32 != slot or (base & 0xFFFF_FFFF) + len(buf) > 1 << 32:
            raise VmError(f"region {name} of {len(buf)} bytes does not fit its slot {slot:#x}")
        region = Region(name, base, buf, len(buf), writable)
        self.slots[slot] = region
        self.version += 1
        return region

    def remove(self, region: Region) -> None:
        """Unmap ``region``: later accesses to it fault."""
        if self.slots.get(region.base >> 32) is region:
            del self.slots[region.base >> 32]
            self.version += 1

    version = 0  # changes whenever a region is mapped or unmapped (a count per instance)

    def find(self, address: int, size: int = 1) -> Region | None:
        """The region holding ``size`` bytes at ``address``, or None."""
        r = self.slots.get((address & M64) >> 32)
        if r is None:
            return None
        o = address - r.base
        if 0 <= o and o + size <= r.size and size >= 0:
            return r
        return None

    def describe(self, address: int) -> str:
        """The name of the region nearest to ``address`` (for error messages)."""
        address &= M64
        r = self.slots.get(address >> 32)
        if r is not None:
            o = address - r.base
            return f"{r.name} [{r.base:#x}, {r.end:#x}), offset {o}"
        if address >= CODE_BASE:
            return "code addresses"
        if address >= MAP_HANDLE_BASE:
            return "map handles"
        if address < 0x1000:
            return "null page"
        return "unmapped"

    def check(self, address: int, size: int, write: bool) -> tuple[Region, int]:
        """The region and offset of an access, or a :class:`Fault` saying why not."""
        address &= M64
        r = self.find(address, size)
        if r is None:
            what = "write" if write else "read"
            raise Fault(
                f"{what} of {size} bytes out of bounds",
                address=address,
                region=self.describe(address),
            )
        if write and not r.writable:
            raise Fault(
                f"write of {size} bytes to read-only memory",
                address=address,
                region=self.describe(address),
            )
        return r, address - r.base

    def read(self, address: int, size: int) -> bytes:
        """``size`` bytes at ``address`` (one region; VmError otherwise)."""
        if size == 0:
            return b""
        r, o = self.check(address, size, False)
        return bytes(r.buf[o : o + size])

    def write(self, address: int, data: bytes) -> None:
        """Store ``data`` at ``address`` (one writable region; VmError otherwise)."""
        if not data:
            return
        r, o = self.check(address, len(data), True)
        r.buf[o : o + len(data)] = data

    def read_cstr(self, address: int, limit: int) -> bytes | None:
        """The NUL-terminated string at ``address`` (without the NUL), at most ``limit`` bytes.

        None if the address is not readable.  A string that reaches the end of its region
        or ``limit`` is cut there (like ``strncpy_from_kernel_nofault``).
        """
        address &= M64
        r = self.find(address, 1)
        if r is None:
            return None
        o = address - r.base
        chunk = bytes(r.buf[o : min(r.size, o + limit)])
        nul = chunk.find(b"\0")
        return chunk if nul < 0 else chunk[:nul]


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.4g} MiB"
