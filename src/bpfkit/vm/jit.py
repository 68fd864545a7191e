"""The compiling engine: a program's instructions as LLVM IR, compiled by llvmlite, run natively.

``Vm(..., engine="jit")`` runs programs through :class:`Jit`; ``engine="auto"`` does when
llvmlite is installed (``pip install bpfkit[jit]``) and the program has only instructions
this engine translates, and otherwise runs the interpreter (saying why once).

What it keeps from the interpreter (:mod:`bpfkit.vm.interp`), which stays the reference:

- **the same semantics**: ALU, byte swaps, sign extension, division and jump conditions
  are lowered from the expression trees of :mod:`bpfkit.isa.semantics`, the ones the
  interpreter renders as Python;
- **the same memory**: every load, store and atomic is checked against the VM's regions
  (a native table of ``host pointer, base, size, writable`` per address slot, rebuilt
  whenever :class:`~bpfkit.vm.memory.Memory` maps or unmaps a region), so the program reads
  and writes the very bytearrays the interpreter and the helpers use.  One check is
  dropped where it is proven: ``r10 + constant`` inside the stack, when no instruction
  writes r10 (r10 is then the top of the current frame's stack).  The optimizing tier
  first tries one region whose bounds it holds in registers (the current frame's stack
  for addresses derived from r10 in the block, else the packet) and looks the slot up in
  the table when that misses, so that LLVM can hoist the bounds out of loops;
- **the same budget**, counted per basic block: a block that would pass the budget does not
  start, and the error names the instruction where the interpreter stops;
- **local calls** with a frame stack (r6-r10 and the return pc) of the interpreter's depth
  limit, each frame on its own zeroed stack region; **helpers** called back in Python through
  one ctypes trampoline (tail calls included);
- **the same errors**: a fault returns a status to Python, which raises the interpreter's
  :class:`~bpfkit.errors.VmError` (pc, instruction, address, region) through
  :meth:`Interpreter.error <bpfkit.vm.interp.Interpreter.error>`.

The translation lives beside this module (the driver, the native state and the ctypes
glue): :mod:`~bpfkit.vm.jit_ir` (the native state's layout and the IR text builder),
:mod:`~bpfkit.vm.jit_insn` (IR per instruction), :mod:`~bpfkit.vm.jit_translate` (a program's
blocks and the whole function) and :mod:`~bpfkit.vm.jit_thunks` (``@mem`` and the batch and
repeat driver loops, as IR text).

This module is the VM's one use of ctypes (docs/design.md, tests/test_layers.py): it is
how native code is called, not a way to reach the kernel.

IR that LLVM's parser rejects raises :class:`JitUnsupportedError` (checked with ``parse_assembly``
and ``verify`` before any code generation, which could abort the process); compiled code
is cached on the :class:`~bpfkit.vm.interp.Code` it was made from.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

from bpfkit.isa import semantics
from bpfkit.vm.cpu import ProgramExit
from bpfkit.vm.handlers import ZERO_STACK
from bpfkit.vm.jit_ir import (
    CALLX_FLAG,
    CLOSURE_FLAG,
    N_FRAME,
    S_BUDGET,
    S_DEPTH,
    S_EXIT,
    S_HELPER,
    S_MEM,
    S_STUB,
    JitUnsupportedError,
)
from bpfkit.vm.jit_thunks import BATCH, REPEAT
from bpfkit.vm.jit_translate import check_program, translate
from bpfkit.vm.memory import MAX_FRAMES, STACK_SIZE, Fault, Region

if TYPE_CHECKING:
    from bpfkit.vm.interp import Code, Interpreter

__all__ = [
    "Jit",
    "JitUnsupportedError",
    "available",
    "check_program",
    "compile_ir",
    "repeat",
    "run_batch",
    "translate",
]


_llvm: Any = None


def available() -> str | None:
    """None if the engine can run here, else why not (llvmlite missing)."""
    global _llvm
    if _llvm is None:
        try:
            import llvmlite.binding as llvm
        except ImportError:
            return "llvmlite is not installed (pip install 'bpfkit[jit]')"
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        _llvm = llvm
    return None


# --- the native state ----------------------------------------------------------------------


class _Env(ctypes.Structure):
    # The field indices of bpfkit.vm.jit_ir (F_REGS ... F_FRAMES) follow this order.
    _fields_ = [
        ("regs", ctypes.c_uint64 * 11),
        ("left", ctypes.c_uint64),  # instruction budget left
        ("status", ctypes.c_uint64),
        ("pc", ctypes.c_uint64),  # where a fault happened
        ("addr", ctypes.c_uint64),  # the faulting address
        ("size", ctypes.c_uint64),  # access size | 256 for writes
        ("table", ctypes.c_uint64),  # region table: [host, base, size, writable] per slot
        ("nslots", ctypes.c_uint64),
        ("depth", ctypes.c_uint64),
        ("frames", ctypes.c_uint64 * (N_FRAME * MAX_FRAMES)),
    ]


_HELPER = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64)
_ENTRY = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p)


# --- compiling and running ---------------------------------------------------------------


class _Compiled:
    """Native code of one :class:`Code`."""

    def __init__(self, engine: Any, fn: Any, pcs: list[int], ir: str, optimized: bool) -> None:
        self.engine = engine  # keeps the code alive
        self.fn = fn
        self.pcs = pcs
        self.ir = ir
        self.optimized = optimized
        self.executed = 0  # instructions run by this code, for tiering up


def compile_ir(ir: str, name: str = "", optimize: bool = False) -> tuple[Any, int]:
    """Compile IR text; return the execution engine and the address of ``@prog``.

    Two tiers: without ``optimize``, registers promoted (SROA) and LLVM's fast instruction
    selection (a few ms for a hundred instructions: what tests and one-off runs want); with
    it (IR translated with region guesses), SROA, instruction combining (which folds the
    bounds checks that a loop's own test already implies), CFG simplification and GVN, and
    the -O2 code generator (what a program run millions of times wants; LLVM's whole -O2 pipeline
    gave no faster code on these programs and took three times as long to compile).
    """
    why = available()
    if why:
        raise JitUnsupportedError(why)
    llvm = _llvm
    try:  # parse and verify first: code generation on bad IR may abort the process
        mod = llvm.parse_assembly(ir)
        mod.verify()
    except RuntimeError as e:
        why = f"LLVM refused the translation of {name or 'the program'}: {e}"
        raise JitUnsupportedError(why) from None
    # The execution engine owns its target machine: one each.
    tm = llvm.Target.from_default_triple().create_target_machine(opt=2 if optimize else 0, jit=True)
    pto = llvm.create_pipeline_tuning_options(speed_level=2 if optimize else 1)
    pb = llvm.create_pass_builder(tm, pto)
    fpm = llvm.create_new_function_pass_manager()
    fpm.add_sroa_pass()  # registers out of memory: cheap, and much better code
    if optimize:
        fpm.add_instruction_combine_pass()
        fpm.add_simplify_cfg_pass()
        fpm.add_new_gvn_pass()
    for f in mod.functions:
        if not f.is_declaration:
            fpm.run(f, pb)
    ee = llvm.create_mcjit_compiler(mod, tm)
    ee.finalize_object()
    return ee, ee.get_function_address("prog")


class Jit:
    """Runs :class:`~bpfkit.vm.interp.Code` natively for one :class:`~bpfkit.vm.interp.Interpreter`."""

    def __init__(self, machine: Interpreter, *, optimize: bool = False) -> None:
        why = available()
        if why:
            raise JitUnsupportedError(why)
        self.m = machine
        self.optimize = optimize  # compile with the optimizing tier from the start
        self.tier_up_after = 2_000_000  # instructions run before the optimizing tier
        self.env = _Env()
        self._table: Any = None
        self._views: dict[int, Any] = {}
        self._version = -1
        self._error: BaseException | None = None
        self._code: Code | None = None
        self._batch_packet: Region | None = None  # the packet region while a batch runs
        self._trampoline = _HELPER(self._helper)
        self._trampoline_ptr = ctypes.cast(self._trampoline, ctypes.c_void_p).value

    def prepare(self, code: Code, optimize: bool | None = None) -> _Compiled:
        """Native code for ``code`` (compiled once, then cached on it; optimized when asked,
        or once it has run :attr:`tier_up_after` instructions)."""
        got: _Compiled | None = getattr(code, "native", None)
        if optimize is None:
            optimize = self.optimize or (got is not None and got.executed > self.tier_up_after)
        if got is None or (optimize and not got.optimized):
            ir, pcs = translate(code, self.m, optimize)
            ee, addr = compile_ir(ir, code.name, optimize)
            got = _Compiled(ee, _ENTRY(addr), pcs, ir, optimize)
            code.native = got  # type: ignore[attr-defined]
        return got

    def _sync_table(self) -> None:
        mem = self.m.memory
        if mem.version == self._version:
            return
        top = max(mem.slots, default=0) + 1
        table = (ctypes.c_uint64 * (4 * top))()
        views: dict[int, Any] = {}
        for slot, r in mem.slots.items():
            view = self._views.get(id(r.buf))
            if view is None or view[0] is not r.buf:
                if r.size == 0:
                    view = (r.buf, None, 0)
                else:
                    try:
                        arr = (ctypes.c_char * r.size).from_buffer(r.buf)
                    except TypeError:  # read-only memory: a copy reads the same
                        arr = (ctypes.c_char * r.size).from_buffer_copy(r.buf)
                    view = (r.buf, arr, ctypes.addressof(arr))
            views[id(r.buf)] = view
            table[4 * slot] = view[2]
            table[4 * slot + 1] = r.base
            table[4 * slot + 2] = r.size
            table[4 * slot + 3] = 1 if r.writable else 0
        self._views = views
        self._table = table
        self.env.table = ctypes.addressof(table)
        self.env.nslots = top
        self._version = mem.version

    def _helper(self, env: int, helper_id: int, pc: int) -> int:
        m = self.m
        R = m.regs
        regs = self.env.regs
        for i in range(11):
            R[i] = regs[i]
        if self._batch_packet is not None:  # this packet's size, as the native table has it
            self._batch_packet.size = ctypes.c_uint64.from_address(self.env.table + 16).value
        try:
            if helper_id & CLOSURE_FLAG:
                assert self._code is not None
                self._code.closures[helper_id & ~CLOSURE_FLAG]()
                for i in range(11):
                    regs[i] = R[i]
                return 0
            if helper_id & CALLX_FLAG:  # callx to what is no function: a helper id?
                v = helper_id & ~CALLX_FLAG
                got = m.helpers.get(v) if v < 1 << 31 else None
                if got is None:  # the interpreter's closure says why
                    self.env.status = S_STUB
                    self.env.pc = pc
                    return 0
                fn = got
            else:
                fn = m.helpers[helper_id]
            r0 = fn(m, R[1], R[2], R[3], R[4], R[5]) & semantics.M64
            self._sync_table()
            return r0
        except BaseException as e:  # noqa: BLE001 - reported to execute() by status
            for i in range(11):  # what the helper left (bpf_tail_call sets r1)
                regs[i] = R[i]
            self._error = e
            self.env.status = S_HELPER
            self.env.pc = pc
            return 0

    def execute(self, code: Code, r1: int = 0, r2: int = 0) -> int:
        """Run ``code`` from pc 0 (as :meth:`Interpreter.execute <bpfkit.vm.interp.Interpreter.execute>`)."""
        m = self.m
        env = self.env
        compiled = self.prepare(code)
        self._code = code
        m.tail_calls = 0
        m.executed = 0
        m.frames.clear()
        R = m.regs
        R[:] = [0] * 11
        here = ctypes.addressof(env)
        ctypes.memset(here, 0, 88)  # r0-r10
        env.regs[1], env.regs[2] = r1 & semantics.M64, r2 & semantics.M64
        env.left = m.budget
        stack0 = m.stacks[0]
        while True:
            stack0.buf[:] = ZERO_STACK
            env.regs[10] = stack0.base + STACK_SIZE
            env.depth = 0
            env.status = 0
            self._error = None
            if m.memory.version != self._version:
                self._sync_table()
            before = env.left
            status = compiled.fn(here, self._trampoline_ptr)
            compiled.executed += before - env.left
            m.executed = m.budget - env.left
            R[:] = env.regs  # as the interpreter leaves them
            if status == S_EXIT:
                return R[0]
            pc = int(env.pc)
            if status == S_BUDGET:
                m.executed = m.budget
                raise m.budget_error(code, compiled.pcs[pc] if pc < len(compiled.pcs) else pc)
            if status == S_MEM:
                write = bool(env.size & 256)
                size = int(env.size & 255)
                try:
                    m.memory.check(int(env.addr), size, write)
                    err: BaseException = Fault(
                        f"{'write' if write else 'read'} of {size} bytes refused",
                        address=int(env.addr),
                    )  # noqa: E501
                except Fault as f:
                    err = f
                raise m.error(code, pc, err) from None
            if status == S_DEPTH:
                raise m.error(code, pc, Fault(f"call depth exceeds {MAX_FRAMES} frames"))
            if status == S_STUB:
                try:
                    code.closures[pc]()
                    err = Fault("the compiled program reached an instruction it cannot run")
                except BaseException as f:  # noqa: BLE001
                    err = f
                raise m.error(code, pc, err) from None
            # a helper raised
            exc = self._error
            from bpfkit.vm.interp import TailCall

            if isinstance(exc, TailCall):
                code = exc.code
                compiled = self.prepare(code)
                self._code = code
                for i in range(11):
                    env.regs[i] = R[i]
                env.regs[1] = R[1]
                env.status = 0
                continue
            if isinstance(exc, ProgramExit):
                return R[0]
            if isinstance(exc, KeyboardInterrupt):
                raise exc
            assert exc is not None
            raise m.error(code, pc, exc) from None


# --- batches -------------------------------------------------------------------------------


_BATCH_FN = ctypes.CFUNCTYPE(
    ctypes.c_uint64,
    *([ctypes.c_void_p] * 5),
    ctypes.c_uint64,
    *([ctypes.c_void_p] * 3),
    ctypes.c_void_p,
    ctypes.c_uint64,
    ctypes.c_void_p,
    ctypes.c_uint64,
    ctypes.c_uint64,
)
_batch_driver: tuple[Any, Any] | None = None


def _driver() -> Any:
    global _batch_driver
    if _batch_driver is None:
        ee, _ = compile_ir(BATCH.replace("@batch", "@prog"), "the batch driver", True)
        _batch_driver = (ee, _BATCH_FN(ee.get_function_address("prog")))
    return _batch_driver[1]


_REPEAT_FN = ctypes.CFUNCTYPE(
    ctypes.c_uint64,
    *([ctypes.c_void_p] * 3),
    *([ctypes.c_uint64] * 3),
    ctypes.c_void_p,
    ctypes.c_uint64,
)
_repeat_driver: tuple[Any, Any] | None = None


def repeat(jit: Jit, code: Code, r1: int, r2: int, n: int) -> tuple[int, int]:
    """Run ``code`` ``n`` times on the same context in one native call; ``(r0 of the last
    run, runs done)``: fewer than ``n`` when one faults (:meth:`Jit.execute` then gives its
    VmError)."""
    global _repeat_driver
    if _repeat_driver is None:
        ee, addr = compile_ir(REPEAT, "the repeat driver", True)
        _repeat_driver = (ee, _REPEAT_FN(addr))
    m = jit.m
    compiled = jit.prepare(code)
    jit._code = code
    m.tail_calls = 0
    jit._sync_table()
    stack_host = jit._views[id(m.stacks[0].buf)][2]
    done = _repeat_driver[1](
        ctypes.addressof(jit.env),
        jit._trampoline_ptr,
        ctypes.cast(compiled.fn, ctypes.c_void_p).value,
        n,
        r1 & semantics.M64,
        r2 & semantics.M64,
        stack_host,
        m.budget,
    )
    m.executed = m.budget - int(jit.env.left)
    compiled.executed += m.executed * int(done)
    return int(jit.env.regs[0]), int(done)


def _address(buf: Any) -> int:
    return ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))


def run_batch(
    jit: Jit,
    code: Code,
    packets: bytes,
    lens: Any,
    size: int | None,
    n: int,
    ctx: Region,
    pkt: Region,
) -> tuple[list[int], int]:
    """Run ``code`` once for each of ``n`` packets back to back in ``packets`` (of lengths
    ``lens``, an ``array("Q")``, or each ``size`` bytes) in one native call; ``(r0 of each
    run, runs done)``: fewer runs than packets when one faults (the caller replays it for
    its VmError)."""
    import array

    m = jit.m
    compiled = jit.prepare(code)
    jit._code = code
    data = bytes(packets)  # read in place (a c_char_p shares the bytes object's buffer)
    offs = lens if lens is not None else array.array("Q")
    out = array.array("Q", bytes(8 * n))
    ctx0 = bytearray(ctx.buf)
    m.tail_calls = 0
    jit._sync_table()
    pkt_host = jit._views[id(pkt.buf)][2]
    ctx_host = jit._views[id(ctx.buf)][2]
    stack_host = jit._views[id(m.stacks[0].buf)][2]
    jit._batch_packet = pkt
    try:
        done = _driver()(
            ctypes.addressof(jit.env),
            jit._trampoline_ptr,
            ctypes.cast(compiled.fn, ctypes.c_void_p).value,
            ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value,
            offs.buffer_info()[0],
            n,
            out.buffer_info()[0],
            pkt_host,
            ctx_host,
            _address(ctx0),
            len(ctx0),
            stack_host,
            m.budget,
            0 if lens is not None else size or 0,
        )
    finally:
        jit._batch_packet = None
        pkt.size = len(pkt.buf)
        jit._version = -1  # the packet's table entry was changed: rebuild it next time
    return (out.tolist() if done == n else out[:done].tolist()), int(done)
