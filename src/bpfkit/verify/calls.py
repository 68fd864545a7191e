"""Calls in bpfkit's verifier (:mod:`bpfkit.verify.static`): local calls (frames, the
combined stack size), helper calls checked against the helper table and the program type's
rules (argument kinds, memory arguments, acquired and released references, what each
returns), and exits (back to the caller, or the program's return value and leaked
references)."""

from __future__ import annotations

from bpfkit.isa.insn import Insn
from bpfkit.uapi.helpers import by_id
from bpfkit.verify import scalar as sc
from bpfkit.verify.rules import helper_allowed, return_range
from bpfkit.verify.source import ProgramView
from bpfkit.verify.state import (
    BPF_MAX_VAR_OFF,
    MAX_STACK,
    NONE,
    UNKNOWN,
    Frame,
    MapInfo,
    Reg,
    Reject,
    State,
    tname,
)
from bpfkit.verify.transfer import Transfer

# Map types whose lookups return a value that is never NULL for a constant in-range key.
_ARRAYS = {2, 6}  # array, percpu_array


_SCALAR_PTR_OK = {"bpf_trace_printk", "bpf_snprintf"}


class CallRules(Transfer):
    """Local calls, helper calls and exits."""

    view: ProgramView
    prog_type: str
    attach_type: str
    global_calls: set[int]

    # -- calls ---------------------------------------------------------------------------

    def call(self, pc: int, insn: Insn, st: State) -> tuple[int, tuple[int, State] | None]:
        f = st.cur
        if insn.src == 1:
            if len(st.frames) >= 8:
                raise Reject(f"the call stack of {len(st.frames) + 1} frames is too deep !")
            target = pc + 1 + insn.imm
            regs = [NONE] * 11
            for r in range(1, 6):
                regs[r] = f.regs[r]
            regs[10] = Reg("fp", frame=len(st.frames))
            st.frames.append(Frame(regs, {}, callsite=pc + 1))
            if target in self.view.global_funcs:
                self.global_calls.add(pc)
            depth = sum(max(fr.depth, 0) for fr in st.frames)
            if depth > MAX_STACK:
                raise Reject(f"combined stack size of {len(st.frames)} calls is {depth}. Too large")
            return target, None
        if insn.src == 2:
            for r in range(1, 6):
                f.regs[r] = NONE
            f.regs[0] = UNKNOWN
            return pc + 1, None
        h = by_id(insn.imm)
        if h is None:
            raise Reject(f"invalid func unknown#{insn.imm}")
        if not helper_allowed(h.name, self.prog_type):
            raise Reject(f"program of this type cannot use helper {h.name}#{insn.imm}")
        self.helper(pc, insn, h, st)
        return pc + 1, None

    def helper(self, pc: int, insn: Insn, h: object, st: State) -> None:
        from bpfkit.uapi.helpers import Helper

        assert isinstance(h, Helper)
        f = st.cur
        name = h.name
        args = h.args
        mp: MapInfo | None = None
        for i, a in enumerate(args[:5]):
            r = i + 1
            v = f.regs[r]
            if v.t == "none":
                raise Reject(f"R{r} !read_ok")
            kind = a.kind
            if kind == "map":
                if v.t != "map_ptr":
                    raise Reject(f"R{r} type={tname(v)} expected=map_ptr")
                mp = v.mp
            elif kind == "ctx":
                if v.t != "ctx":
                    raise Reject(f"R{r} type={tname(v)} expected=ctx")
            elif kind == "func":
                if v.t != "func":
                    raise Reject(f"R{r} type={tname(v)} expected=func")
            elif kind == "ptr":
                nxt = args[i + 1] if i + 1 < len(args) else None
                if name in ("bpf_ringbuf_submit", "bpf_ringbuf_discard"):
                    if v.t != "mem" or v.null or not v.ref:
                        raise Reject(f"R{r} type={tname(v)} expected=ringbuf_mem")
                    if v.off:
                        raise Reject(f"R{r} must have zero offset when passed to release func")
                    continue
                if name == "bpf_sk_release":
                    if v.t != "sock" or v.null or not v.ref:
                        raise Reject(f"R{r} type={tname(v)} expected=sock")
                    continue
                if mp is not None and a.name in ("key", "value"):
                    size = mp.key_size if a.name == "key" else mp.value_size
                    self.check_mem_arg(st, r, size, False, a.name)
                    continue
                if nxt is not None and nxt.kind == "size":
                    sz = f.regs[r + 1]
                    if sz.t == "none":
                        raise Reject(f"R{r + 1} !read_ok")
                    if sz.t != "scalar":
                        raise Reject(f"R{r + 1} type={tname(sz)} expected=scalar")
                    if sz.s.smin < 0:
                        raise Reject(
                            f"R{r + 1} min value is negative, either use unsigned or 'var &= const'"
                        )
                    if sz.s.umax >= BPF_MAX_VAR_OFF:
                        raise Reject(
                            f"R{r + 1} unbounded memory access, use 'var &= const' or "
                            "'if (var < const)'"
                        )
                    size = sz.s.umax
                    if v.t == "scalar" and v.s.const == 0 and sz.s.umax == 0:
                        continue
                    self.check_mem_arg(st, r, size, "const" not in a.ctype, a.name)
                    continue
                if v.t == "scalar" and name in _SCALAR_PTR_OK:
                    continue
                if v.t == "scalar":
                    raise Reject(
                        f"R{r} type=scalar expected=fp, pkt, pkt_meta, map_key, map_value, mem, "
                        "ringbuf_mem, buf, trusted_ptr_"
                    )
                if v.null:
                    raise Reject(
                        f"R{r} type={v.name()} expected=fp, pkt, pkt_meta, map_key, map_value, "
                        "mem, ringbuf_mem, buf, trusted_ptr_"
                    )
            elif kind in ("size", "flags", "scalar"):
                if v.t != "scalar" and name not in _SCALAR_PTR_OK and kind != "scalar":
                    raise Reject(f"R{r} type={tname(v)} expected=scalar")
        # effects
        ret = UNKNOWN
        if name in ("bpf_ringbuf_submit", "bpf_ringbuf_discard", "bpf_sk_release"):
            ref = f.regs[1].ref
            if ref not in st.refs:
                raise Reject("R1 must be referenced when passed to release function")
            del st.refs[ref]
            for fr in st.frames:
                for i, rg in enumerate(fr.regs):
                    if rg.ref == ref:
                        fr.regs[i] = NONE
                for o, s in list(fr.stack.items()):
                    if isinstance(s, Reg) and s.ref == ref:
                        fr.stack[o] = "mmmmmmmm"
        if name in ("bpf_map_lookup_elem", "bpf_map_lookup_percpu_elem") and mp is not None:
            nid = self.new_id()
            never_null = False
            key = f.regs[2]
            if mp.type in _ARRAYS and key.t == "fp" and not key.s.mask:
                kv = self.stack_peek(st, key, mp.key_size)
                never_null = kv is not None and kv < mp.max_entries
            ret = Reg(
                "map_value",
                id=0 if never_null else nid,
                null=not never_null,
                size=mp.value_size,
                mp=mp,
            )
        elif name == "bpf_ringbuf_reserve":
            sz = f.regs[2]
            if sz.t != "scalar" or sz.s.const is None:
                raise Reject("R2 is not a known constant'")
            nid = self.new_id()
            ref = self.new_id()
            st.refs[ref] = pc
            ret = Reg("mem", id=nid, null=True, ref=ref, size=sz.s.const)
        elif name in ("bpf_sk_lookup_tcp", "bpf_sk_lookup_udp", "bpf_skc_lookup_tcp"):
            nid = self.new_id()
            ref = self.new_id()
            st.refs[ref] = pc
            ret = Reg("sock", id=nid, null=True, ref=ref)
        elif name == "bpf_loop":
            ret = UNKNOWN
        elif h.ret in ("void", ""):
            ret = UNKNOWN
        for r in range(1, 6):
            f.regs[r] = NONE
        f.regs[0] = ret

    def exit(self, pc: int, st: State) -> tuple[int, tuple[int, State] | None] | None:
        f = st.cur
        if f.regs[0].t == "none":
            raise Reject("R0 !read_ok")
        if len(st.frames) > 1:
            r0 = f.regs[0]
            callsite = f.callsite
            st.frames.pop()
            caller = st.cur
            for r in range(1, 6):
                caller.regs[r] = NONE
            # A global function is verified on its own by the kernel: its caller learns
            # only that it returns a number (btf_check_subprog_call, Linux 5.6+).
            caller.regs[0] = UNKNOWN if callsite - 1 in self.global_calls else r0
            return callsite, None
        if st.refs:
            rid, at = next(iter(st.refs.items()))
            raise Reject(f"Unreleased reference id={rid} alloc_insn={at}")
        rng = return_range(self.prog_type, self.attach_type)
        r0 = f.regs[0]
        if rng is not None:  # check_return_code: hooks that act on the number returned
            if r0.t != "scalar":
                raise Reject(f"At program exit the register R0 is not a known value ({tname(r0)})")
            if r0.s.smin < rng[0] or r0.s.smax > rng[1]:
                has = "".join(
                    f" {k}={v}"
                    for k, v, edge in (
                        ("smin", r0.s.smin, sc.S64_MIN),
                        ("smax", r0.s.smax, sc.S64_MAX),
                    )
                    if v != edge
                )
                raise Reject(
                    f"At program exit the register R0 has{has or ' unknown scalar value'} "
                    f"should have been in [{rng[0]}, {rng[1]}]"
                )
        return None
