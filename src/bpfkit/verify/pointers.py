"""Pointer and memory rules of bpfkit's verifier (:mod:`bpfkit.verify.static`): loads and
stores through each kind of pointer (stack, context, map values, ring buffer memory, the
packet within its proven range, sockets), helpers' memory arguments, and what comparing a
packet pointer with the packet's end proves.  :class:`PointerRules` is the first of the
verifier's layers (then :class:`~bpfkit.verify.transfer.Transfer`,
:class:`~bpfkit.verify.calls.CallRules`, :class:`~bpfkit.verify.static.Verifier`)."""

from __future__ import annotations

from dataclasses import replace

from bpfkit.isa.insn import Insn
from bpfkit.verify import scalar as sc
from bpfkit.verify.rules import CtxRules
from bpfkit.verify.state import (
    BPF_MAX_VAR_OFF,
    MAX_STACK,
    NONE,
    UNKNOWN,
    ZERO,
    Frame,
    Reg,
    Reject,
    State,
    scalar_reg,
    set_stack_byte,
    stack_byte,
)


class PointerRules:
    """Memory accesses through pointers (the verifier's state is set by
    :class:`~bpfkit.verify.static.Verifier`)."""

    ctx: CtxRules
    next_id: int

    def read_reg(self, f: Frame, r: int) -> Reg:
        v = f.regs[r]
        if v.t == "none":
            raise Reject(f"R{r} !read_ok")
        return v

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    # -- memory --------------------------------------------------------------------------

    def mem_access(
        self,
        st: State,
        r: int,
        off: int,
        size: int,
        how: str,
        val: Reg | None,
        *,
        signed: bool = False,
    ) -> Reg:
        """Check a load or store through register ``r``; return the loaded value."""
        p = st.cur.regs[r]
        t = p.t
        if t == "scalar" or t in ("pkt_end", "func") or p.null:
            raise Reject(f"R{r} invalid mem access '{p.name() if t != 'scalar' else 'scalar'}'")
        if t == "fp":
            return self.stack_access(st, p, r, off, size, how, val, signed)
        if t == "ctx":
            return self.ctx_access(p, r, off, size, how, val)
        if how == "write" and val is not None and val.t != "scalar" and t != "fp":
            pass  # privileged programs may store pointers (they become numbers)
        if t in ("map_value", "mem"):
            lo = p.off + off
            if p.s.smin < 0:
                raise Reject(
                    f"R{r} min value is negative, either use unsigned index or do a if "
                    "(index >=0) check."
                )
            if p.s.umax >= BPF_MAX_VAR_OFF:
                raise Reject(
                    f"R{r} unbounded memory access, make sure to bounds check any such access"
                )
            lo_all, hi_all = lo + p.s.smin, lo + p.s.umax + size
            if lo_all < 0 or hi_all > p.size:
                bad = lo_all if lo_all < 0 else lo + p.s.umax
                what = "map value, value_size" if t == "map_value" else "memory, mem_size"
                raise Reject(f"invalid access to {what}={p.size} off={bad} size={size}")
            if how == "write" and p.mp is not None and p.mp.readonly:
                raise Reject(f"write into map forbidden, value_size={p.size} off={lo} size={size}")
            return self.loaded(size, signed)
        if t == "pkt" or t == "pkt_meta":
            lo = p.off + off
            if how == "write" and not self.ctx.packet_writable:
                raise Reject("cannot write into packet")
            if p.s.smin < 0:
                raise Reject(
                    f"R{r} min value is negative, either use unsigned index or do a if "
                    "(index >=0) check."
                )
            if lo < 0 or lo + size > p.rng or p.s.umax >= (1 << 16):
                raise Reject(
                    f"invalid access to packet, off={lo} size={size}, "
                    f"R{r}(id={p.id},off={lo},r={p.rng})"
                )
            return self.loaded(size, signed)
        if t == "sock":
            if lo_ok := (0 <= p.off + off and p.off + off + size <= 80):
                del lo_ok
                return self.loaded(size, signed)
            raise Reject(f"R{r} invalid sock access off={p.off + off} size={size}")
        return self.loaded(size, signed)  # btf and other pointers: not modelled

    def loaded(self, size: int, signed: bool) -> Reg:
        if size == 8:
            return UNKNOWN
        if signed:
            bits = 8 * size
            return scalar_reg(
                sc.sync(replace(sc.UNKNOWN, smin=-(1 << (bits - 1)), smax=(1 << (bits - 1)) - 1))
            )
        return scalar_reg(sc.urange(0, (1 << (8 * size)) - 1))

    def ctx_access(self, p: Reg, r: int, off: int, size: int, how: str, val: Reg | None) -> Reg:
        at = p.off + off
        if p.off or p.s.mask:
            raise Reject(f"dereference of modified ctx ptr R{r} off={p.off} disallowed")
        rules = self.ctx
        if rules.size is None:
            if how == "write":
                raise Reject(f"invalid bpf_context access off={at} size={size}")
            return self.loaded(size, False)
        bad = (
            at < 0
            or at + size > rules.size
            or at % size
            or (rules.exact_size is not None and size != rules.exact_size)
            or at in rules.forbidden
            or (how == "write" and (at not in rules.writable or size != 4))
        )
        kind = rules.pointers.get(at)
        if kind is not None and (size != 4 or how == "write"):
            bad = True
        if bad:
            raise Reject(f"invalid bpf_context access off={at} size={size}")
        if kind is not None:
            if kind == "pkt_end":
                return Reg("pkt_end")
            return Reg(kind, id=0, rng=0)
        return self.loaded(size, False)

    def stack_access(
        self,
        st: State,
        p: Reg,
        r: int,
        off: int,
        size: int,
        how: str,
        val: Reg | None,
        signed: bool,
    ) -> Reg:
        frame = st.frames[p.frame]
        if p.s.mask or p.s.value:
            lo = p.off + off + p.s.smin
            hi = p.off + off + p.s.smax + size
            if p.s.smin < -MAX_STACK or lo < -MAX_STACK or hi > 0:
                raise Reject(
                    f"invalid variable-offset {'read from' if how == 'read' else 'write to'} "
                    f"stack R{r}"
                )
            if how == "write":
                for o in range(lo, hi):
                    set_stack_byte(frame, o, "m")
                frame.depth = max(frame.depth, -lo)
                return NONE
            return self.loaded(size, signed)
        at = p.off + off
        if at % size and -MAX_STACK <= at < 0:
            raise Reject(f"misaligned stack access off 0+{p.off}+{off} size {size}")
        if at < -MAX_STACK or at + size > 0 or at >= 0:
            raise Reject(
                f"invalid {'read from' if how == 'read' else 'write to'} stack R{r} "
                f"off={at} size={size}"
            )
        frame.depth = max(frame.depth, -at)
        slot = (at // 8) * 8
        if how == "write":
            assert val is not None
            if size == 8 and at % 8 == 0:
                if val.t == "scalar" and val.s.const == 0:
                    frame.stack[slot] = "00000000"
                else:
                    frame.stack[slot] = val
                return NONE
            if val.t == "scalar" and val.s.const is not None:
                ch = "0" if val.s.const & ((1 << (8 * size)) - 1) == 0 else "m"
            else:
                ch = "m"
            for o in range(at, at + size):
                set_stack_byte(frame, o, ch)
            return NONE
        # read
        if size == 8 and at % 8 == 0:
            cur = frame.stack.get(slot)
            if isinstance(cur, Reg):
                return cur
            if cur == "00000000":
                return scalar_reg(ZERO)
            return UNKNOWN
        first = (at // 8) * 8
        cur = frame.stack.get(first)
        if isinstance(cur, Reg) and (at + size) <= first + 8:
            if cur.t == "scalar" and cur.s.const is not None:
                v = (cur.s.const >> (8 * (at - first))) & ((1 << (8 * size)) - 1)
                if signed:
                    v = sc.sext_val(v, 8 * size)
                return scalar_reg(sc.const(v))
            return self.loaded(size, signed)
        chars = [stack_byte(frame, o) for o in range(at, at + size)]
        if all(c == "0" for c in chars):
            return scalar_reg(ZERO)
        return self.loaded(size, signed)

    def check_mem_arg(self, st: State, r: int, size: int, write: bool, what: str) -> None:
        """A helper's memory argument: ``size`` bytes at register ``r``."""
        p = st.cur.regs[r]
        if p.t == "none":
            raise Reject(f"R{r} !read_ok")
        ok = {"fp", "pkt", "pkt_meta", "map_value", "mem"}
        if p.t not in ok or p.null:
            raise Reject(
                f"R{r} type={p.name() if p.t != 'scalar' else 'scalar'} expected=fp, pkt, "
                "pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_"
            )
        if size == 0:
            return
        if p.t == "fp":
            frame = st.frames[p.frame]
            at = p.off + p.s.smin
            hi = p.off + p.s.smax + size
            if at < -MAX_STACK or hi > 0:
                raise Reject(f"invalid indirect access to stack R{r} off={p.off} size={size}")
            frame.depth = max(frame.depth, -at)
            if write:
                for o in range(at, hi):
                    set_stack_byte(frame, o, "m")
            return
        # other memory: reuse the load checks on the first and last byte
        if size > 0:
            self.mem_access(st, r, 0, 1, "read", None)
            if p.t in ("pkt", "pkt_meta"):
                if p.off + size > p.rng:
                    raise Reject(
                        f"invalid access to packet, off={p.off} size={size}, "
                        f"R{r}(id={p.id},off={p.off},r={p.rng})"
                    )
            elif p.t in ("map_value", "mem"):
                if p.off + p.s.umax + size > p.size:
                    what2 = "map value, value_size" if p.t == "map_value" else "memory, mem_size"
                    raise Reject(f"invalid access to {what2}={p.size} off={p.off} size={size}")

    def pkt_compare(self, fall: State, taken: State, key: str, insn: Insn, a: Reg, b: Reg) -> None:
        """pkt vs pkt_end: the side where ``pkt + off <= end`` learns ``off`` bytes."""
        if a.t in ("pkt", "pkt_meta"):
            pkt, rel = a, key
        else:
            pkt, rel = b, sc.flip(key) if key in sc._FLIP else key
        if b.t == "pkt" and a.t == "pkt_meta":
            return
        if a.t == "pkt_meta" or b.t == "pkt_meta":
            return
        # rel now reads "pkt rel end"
        good: State | None = None
        strict = False
        if rel == "jgt":
            good = fall  # not (pkt > end): pkt <= end
        elif rel == "jge":
            good, strict = fall, True  # pkt < end
        elif rel == "jlt":
            good, strict = taken, True
        elif rel == "jle":
            good = taken
        # find_good_pkt_pointers: the fixed offset is proven (one more byte when the
        # comparison is strict), for every pointer of the same id; a variable part is
        # allowed if it is at most MAX_PACKET_OFF.
        if good is None or pkt.off < 0 or (pkt.off == 0 and strict):
            return
        if pkt.s.umax > 0xFFFF or pkt.s.umax + pkt.off > 0xFFFF:
            return
        rng = pkt.off + (1 if strict else 0)
        for fr in good.frames:
            for i, r in enumerate(fr.regs):
                if r.t == "pkt" and r.id == pkt.id and r.rng < rng:
                    fr.regs[i] = replace(r, rng=rng)
            for o, s in list(fr.stack.items()):
                if isinstance(s, Reg) and s.t == "pkt" and s.id == pkt.id and s.rng < rng:
                    fr.stack[o] = replace(s, rng=rng)

    def stack_peek(self, st: State, p: Reg, size: int) -> int | None:
        """The known value of ``size`` bytes on the stack at pointer ``p``, if known."""
        frame = st.frames[p.frame]
        at = p.off
        slot = (at // 8) * 8
        cur = frame.stack.get(slot)
        if isinstance(cur, Reg) and cur.t == "scalar" and cur.s.const is not None:
            if at + size <= slot + 8:
                return (cur.s.const >> (8 * (at - slot))) & ((1 << (8 * size)) - 1)
        if all(stack_byte(frame, o) == "0" for o in range(at, at + size)):
            return 0
        return None
