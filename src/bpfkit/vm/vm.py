"""``Vm``: run a BPF program in userspace, with its maps, context and packet.

>>> from bpfkit.isa.insn import Insn
>>> Vm([Insn(0xB7, 0, 0, 0, 42), Insn(0x95)]).run().r0
42

A :class:`Vm` takes a :class:`~bpfkit.obj.spec.ProgramSpec` together with its
:class:`~bpfkit.obj.spec.ObjectSpec` (maps, global data and subprograms come from the
object), or a bare list of instructions (whose ``lddw`` of maps use ``imm`` as a key of
``maps``).  Like a loader, the VM refuses programs with unknown instructions, reserved
fields that are not zero or jumps out of the program (``strict=False`` runs them and
stops only if such an instruction is reached).  The program type decides the context: for XDP and socket/tc programs given a
``packet``, the VM builds ``xdp_md`` / ``__sk_buff`` around it as BPF_PROG_TEST_RUN does;
otherwise ``ctx`` bytes are the context (``r1`` = their address, ``r2`` = their length,
as the conformance suite expects).  ``vm["name"]`` is a map as Python values typed by the
object's BTF (:mod:`bpfkit.btf.typedmap`, as kernel maps); ``VmResult.verdict`` names the
return value (``XdpAction.XDP_PASS``).
"""

from __future__ import annotations

import array
import struct
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from bpfkit.errors import BpfkitError, VmError
from bpfkit.isa.insn import Insn, decode_all
from bpfkit.isa.table import Op
from bpfkit.obj.relocate import link
from bpfkit.obj.spec import ObjectSpec, ProgramSpec
from bpfkit.uapi import ProgType
from bpfkit.uapi.verdicts import verdict
from bpfkit.vm.env import Env
from bpfkit.vm.helpers import helper_names, helpers_by_id
from bpfkit.vm.interp import Code, HelperFn, Interpreter
from bpfkit.vm.maps import ArrayMap, VmMap, map_from_data, map_from_spec
from bpfkit.vm.memory import (
    CTX_SLOT,
    DEFAULT_MEMORY_LIMIT,
    MAP_HANDLE_BASE,
    MAP_HANDLE_STRIDE,
    PACKET_BASE,
    Memory,
    Region,
)

if TYPE_CHECKING:
    from bpfkit.btf.mapview import MapTypes
    from bpfkit.btf.typedmap import TypedMap
    from bpfkit.vm.jit import Jit

ETH_HLEN = 14
SK_BUFF_SIZE = 192  # sizeof(struct __sk_buff)
XDP_MD_SIZE = 24  # sizeof(struct xdp_md)
DEFAULT_CTX_SIZE = 256  # tracing programs without a ctx get this many zero bytes

SKB_TYPES = frozenset({"socket_filter", "sched_cls", "sched_act", "cgroup_skb"})


def program_type(program: ProgramSpec | int) -> str | None:
    """The VM's name of a program's type: ``enum bpf_prog_type`` in lower case without its
    prefix (``"xdp"``, ``"cgroup_skb"``), from the type the object reader resolved from
    the section name; None for an untyped program (no context is built)."""
    number = program if isinstance(program, int) else program.prog_type
    try:
        return ProgType(number).name.lower() if number else None
    except ValueError:
        return None


@dataclass
class VmResult:
    """What a run produced."""

    r0: int
    output: list[str]  # bpf_trace_printk messages, one per call
    maps: dict[str, VmMap]
    insns_executed: int
    packet: bytes | None  # the packet after the run (None without a packet)
    ctx: bytes | None  # the context after the run
    prog_type: str | None = None  # "xdp", ... (what the return value means)

    @property
    def verdict(self) -> IntEnum | None:
        """r0 as the program type's verdict (``XdpAction.XDP_PASS``), or None."""
        return verdict(self.prog_type, self.r0)

    @property
    def lines(self) -> list[str]:
        """The printed messages split into lines (trailing newlines dropped)."""
        out: list[str] = []
        for msg in self.output:
            out.extend(msg.rstrip("\n").split("\n"))
        return out


@dataclass
class _Setup:
    ctx: Region | None = None
    packet: Region | None = None
    r1: int = 0
    r2: int = 0
    hidden: int = 0  # leading packet bytes the program cannot see (the L2 header)


