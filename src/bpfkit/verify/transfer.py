"""Per-instruction transfer functions of bpfkit's verifier (:mod:`bpfkit.verify.static`):
ALU on numbers and pointers, wide loads (``lddw``: numbers, maps, functions) and conditional
jumps (which sides can happen, each side narrowed; NULL checks; loops that would pass the
budget)."""

from __future__ import annotations

from dataclasses import replace

from bpfkit.isa.insn import Insn
from bpfkit.isa.semantics import compute
from bpfkit.isa.table import Kind, Op
from bpfkit.verify import scalar as sc
from bpfkit.verify.pointers import PointerRules
from bpfkit.verify.scalar import Empty, Scalar
from bpfkit.verify.state import (
    LIMIT,
    UNKNOWN,
    Frame,
    MapInfo,
    Reg,
    Reject,
    State,
    mark_null,
    replace_scalar,
    s64,
    scalar_reg,
    wmask,
)


class Transfer(PointerRules):
    """What ALU instructions, wide loads and conditional jumps do to the state."""

    maps: dict[int, MapInfo]
    processed: int
    loop_seen: dict[int, tuple[tuple[int, ...], int, tuple[int, ...]]]

    # -- ALU -----------------------------------------------------------------------------

    def alu(self, insn: Insn, op: Op, f: Frame) -> None:
        d = insn.dst
        if d == 10:
            raise Reject("frame pointer is read only")
        w = op.width
        key = op.key
        if op.kind is Kind.ALU and key == "mov":
            if op.source == "reg":
                v = self.read_reg(f, insn.src)
                if w == 64:
                    f.regs[d] = v
                elif v.t == "scalar":
                    f.regs[d] = scalar_reg(sc.zext32(v.s))
                else:
                    f.regs[d] = scalar_reg(sc.urange(0, sc.M32))
            else:
                imm = insn.imm & (sc.M64 if w == 64 else sc.M32)
                f.regs[d] = scalar_reg(sc.const(imm))
            return
        if op.kind is Kind.MOVSX:
            v = self.read_reg(f, insn.src)
            if v.t == "scalar" and v.s.const is not None:
                f.regs[d] = scalar_reg(sc.const(compute(op, v.s.const & wmask(w), 0)))
            else:
                f.regs[d] = UNKNOWN if w == 64 else scalar_reg(sc.urange(0, sc.M32))
            return
        a = self.read_reg(f, d)
        if op.kind in (Kind.NEG, Kind.ENDIAN):
            if a.t != "scalar":
                raise Reject(f"R{d} pointer arithmetic with {key} operator prohibited")
            if a.s.const is not None:
                f.regs[d] = scalar_reg(sc.const(compute(op, a.s.const & wmask(w), 0)))
            else:
                f.regs[d] = UNKNOWN if w == 64 else scalar_reg(sc.urange(0, sc.M32))
            return
        if op.source == "reg":
            b = self.read_reg(f, insn.src)
        else:
            b = scalar_reg(sc.const(insn.imm & sc.M64))
        if a.t == "scalar" and b.t == "scalar":
            f.regs[d] = scalar_reg(self.scalar_alu(op, key, a.s, b.s, w, insn))
            return
        f.regs[d] = self.ptr_alu(insn, op, key, a, b, w)

    def scalar_alu(self, op: Op, key: str, a: Scalar, b: Scalar, w: int, insn: Insn) -> Scalar:
        if (
            key in ("lsh", "rsh", "arsh")
            and op.source == "imm"
            and b.const is not None
            and b.const & wmask(w) >= w
        ):
            raise Reject(f"invalid shift {insn.imm}")
        if key in ("div", "mod", "sdiv", "smod"):
            return sc.UNKNOWN  # the kernel tracks no range through a division (Linux 6.18)
        if a.const is not None and b.const is not None:
            r = compute(op, a.const & wmask(w), b.const & wmask(w))
            return sc.const(r)
        try:
            return sc.alu(key, a, b, w)
        except Empty:
            return sc.UNKNOWN if w == 64 else sc.urange(0, sc.M32)

    def ptr_alu(self, insn: Insn, op: Op, key: str, a: Reg, b: Reg, w: int) -> Reg:
        d = insn.dst
        opname = _OPNAME.get(key, key)
        if a.t != "scalar" and b.t != "scalar":
            if key == "sub" and w == 64:
                return UNKNOWN  # pointer - pointer: a number (privileged)
            raise Reject(f"R{d} pointer {opname} pointer prohibited")
        ptr, num, ptr_is_dst = (a, b, True) if a.t != "scalar" else (b, a, False)
        if w == 32:
            raise Reject(f"R{d} 32-bit pointer arithmetic prohibited")
        if key == "sub" and not ptr_is_dst:
            raise Reject(f"R{d} tried to subtract pointer from scalar")
        if key not in ("add", "sub"):
            if key in ("and", "or", "xor"):
                raise Reject(f"R{d} bitwise operator {opname} on pointer prohibited")
            raise Reject(f"R{d} pointer arithmetic with {opname} operator prohibited")
        if ptr.null:
            raise Reject(f"R{d} pointer arithmetic on {ptr.name()} prohibited")
        if ptr.t in ("map_ptr", "pkt_end", "sock", "func"):
            raise Reject(f"R{d} pointer arithmetic on {ptr.name()} prohibited")
        c = num.s.const
        if c is not None:
            delta = s64(c) if key == "add" else -s64(c)
            noff = ptr.off + delta
            if not -(1 << 29) < noff < (1 << 29):
                raise Reject(f"value {delta} makes {ptr.name()} pointer be out of bounds")
            return replace(ptr, off=noff)
        if ptr.t == "ctx":
            raise Reject(f"dereference of modified ctx ptr R{d} off={ptr.off} disallowed")
        try:
            s = sc.alu(key, ptr.s, num.s, 64)
        except Empty:
            s = sc.UNKNOWN
        if ptr.t == "pkt":
            if num.s.umax >= (1 << 16) and key == "add" and num.s.smin < 0:
                raise Reject(
                    "math between pkt pointer and register with unbounded min value is not allowed"
                )
            return replace(ptr, s=s, id=self.new_id(), rng=0)
        if num.s.smin < -(1 << 29) or num.s.smin == sc.S64_MIN:
            raise Reject(
                f"math between {ptr.name()} pointer and register with unbounded min value is not allowed"
            )
        if num.s.umax >= (1 << 29) and num.s.smin >= 0:
            raise Reject(f"R{d} unbounded memory access, make sure to bounds check any such access")
        return replace(ptr, s=s)

    def lddw(self, insn: Insn) -> Reg:
        if insn.src == 0:
            v = (insn.imm & sc.M32) | ((insn.imm_hi & sc.M32) << 32)
            return scalar_reg(sc.const(v))
        if insn.src in (1, 2):
            mi = self.maps.get(insn.imm)
            if mi is None:
                raise Reject(f"fd {insn.imm} is not pointing to valid bpf_map")
            if insn.src == 1:
                return Reg("map_ptr", mp=mi)
            return Reg("map_value", off=insn.imm_hi, size=mi.value_size, mp=mi)
        if insn.src == 4:
            return Reg("func", off=insn.imm)
        return Reg("btf")

    # -- jumps ---------------------------------------------------------------------------

    def jcond(self, pc: int, insn: Insn, op: Op, st: State) -> tuple[int, tuple[int, State] | None]:
        f = st.cur
        w = op.width
        key = "j" + op.key
        target = pc + 1 + insn.off
        fall = pc + 1
        a = self.read_reg(f, insn.dst)
        if op.source == "reg":
            b = self.read_reg(f, insn.src)
        else:
            b = scalar_reg(sc.const(insn.imm & sc.M64))
        if a.t == "scalar" and b.t == "scalar":
            taken = sc.branch_taken(key, a.s, b.s, w)
            if taken is None and target <= pc:
                self.loop_budget(pc, a.s, b.s)
            if taken is True:
                return target, None
            if taken is False:
                return fall, None
            other = st.copy()
            # other = taken side
            ok_t = self.narrow(other, insn, op, key, a, b, w)
            nkey = sc.negate(key)
            ok_f = True
            if nkey is not None:
                ok_f = self.narrow(st, insn, op, nkey, a, b, w)
            if not ok_t:
                return fall, None
            if not ok_f:
                return target, None
            return fall, (target, other)
        # pointers
        if a.null or b.null:
            ptr, num = (a, b) if a.null else (b, a)
            if num.t == "scalar" and num.s.const == 0 and key in ("jeq", "jne") and w == 64:
                other = st.copy()
                # on the side where ptr == 0 it is a NULL scalar, else it is a pointer
                null_side, ptr_side = (other, st) if key == "jeq" else (st, other)
                mark_null(null_side, ptr.id, is_null=True)
                mark_null(ptr_side, ptr.id, is_null=False)
                return fall, (target, other)
        if w == 64 and {a.t, b.t} <= {"pkt", "pkt_end", "pkt_meta"} and a.t != b.t:
            other = st.copy()
            self.pkt_compare(st, other, key, insn, a, b)
            return fall, (target, other)
        if a.t != "scalar" and b.t == "scalar" and b.s.const == 0 and key in ("jeq", "jne"):
            # a non-NULL pointer compared with 0: the comparison is known
            return (target if key == "jne" else fall), None
        other = st.copy()
        return fall, (target, other)

    def loop_budget(self, pc: int, a: Scalar, b: Scalar) -> None:
        """A loop whose compared value moves by the same step each time round, with an exit
        further away than the 1M-instruction budget allows: the kernel would walk it to the
        limit (each round is a new state), so stop now with its verdict.  The estimate is
        the largest distance, over the bounds that move, to the value compared with."""
        fields = (a.umin, a.umax, a.smin, a.smax, b.umin, b.umax, b.smin, b.smax)
        last = self.loop_seen.get(pc)
        self.loop_seen[pc] = (fields, self.processed, ())
        if last is None:
            return
        deltas = tuple(x - y for x, y in zip(fields, last[0], strict=True))
        self.loop_seen[pc] = (fields, self.processed, deltas)
        body = self.processed - last[1]
        if deltas != last[2] or body <= 0 or not any(deltas):
            return  # not a steady step (yet)
        targets = (b.umin, b.umax, b.smin, b.smax, a.umin, a.umax, a.smin, a.smax)
        rounds = max(
            abs(t - f) // abs(d) for f, d, t in zip(fields, deltas, targets, strict=True) if d
        )
        if self.processed + rounds * body > 2 * LIMIT:
            self.processed = LIMIT + 1
            raise Reject(f"BPF program is too large. Processed {LIMIT + 1} insn")

    def narrow(self, st: State, insn: Insn, op: Op, key: str, a: Reg, b: Reg, w: int) -> bool:
        """Narrow the registers of ``st`` by ``a key b``; False if it cannot hold."""
        try:
            na, nb = sc.refine(key, a.s, b.s, w)
        except Empty:
            return False
        f = st.cur
        replace_scalar(f, insn.dst, a, na)
        if op.source == "reg":
            replace_scalar(f, insn.src, b, nb)
        return True


_OPNAME = {
    "add": "+=",
    "sub": "-=",
    "mul": "*=",
    "div": "/=",
    "mod": "%=",
    "and": "&=",
    "or": "|=",
    "xor": "^=",
    "lsh": "<<=",
    "rsh": ">>=",
    "arsh": "s>>=",
    "sdiv": "s/=",
    "smod": "s%=",
}
