"""The compiling engine's native code beside the program (:mod:`bpfkit.vm.jit`), as IR text:
``@mem``, the region table lookup of checked memory accesses, and the driver loops that run a
program many times in one native call (over a batch of packets, or ``repeat`` times)."""

from __future__ import annotations

from bpfkit.vm.jit_ir import (
    F_ADDR,
    F_DEPTH,
    F_LEFT,
    F_NSLOTS,
    F_PC,
    F_SIZE,
    F_STATUS,
    F_TABLE,
    S_MEM,
)
from bpfkit.vm.memory import CTX_SLOT, PACKET_BASE, STACK_SIZE, STACK_SLOT

# The region table lookup of the fast tier: the host address of ``size`` bytes at ``addr``,
# or 0 if no region holds them (or a write meets read-only memory), having then recorded the
# fault in the state.  ``how`` is ``size | 256 if a write | pc << 9``.
MEM_CHECK = f"""
define internal preserve_mostcc i64 @mem(ptr %env, i64 %addr, i64 %how) noinline {{
entry:
  %tabp = getelementptr inbounds i64, ptr %env, i64 {F_TABLE}
  %tabi = load i64, ptr %tabp
  %tab = inttoptr i64 %tabi to ptr
  %nsp = getelementptr inbounds i64, ptr %env, i64 {F_NSLOTS}
  %nslots = load i64, ptr %nsp
  %size = and i64 %how, 255
  %w = and i64 %how, 256
  %write = icmp ne i64 %w, 0
  %slot = lshr i64 %addr, 32
  %inb = icmp ult i64 %slot, %nslots
  br i1 %inb, label %look, label %bad
look:
  %ent = getelementptr inbounds [4 x i64], ptr %tab, i64 %slot
  %basep = getelementptr inbounds i64, ptr %ent, i64 1
  %sizep = getelementptr inbounds i64, ptr %ent, i64 2
  %wrp = getelementptr inbounds i64, ptr %ent, i64 3
  %base = load i64, ptr %basep
  %rsize = load i64, ptr %sizep
  %wr = load i64, ptr %wrp
  %off = sub i64 %addr, %base
  %end = add i64 %off, %size
  %c1 = icmp ule i64 %off, %rsize
  %c2 = icmp ule i64 %end, %rsize
  %ro = icmp eq i64 %wr, 0
  %refused = and i1 %write, %ro
  %c3 = xor i1 %refused, true
  %c12 = and i1 %c1, %c2
  %ok = and i1 %c12, %c3
  br i1 %ok, label %good, label %bad
good:
  %host = load i64, ptr %ent
  %p = add i64 %host, %off
  ret i64 %p
bad:
  %pc = lshr i64 %how, 9
  %sz = and i64 %how, 511
  %stp = getelementptr inbounds i64, ptr %env, i64 {F_STATUS}
  store i64 {S_MEM}, ptr %stp
  %pcp = getelementptr inbounds i64, ptr %env, i64 {F_PC}
  store i64 %pc, ptr %pcp
  %ap = getelementptr inbounds i64, ptr %env, i64 {F_ADDR}
  store i64 %addr, ptr %ap
  %szp = getelementptr inbounds i64, ptr %env, i64 {F_SIZE}
  store i64 %sz, ptr %szp
  ret i64 0
}}
"""


def run_once(r1: str, r2: str) -> str:
    """The IR of one run of a driver loop (batch and repeat): registers zeroed, r1 and r2
    set to these IR values, r10 and the budget set, frame 0's stack zeroed, the program
    called; a fault branches to %fault, else to %next."""
    return f"""  call void @llvm.memset.p0.i64(ptr %env, i8 0, i64 88, i1 false)
  %r1p = getelementptr inbounds i64, ptr %env, i64 1
  store i64 {r1}, ptr %r1p
  %r2p = getelementptr inbounds i64, ptr %env, i64 2
  store i64 {r2}, ptr %r2p
  %r10p = getelementptr inbounds i64, ptr %env, i64 10
  store i64 {(STACK_SLOT << 32) + STACK_SIZE}, ptr %r10p
  %leftp = getelementptr inbounds i64, ptr %env, i64 {F_LEFT}
  store i64 %budget, ptr %leftp
  %stp = getelementptr inbounds i64, ptr %env, i64 {F_STATUS}
  store i64 0, ptr %stp
  %dp = getelementptr inbounds i64, ptr %env, i64 {F_DEPTH}
  store i64 0, ptr %dp
  call void @llvm.memset.p0.i64(ptr %stack0, i8 0, i64 {STACK_SIZE}, i1 false)
  %rc = call i64 %prog(ptr %env, ptr %helper)
  %bad = icmp ne i64 %rc, 0
  br i1 %bad, label %fault, label %next"""