class Vm:
    """A program ready to run in the userspace VM (see the module docstring)."""

    def __init__(
        self,
        program: ProgramSpec | Sequence[Insn] | bytes,
        *,
        obj: ObjectSpec | None = None,
        maps: Mapping[str, VmMap] | Mapping[int, VmMap] | None = None,
        ctx: bytes | None = None,
        packet: bytes | None = None,
        prog_type: str | None = None,  # "xdp", "socket_filter", ...; "" for none
        env: Env | None = None,
        budget: int = 1_000_000,
        helpers: Mapping[str, HelperFn] | None = None,
        engine: str = "interp",
        strict: bool = True,
        memory: int = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        """Prepare ``program`` to run.

        ``engine``: ``"interp"`` (the interpreter), ``"jit"`` (native code through llvmlite,
        :mod:`bpfkit.vm.jit`; VmError if it cannot run this program) or ``"auto"`` (the JIT
        where it can, else the interpreter, saying why once).

        ``obj``: the object a ProgramSpec comes from (its maps, global data, subprograms).
        ``maps``: VM maps by name (replacing the object's) or by the number a bare
        program's ``lddw`` uses.  ``ctx``/``packet``: the context and packet bytes.
        ``prog_type``: overrides the type the section name implies.  ``env``: the task,
        clock and memory helpers see.  ``budget``: instructions per run.  ``helpers``:
        extra emulated helpers by name (``fn(machine, r1, ..., r5) -> r0``).  ``strict``:
        refuse invalid programs up front (see the module docstring).  ``memory``: the
        memory budget in bytes (map storage, records, samples; :mod:`bpfkit.vm.memory`).
        """
        if budget < 0:
            raise VmError(f"instruction budget must be >= 0, not {budget}")
        if memory < 0:
            raise VmError(f"memory budget must be >= 0 bytes, not {memory}")
        self.obj = obj
        self.env = env or Env()
        self.memory = Memory(memory)
        self.interpreter = Interpreter(
            self.memory,
            helpers_by_id(dict(helpers or {})),
            helper_names(),
            budget=budget,
            env=self.env,
        )
        self.interpreter.resolve_lddw = self._resolve_lddw
        self.interpreter.load_program = self._load_target
        self.maps: dict[str, VmMap] = {}
        self._types: dict[str, MapTypes] | None = None
        self._fd_maps: dict[int, VmMap] = {}
        given = dict(maps or {})
        if obj is not None:
            for spec in obj.maps:
                self.maps[spec.name] = map_from_spec(spec)
            for data in obj.data:
                self.maps[data.name] = map_from_data(data)
        for key, vmap in given.items():
            if isinstance(key, int):
                self._fd_maps[key] = vmap
            else:
                self.maps[key] = vmap
        for i, vmap in enumerate([*self.maps.values(), *self._fd_maps.values()]):
            vmap.bind(self.memory)
            vmap.handle = MAP_HANDLE_BASE + i * MAP_HANDLE_STRIDE
            self.interpreter.map_handles[vmap.handle] = vmap
        self._fd_maps_linked: dict[int, VmMap] = {}
        self._codes: dict[int, Code] = {}
        if isinstance(program, ProgramSpec):
            self.name = program.name
            self.prog_type = program_type(program) if prog_type is None else prog_type
        else:
            self.name = "<insns>"
            self.prog_type = prog_type
        self.strict = strict
        self.code = self._compile(program)
        self.engine = self._engine(engine)
        self.ctx_bytes = ctx
        self.packet_bytes = packet

    def __getitem__(self, name: str) -> TypedMap:
        """The map ``name`` as Python values typed by the object's BTF (``vm["counts"]``,
        the view kernel maps have too: :mod:`bpfkit.btf.typedmap`); ``.maps[name]`` is
        the VM's map itself."""
        from bpfkit.btf.mapview import object_map_types
        from bpfkit.btf.typedmap import TypedMap

        vmap = self.maps.get(name)
        if vmap is None:
            raise VmError(f"no map named {name!r} (maps: {', '.join(self.maps) or 'none'})")
        if self._types is None:
            self._types = object_map_types(self.obj) if self.obj is not None else {}
        return TypedMap(vmap, self._types.get(name))

    # --- compiling -----------------------------------------------------------------------

    def _engine(self, engine: str) -> str:
        """Set up the engine asked for; the one that runs (``"interp"`` or ``"jit"``)."""
        self._jit: Jit | None = None
        if engine not in ("interp", "jit", "auto"):
            raise VmError(f"unknown engine {engine!r}: use 'interp', 'jit' or 'auto'")
        if engine == "interp":
            return "interp"
        from bpfkit.vm import jit

        try:
            self._jit = jit.Jit(self.interpreter)
            self._jit.prepare(self.code)
        except jit.JitUnsupportedError as e:
            self._jit = None
            if engine == "jit":
                raise VmError(f"the JIT cannot run {self.name}: {e}") from None
            _say_once(str(e).split(", at pc")[0])
            return "interp"
        return "jit"

    def _compile(self, program: ProgramSpec | Sequence[Insn] | bytes) -> Code:
        if isinstance(program, (bytes, bytearray)):
            try:
                program = decode_all(program)
            except Exception as e:  # IsaError: not whole instructions
                raise VmError(f"cannot decode the program: {e}") from None
        if isinstance(program, ProgramSpec):
            if self.obj is None:
                if program.relocations:
                    raise VmError(
                        f"program {program.name} has relocations: pass its object (obj=...)"
                    )
                insns = list(program.insns)
            else:
                # Descriptors for obj.relocate.link are indices into the VM's maps.
                names = list(self.maps)
                table = {name: i for i, name in enumerate(names)}
                try:
                    linked = link(self.obj, program, map_fds=table, data_fds=table)
                except BpfkitError as e:
                    raise VmError(f"cannot link {program.name} for the VM: {e}") from None
                insns = list(linked.insns)
                self._fd_maps_linked = {i: self.maps[name] for i, name in enumerate(names)}
            return self._checked(self.interpreter.compile(insns, program.name))
        self._fd_maps_linked = {}
        return self._checked(self.interpreter.compile(list(program), self.name))

    def _checked(self, code: Code) -> Code:
        """``code``, or a VmError for its first problem when strict (as a loader refuses)."""
        if self.strict and code.problems:
            pc, why = code.problems[0]
            more = len(code.problems) - 1
            extra = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
            raise VmError(f"invalid program: {why}{extra}", pc=pc, insn=code.text(pc))
        return code

    def _resolve_lddw(self, insn: Insn, op: Op) -> int | None:
        table = self._fd_maps_linked or self._fd_maps
        if op.key in ("lddw_map_fd", "lddw_map_idx", "lddw_map_value", "lddw_map_idx_value"):
            vmap = table.get(insn.imm)
            if vmap is None:
                raise VmError(f"lddw: no map {insn.imm} (pass maps={{{insn.imm}: ...}})")
            if op.key in ("lddw_map_fd", "lddw_map_idx"):
                return vmap.handle
            if not isinstance(vmap, ArrayMap):
                raise VmError(f"lddw of a value of map {vmap.name}: only array maps have one")
            off = insn.imm_hi & 0xFFFF_FFFF
            if off >= vmap.value_size:
                raise VmError(f"lddw: offset {off} is past the value of map {vmap.name}")
            return vmap.value_address(0) + off
        return None

    def _load_target(self, target: object) -> Code:
        """Compile what a prog array slot holds: a program name, a ProgramSpec or insns."""
        cached = self._codes.get(id(target))
        if cached is not None:
            return cached
        if isinstance(target, str):
            if self.obj is None:
                raise VmError(f"tail call to program {target!r}: the VM has no object")
            target = self.obj.program(target)
        saved = self._fd_maps_linked
        if not isinstance(target, (ProgramSpec, list, tuple, bytes)):
            raise VmError(f"prog array entry {target!r} is not a program")
        code = self._compile(target)
        self._fd_maps_linked = saved
        self._codes[id(target)] = code
        return code

    # --- running -------------------------------------------------------------------------

    def _setup(self) -> _Setup:
        mem = self.memory
        for slot in (0, CTX_SLOT):
            r = mem.slots.get(slot)
            if r is not None:
                mem.remove(r)
        s = _Setup()
        kind = self.prog_type or None  # "" asks for no program type (raw conformance runs)
        pkt = self.packet_bytes
        if pkt is None and (kind == "xdp" or kind in SKB_TYPES):
            pkt = b""  # packet programs always have one, if empty
        elif pkt is not None and len(pkt) < ETH_HLEN and (kind == "xdp" or kind in SKB_TYPES):
            # BPF_PROG_TEST_RUN refuses these with EINVAL: the VM answers as the kernel does.
            raise VmError(
                f"a {kind} program needs a packet of at least {ETH_HLEN} bytes (an Ethernet "
                f"header), not {len(pkt)}: the kernel's BPF_PROG_TEST_RUN refuses it (EINVAL)"
            )
        if pkt is not None:
            s.packet = mem.add("packet", bytearray(pkt), slot=0, base=PACKET_BASE)
        ctx = bytearray(self.ctx_bytes) if self.ctx_bytes is not None else None
        if s.packet is not None and kind == "xdp":
            ctx = ctx or bytearray(XDP_MD_SIZE)
            ctx.extend(bytes(max(0, XDP_MD_SIZE - len(ctx))))
            start, end = s.packet.base, s.packet.end
            struct.pack_into("<III", ctx, 0, start, end, start)  # data, data_end, data_meta
            if not struct.unpack_from("<I", ctx, 12)[0]:
                struct.pack_into("<I", ctx, 12, 1)  # ingress_ifindex: test runs use loopback
        elif s.packet is not None and kind in SKB_TYPES:
            ctx = ctx or bytearray(SK_BUFF_SIZE)
            ctx.extend(bytes(max(0, SK_BUFF_SIZE - len(ctx))))
            # BPF_PROG_TEST_RUN hands only tc programs (sched_cls/act) the Ethernet
            # header; the others start at the network header.
            l3 = ETH_HLEN if kind in ("socket_filter", "cgroup_skb") else 0
            s.hidden = min(l3, len(pkt or b""))
            start = s.packet.base + l3
            struct.pack_into("<I", ctx, 0, max(0, len(pkt or b"") - l3))  # len
            if len(pkt or b"") >= ETH_HLEN:
                ctx[16:20] = (pkt or b"")[12:14] + b"\0\0"  # protocol, network order
                # pkt_type as eth_type_trans() sets it on the loopback device, whose
                # address and broadcast address are all zero: multicast (ff:ff:.. too),
                # host, or other host.
                dst = (pkt or b"")[:6]
                pkt_type = 2 if dst[0] & 1 else 0 if dst == bytes(6) else 3
                struct.pack_into("<I", ctx, 4, pkt_type)
            # BPF_PROG_TEST_RUN runs skb programs on the loopback device (ifindex 1)
            # unless the context names a device above it.
            if struct.unpack_from("<I", ctx, 40)[0] <= 1:
                struct.pack_into("<I", ctx, 40, 1)  # ifindex
            struct.pack_into("<II", ctx, 76, start, s.packet.end)  # data, data_end
            struct.pack_into("<I", ctx, 140, start)  # data_meta
            self.interpreter.ld_packet, self.interpreter.ld_offset = s.packet, l3
        elif ctx is None and kind is not None:
            ctx = bytearray(DEFAULT_CTX_SIZE)
        if s.packet is None or kind not in SKB_TYPES:
            self.interpreter.ld_packet, self.interpreter.ld_offset = s.packet, 0
        if ctx is not None:
            s.ctx = mem.add("context", ctx, slot=CTX_SLOT)
            s.r1, s.r2 = s.ctx.base, len(ctx)
        elif s.packet is not None:
            s.r1, s.r2 = s.packet.base, s.packet.size
        return s

    def run(self, *, packet: bytes | None = None, ctx: bytes | None = None) -> VmResult:
        """Run the program once (maps keep their contents between runs).

        ``packet`` / ``ctx`` replace the ones given to the constructor, from this run on.
        """
        if packet is not None:
            self.packet_bytes = packet
        if ctx is not None:
            self.ctx_bytes = ctx
        s = self._setup()
        self.interpreter.output = []
        if self._jit is not None:
            r0 = self._jit.execute(self.code, s.r1, s.r2)
        else:
            r0 = self.interpreter.execute(self.code, s.r1, s.r2)
        return VmResult(
            r0=r0,
            output=list(self.interpreter.output),
            maps=dict(self.maps),
            insns_executed=self.interpreter.executed,
            # As BPF_PROG_TEST_RUN's data_out: a header the program did not see is zeroed.
            packet=None if s.packet is None else bytes(s.hidden) + s.packet.buf[s.hidden :],
            ctx=bytes(s.ctx.buf) if s.ctx is not None else None,
            prog_type=self.prog_type or None,
        )

    def run_many(self, packets: Sequence[bytes] | bytes, *, size: int | None = None) -> list[int]:
        """Run the program once per packet; r0 of each run (maps keep their contents).

        ``packets``: a sequence of packets, or (with ``size``) one buffer of ``size``-byte
        packets back to back, which spares copying them.  With the JIT and an XDP program
        the runs happen in one native call (no Python between packets); otherwise as
        :meth:`run`, one after the other.  A run that faults raises its VmError, as
        :meth:`run` with that packet does.
        """
        if size is not None:
            if size <= 0 or not isinstance(packets, (bytes, bytearray, memoryview)):
                raise VmError("run_many(buffer, size=N) takes a bytes buffer and N > 0")
            if len(packets) % size:
                raise VmError(f"a buffer of {len(packets)} bytes is not whole {size}-byte packets")
            data = bytes(packets)
            count = len(data) // size
            lens: array.array[int] | None = None
        elif isinstance(packets, (bytes, bytearray, memoryview)):
            raise VmError("run_many(buffer) needs size=N: the size of each packet in it")
        else:
            seq: Sequence[bytes] = packets if isinstance(packets, (list, tuple)) else list(packets)
            count = len(seq)
        jit = self._jit if self.prog_type == "xdp" and count > 0 else None
        batch = jit is not None
        if size is None and batch:
            # The packets back to back: one join and one len() each, no copy per packet.
            try:
                data = b"".join(seq)
            except TypeError as e:
                raise VmError(f"run_many takes packets as bytes: {e}") from None
            lens = array.array("Q", map(len, seq))
            if sum(lens) != len(data):  # items whose len() is not their size in bytes
                lens = array.array("Q", (memoryview(p).nbytes for p in seq))
        saved = self.packet_bytes
        try:
            if not batch:
                if size is not None:
                    items = [data[i * size : (i + 1) * size] for i in range(count)]
                else:
                    try:
                        items = [bytes(memoryview(p)) for p in seq]
                    except TypeError as e:
                        raise VmError(f"run_many takes packets as bytes: {e}") from None
                return [self.run(packet=p).r0 for p in items]
            from bpfkit.vm.jit import run_batch

            self.packet_bytes = bytes(max(lens) if lens is not None else size or 0)
            s = self._setup()
            assert s.ctx is not None and s.packet is not None
            self.interpreter.output = []
            assert jit is not None
            r0s, done = run_batch(jit, self.code, data, lens, size, count, s.ctx, s.packet)
            if done < count:
                one = bytes(seq[done]) if size is None else data[done * size : (done + 1) * size]
                self.run(packet=one)  # raises that run's VmError
                raise VmError(f"run {done} of the batch faulted, but not when run alone")
            return r0s
        finally:
            self.packet_bytes = saved

    def add_region(self, name: str, data: bytes, *, writable: bool = False) -> int:
        """Map extra memory into the VM (a buffer a test wants to point at); its address."""
        return self.memory.add(name, bytearray(data), writable=writable).base


_SAID: set[str] = set()


def _say_once(why: str) -> None:
    """Tell (once per reason) that ``engine="auto"`` runs the interpreter."""
    if why not in _SAID:
        _SAID.add(why)
        print(f"bpfkit: the VM runs the interpreter: {why}", file=sys.stderr)


def run_program(
    program: ProgramSpec | Sequence[Insn] | bytes,
    *,
    obj: ObjectSpec | None = None,
    memory: bytes | None = None,
    budget: int = 1_000_000,
) -> VmResult:
    """Run ``program`` once with ``memory`` as its context (r1 = address, r2 = length)."""
    return Vm(program, obj=obj, ctx=memory, budget=budget).run()