# One native loop over many packets for an XDP program: per packet, copy it into the packet
# region (its table entry gets the packet's size), reset the context from a pristine copy
# with data_end set, zero the registers and frame 0's stack, call @prog; stop at the first
# fault (its index is returned; Python replays that packet to raise its VmError).
BATCH = f"""
declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)
declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)

define i64 @batch(ptr %env, ptr %helper, ptr %prog, ptr %data, ptr %lens, i64 %n, ptr %out,
                  ptr %pkt, ptr %ctx, ptr %ctx0, i64 %ctxlen, ptr %stack0, i64 %budget,
                  i64 %stride) {{
entry:
  %none = icmp eq i64 %n, 0
  br i1 %none, label %done, label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %next ]
  %at = phi i64 [ 0, %entry ], [ %at1, %next ]
  %i1 = add i64 %i, 1
  %fixed = icmp ne i64 %stride, 0
  br i1 %fixed, label %strided, label %listed
strided:
  %s0 = mul i64 %i, %stride
  br label %copy
listed:
  %lp = getelementptr inbounds i64, ptr %lens, i64 %i
  %l1 = load i64, ptr %lp
  br label %copy
copy:
  %start = phi i64 [ %s0, %strided ], [ %at, %listed ]
  %len = phi i64 [ %stride, %strided ], [ %l1, %listed ]
  %src = getelementptr inbounds i8, ptr %data, i64 %start
  call void @llvm.memcpy.p0.p0.i64(ptr %pkt, ptr %src, i64 %len, i1 false)
  %tabp = getelementptr inbounds i64, ptr %env, i64 {F_TABLE}
  %tabi = load i64, ptr %tabp
  %tab = inttoptr i64 %tabi to ptr
  %sizep = getelementptr inbounds i64, ptr %tab, i64 2
  store i64 %len, ptr %sizep
  call void @llvm.memcpy.p0.p0.i64(ptr %ctx, ptr %ctx0, i64 %ctxlen, i1 false)
  %dend = add i64 %len, {PACKET_BASE}
  %dend32 = trunc i64 %dend to i32
  %dendp = getelementptr inbounds i8, ptr %ctx, i64 4
  store i32 %dend32, ptr %dendp, align 1
{run_once(str(CTX_SLOT << 32), "%ctxlen")}
next:
  %at1 = add i64 %start, %len
  %r0 = load i64, ptr %env
  %op = getelementptr inbounds i64, ptr %out, i64 %i
  store i64 %r0, ptr %op
  %more = icmp ult i64 %i1, %n
  br i1 %more, label %loop, label %done
fault:
  ret i64 %i
done:
  ret i64 %n
}}
"""


# The same program many times on one context, as BPF_PROG_TEST_RUN's ``repeat`` runs it (what
# bench/vm.py measures against the kernel's JIT): per run, registers zeroed, r1/r2/r10 set, the
# budget reset, frame 0's stack zeroed; stop at the first fault (its index is returned).
REPEAT = f"""
declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)

define i64 @prog(ptr %env, ptr %helper, ptr %prog, i64 %n, i64 %r1, i64 %r2, ptr %stack0,
                 i64 %budget) {{
entry:
  %none = icmp eq i64 %n, 0
  br i1 %none, label %done, label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %next ]
  %i1 = add i64 %i, 1
{run_once("%r1", "%r2")}
next:
  %more = icmp ult i64 %i1, %n
  br i1 %more, label %loop, label %done
fault:
  ret i64 %i
done:
  ret i64 %n
}}
"""
