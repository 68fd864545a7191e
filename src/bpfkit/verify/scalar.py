"""The kernel verifier's abstract domain for numbers: a tnum (known bits) with signed and
unsigned bounds, for the whole 64-bit register and for its low 32 bits.

A :class:`Scalar` is immutable.  Arithmetic follows the kernel's transfer functions in
spirit (kernel/bpf/tnum.c, adjust_scalar_min_max_vals): exact when both operands are known
(computed by :func:`bpfkit.isa.semantics.compute`), bounds that stay sound on overflow,
and a final sync that lets the tnum and the four ranges tighten each other.
:func:`refine` narrows two scalars on each side of a conditional jump and
:func:`branch_taken` says when a comparison has only one outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
S64_MIN, S64_MAX = -(1 << 63), (1 << 63) - 1
S32_MIN, S32_MAX = -(1 << 31), (1 << 31) - 1


def sext_val(v: int, bits: int) -> int:
    """``v``'s low ``bits`` sign-extended, as a 64-bit unsigned value."""
    v &= (1 << bits) - 1
    return (v - (1 << bits) if v >> (bits - 1) else v) & M64


def _s(v: int, w: int) -> int:
    v &= (1 << w) - 1
    return v - (1 << w) if v >> (w - 1) else v


@dataclass(frozen=True, slots=True)
class Scalar:
    """tnum (value, mask) + 64-bit and 32-bit signed/unsigned bounds."""

    value: int
    mask: int
    umin: int
    umax: int
    smin: int
    smax: int
    u32min: int
    u32max: int
    s32min: int
    s32max: int

    @property
    def const(self) -> int | None:
        """The value if it is known."""
        return self.value if self.mask == 0 else None

    def text(self) -> str:
        """The kernel verifier's notation (Linux 6.18, print_reg_state): ``17``,
        ``0x186a0``, or ``scalar(smin=smin32=0,smax=umax=smax32=umax32=255,
        var_off=(0x0; 0xff))`` (bounds that say nothing are left out; equal ones share
        one value)."""
        if self.mask == 0:
            return _snum(_s(self.value, 64))
        parts = ranges_text(self)
        if self.mask != M64:
            parts.append(f"var_off=({self.value:#x}; {self.mask:#x})")
        return "scalar(" + ",".join(parts) + ")"


def _decimal(v: int) -> bool:
    return -32768 <= v <= 32767  # the kernel prints numbers past s16 in hex


def _snum(v: int) -> str:
    return str(v) if _decimal(v) else hex(v & M64)


def ranges_text(s: Scalar) -> list[str]:
    """The bounds of ``s`` as the kernel prints them (print_scalar_ranges): ``smin=...``
    items, one per distinct value, names of equal bounds joined (``smax=umax=255``)."""
    s32min = s.s32min if _decimal(s.s32min) else s.s32min & M32
    s32max = s.s32max if _decimal(s.s32max) else s.s32max & M32
    names = ("smin", "smax", "umin", "umax", "smin32", "smax32", "umin32", "umax32")
    vals = [s.smin & M64, s.smax & M64, s.umin, s.umax, s32min & M64, s32max & M64]
    vals += [s.u32min, s.u32max]
    omit = [s.smin == S64_MIN, s.smax == S64_MAX, s.umin == 0, s.umax == M64]
    omit += [s.s32min == S32_MIN, s.s32max == S32_MAX, s.u32min == 0, s.u32max == M32]
    out = []
    for i, name in enumerate(names):
        if omit[i]:
            continue
        neg = name[0] == "s" and vals[i] >> 63 == 1
        joined = [name]
        for j in range(i + 2, len(names), 2):
            if omit[j] or vals[j] != vals[i]:
                continue
            if (names[j][0] == "s" and vals[j] >> 63 == 1) != neg:
                continue  # the kernel does not mix negatives with positives
            omit[j] = True
            joined.append(names[j])
        v = vals[i]
        num = _snum(_s(v, 64)) if name[0] == "s" else (str(v) if v <= 32767 else hex(v))
        out.append("=".join(joined) + "=" + num)
    return out


UNKNOWN = Scalar(0, M64, 0, M64, S64_MIN, S64_MAX, 0, M32, S32_MIN, S32_MAX)


def const(v: int) -> Scalar:
    """A known 64-bit value."""
    v &= M64
    lo = v & M32
    return Scalar(v, 0, v, v, _s(v, 64), _s(v, 64), lo, lo, _s(lo, 32), _s(lo, 32))


def urange(lo: int, hi: int) -> Scalar:
    """Any value in [lo, hi] (unsigned 64-bit)."""
    return sync(Scalar(0, M64, lo, hi, S64_MIN, S64_MAX, 0, M32, S32_MIN, S32_MAX))


# -- tnum ----------------------------------------------------------------------------------


def t_range(lo: int, hi: int, w: int = 64) -> tuple[int, int]:
    """The tnum of all numbers in [lo, hi]."""
    chi = lo ^ hi
    bits = chi.bit_length()
    if bits > w - 1 and w == 64 and chi >> 63:
        return 0, (1 << w) - 1
    delta = (1 << bits) - 1
    return lo & ~delta & ((1 << w) - 1), delta


def t_add(a: tuple[int, int], b: tuple[int, int], w: int) -> tuple[int, int]:
    m = (1 << w) - 1
    sm = (a[1] + b[1]) & m
    sv = (a[0] + b[0]) & m
    sigma = (sm + sv) & m
    chi = sigma ^ sv
    mu = (chi | a[1] | b[1]) & m
    return sv & ~mu & m, mu


def t_sub(a: tuple[int, int], b: tuple[int, int], w: int) -> tuple[int, int]:
    m = (1 << w) - 1
    dv = (a[0] - b[0]) & m
    alpha = (dv + a[1]) & m
    beta = (dv - b[1]) & m
    chi = alpha ^ beta
    mu = (chi | a[1] | b[1]) & m
    return dv & ~mu & m, mu


def t_and(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    alpha = a[0] | a[1]
    beta = b[0] | b[1]
    v = a[0] & b[0]
    return v, alpha & beta & ~v


def t_or(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    v = a[0] | b[0]
    mu = a[1] | b[1]
    return v, mu & ~v


def t_xor(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    v = a[0] ^ b[0]
    mu = a[1] | b[1]
    return v & ~mu, mu


def t_mul(a: tuple[int, int], b: tuple[int, int], w: int) -> tuple[int, int]:
    m = (1 << w) - 1
    acc_v = (a[0] * b[0]) & m
    acc_m = (0, 0)
    av, am = a
    bv, bm = b
    while av or am:
        if av & 1:
            acc_m = t_add(acc_m, (0, bm), w)
        elif am & 1:
            acc_m = t_add(acc_m, (0, bv | bm), w)
        av, am = av >> 1, am >> 1
        bv, bm = (bv << 1) & m, (bm << 1) & m
    return t_add((acc_v, 0), acc_m, w)


# -- sync ----------------------------------------------------------------------------------


def _sync_w(
    value: int, mask: int, umin: int, umax: int, smin: int, smax: int, w: int
) -> tuple[int, int, int, int, int, int] | None:
    """Tighten one width's tnum and ranges against each other; None if empty."""
    m = (1 << w) - 1
    sign = 1 << (w - 1)
    for _ in range(2):
        # bounds from the tnum
        umin = max(umin, value)
        umax = min(umax, value | mask)
        if mask & sign:
            smin = max(smin, _s(value | sign, w))
            smax = min(smax, _s((value | mask) & ~sign & m, w))
        else:
            smin = max(smin, _s(value, w))
            smax = min(smax, _s(value | mask, w))
        # signed <-> unsigned when the sign is settled
        if smin >= 0 or smax < 0:
            umin = max(umin, smin & m)
            umax = min(umax, smax & m)
        if umax < sign or umin >= sign:
            smin = max(smin, _s(umin, w))
            smax = min(smax, _s(umax, w))
        if umin > umax or smin > smax:
            return None
        # tnum from the unsigned range
        rv, rm = t_range(umin, umax, w)
        # intersect (value, mask) with (rv, rm)
        known_conflict = (value ^ rv) & ~mask & ~rm & m
        if known_conflict:
            return None
        v = (value | rv) & m
        mu = mask & rm
        value, mask = v & ~mu & m, mu
    return value, mask, umin, umax, smin, smax


def sync(s: Scalar) -> Scalar:
    """Let the 64-bit and 32-bit views and the tnum tighten each other (the kernel's
    reg_bounds_sync); raises :class:`Empty` if no value fits."""
    r64 = _sync_w(s.value, s.mask, s.umin, s.umax, s.smin, s.smax, 64)
    if r64 is None:
        raise Empty
    value, mask, umin, umax, smin, smax = r64
    u32min, u32max, s32min, s32max = s.u32min, s.u32max, s.s32min, s.s32max
    # 32-bit view from the 64-bit range when the upper halves agree
    if umin >> 32 == umax >> 32:
        u32min, u32max = max(u32min, umin & M32), min(u32max, umax & M32)
    if smin >> 32 == smax >> 32:
        lo, hi = _s(smin, 32), _s(smax, 32)
        if lo <= hi:
            s32min, s32max = max(s32min, lo), min(s32max, hi)
    r32 = _sync_w(value & M32, mask & M32, u32min, u32max, s32min, s32max, 32)
    if r32 is None:
        raise Empty
    v32, m32, u32min, u32max, s32min, s32max = r32
    value = (value & ~M32) | v32
    mask = (mask & ~M32) | m32
    value &= ~mask
    # 64-bit range from the 32-bit one when the upper half is known
    if umin >> 32 == umax >> 32:
        hi = umin & ~M32
        umin, umax = max(umin, hi | u32min), min(umax, hi | u32max)
        r64 = _sync_w(value, mask, umin, umax, smin, smax, 64)
        if r64 is None:
            raise Empty
        value, mask, umin, umax, smin, smax = r64
    return Scalar(value, mask, umin, umax, smin, smax, u32min, u32max, s32min, s32max)


class Empty(Exception):
    """No value satisfies the constraints: the branch cannot be taken."""


# -- arithmetic ----------------------------------------------------------------------------


def _view(s: Scalar, w: int) -> tuple[int, int, int, int, int, int]:
    if w == 64:
        return s.value, s.mask, s.umin, s.umax, s.smin, s.smax
    return s.value & M32, s.mask & M32, s.u32min, s.u32max, s.s32min, s.s32max


def _make(value: int, mask: int, umin: int, umax: int, smin: int, smax: int, w: int) -> Scalar:
    """A result of width ``w`` as a 64-bit register (32-bit results are zero-extended)."""
    if w == 64:
        return sync(Scalar(value, mask, umin, umax, smin, smax, 0, M32, S32_MIN, S32_MAX))
    s32min, s32max = smin, smax
    return sync(Scalar(value, mask, umin, umax, umin, umax, umin, umax, s32min, s32max))


def alu(key: str, a: Scalar, b: Scalar, w: int) -> Scalar:
    """``a op b`` at width ``w`` for an ALU semantics key of the ISA table; exact on
    constants (the caller computes those with isa.semantics), sound otherwise."""
    m = (1 << w) - 1
    smn, smx = (S64_MIN, S64_MAX) if w == 64 else (S32_MIN, S32_MAX)
    av, am, aumin, aumax, asmin, asmax = _view(a, w)
    bv, bm, bumin, bumax, bsmin, bsmax = _view(b, w)
    full = (0, m, 0, m, smn, smx)
    if key == "add":
        v, mk = t_add((av, am), (bv, bm), w)
        umin, umax = aumin + bumin, aumax + bumax
        if umax > m:
            umin, umax = 0, m
        smin, smax = asmin + bsmin, asmax + bsmax
        if smin < smn or smax > smx:
            smin, smax = smn, smx
        return _make(v, mk, umin, umax, smin, smax, w)
    if key == "sub":
        v, mk = t_sub((av, am), (bv, bm), w)
        umin, umax = aumin - bumax, aumax - bumin
        if umin < 0:
            umin, umax = 0, m
        smin, smax = asmin - bsmax, asmax - bsmin
        if smin < smn or smax > smx:
            smin, smax = smn, smx
        return _make(v, mk, umin, umax, smin, smax, w)
    if key == "mul":
        v, mk = t_mul((av, am), (bv, bm), w)
        if aumax * bumax <= m and asmin >= 0 and bsmin >= 0:
            lo, hi = aumin * bumin, aumax * bumax
            return _make(v, mk, lo, hi, lo if hi <= smx else smn, hi if hi <= smx else smx, w)
        return _make(v, mk, 0, m, smn, smx, w)
    if key == "and":
        v, mk = t_and((av, am), (bv, bm))
        umax = min(aumax, bumax)
        if asmin >= 0 or bsmin >= 0:
            return _make(v, mk, v, umax, 0, min(umax, smx), w)
        return _make(v, mk, v, umax, smn, smx, w)
    if key == "or":
        v, mk = t_or((av, am), (bv, bm))
        umin = max(aumin, bumin)
        if asmin >= 0 and bsmin >= 0:
            return _make(v, mk, umin, v | mk, 0, smx, w)
        return _make(v, mk, umin, v | mk, smn, smx, w)
    if key == "xor":
        v, mk = t_xor((av, am), (bv, bm))
        if asmin >= 0 and bsmin >= 0:
            return _make(v, mk, v, v | mk, 0, smx, w)
        return _make(v, mk, v, v | mk, smn, smx, w)
    if key in ("lsh", "rsh", "arsh") and bm == 0:
        k = bv
        if k >= w:
            return _make(*full, w)
        if key == "lsh":
            v, mk = (av << k) & m, (am << k) & m
            if aumax << k <= m:
                return _make(v, mk, aumin << k, aumax << k, smn, smx, w)
            return _make(v, mk, 0, m, smn, smx, w)
        if key == "rsh":
            return _make(av >> k, am >> k, aumin >> k, aumax >> k, smn, smx, w)
        sv = _s(av, w) >> k & m
        smk = (_s(am, w) >> k) & m if am >> (w - 1) else am >> k
        if am >> (w - 1):
            sv &= ~smk
        return _make(sv & ~smk & m, smk, 0, m, asmin >> k, asmax >> k, w)
    if key in ("div", "mod") and bm == 0 and bv != 0 and am == m and w == 64:
        pass
    if key == "div" and bm == 0 and bv != 0:
        return _make(0, m, aumin // bv, aumax // bv, smn, smx, w)
    if key == "mod" and bm == 0 and bv != 0:
        return _make(0, m, 0, min(aumax, bv - 1), smn, smx, w)
    return _make(*full, w)


def zext32(s: Scalar) -> Scalar:
    """The low 32 bits of ``s`` zero-extended (``w`` registers, mov32)."""
    return _make(s.value & M32, s.mask & M32, s.u32min, s.u32max, s.s32min, s.s32max, 32)


def truncate(s: Scalar, size: int) -> Scalar:
    """The low ``size`` bytes, zero-extended (a narrower load or store of ``s``)."""
    if size == 8:
        return s
    if size == 4:
        return zext32(s)
    m = (1 << (8 * size)) - 1
    if s.umax <= m:
        return s
    return urange(0, m) if s.mask else const(s.value & m)


# -- comparisons ---------------------------------------------------------------------------

_FLIP = {
    "jeq": "jeq",
    "jne": "jne",
    "jgt": "jlt",
    "jlt": "jgt",
    "jge": "jle",
    "jle": "jge",
    "jsgt": "jslt",
    "jslt": "jsgt",
    "jsge": "jsle",
    "jsle": "jsge",
    "jset": "jset",
}
_NEG = {
    "jeq": "jne",
    "jne": "jeq",
    "jgt": "jle",
    "jle": "jgt",
    "jlt": "jge",
    "jge": "jlt",
    "jsgt": "jsle",
    "jsle": "jsgt",
    "jslt": "jsge",
    "jsge": "jslt",
}


def flip(key: str) -> str:
    """The same comparison with its operands swapped."""
    return _FLIP[key]


def negate(key: str) -> str | None:
    """The comparison that holds on the fall-through side (None for jset)."""
    return _NEG.get(key)


def branch_taken(key: str, a: Scalar, b: Scalar, w: int) -> bool | None:
    """True/False if ``a key b`` at width ``w`` always/never holds, else None."""
    av, am, aumin, aumax, asmin, asmax = _view(a, w)
    bv, bm, bumin, bumax, bsmin, bsmax = _view(b, w)
    if key == "jeq" or key == "jne":
        res: bool | None = None
        if am == 0 and bm == 0:
            res = av == bv
        elif (av ^ bv) & ~am & ~bm:
            res = False
        elif aumin > bumax or aumax < bumin or asmin > bsmax or asmax < bsmin:
            res = False
        if res is None:
            return None
        return res if key == "jeq" else not res
    if key == "jset":
        if av & bv:
            return True
        if not ((av | am) & (bv | bm)):
            return False
        return None
    table = {
        "jgt": (aumin > bumax, aumax <= bumin),
        "jge": (aumin >= bumax, aumax < bumin),
        "jlt": (aumax < bumin, aumin >= bumax),
        "jle": (aumax <= bumin, aumin > bumax),
        "jsgt": (asmin > bsmax, asmax <= bsmin),
        "jsge": (asmin >= bsmax, asmax < bsmin),
        "jslt": (asmax < bsmin, asmin >= bsmax),
        "jsle": (asmax <= bsmin, asmin > bsmax),
    }
    yes, no = table[key]
    return True if yes else (False if no else None)


def _narrow(s: Scalar, w: int, **kw: int) -> Scalar:
    """``s`` with some bounds of width ``w`` tightened (never loosened)."""
    f = {
        "umin": s.umin,
        "umax": s.umax,
        "smin": s.smin,
        "smax": s.smax,
        "u32min": s.u32min,
        "u32max": s.u32max,
        "s32min": s.s32min,
        "s32max": s.s32max,
    }
    for k, v in kw.items():
        name = k if w == 64 else k[0] + "32" + k[1:]
        if k.endswith("min"):
            f[name] = max(f[name], v)
        else:
            f[name] = min(f[name], v)
    return sync(Scalar(s.value, s.mask, **f))


def refine(key: str, a: Scalar, b: Scalar, w: int) -> tuple[Scalar, Scalar]:
    """``a`` and ``b`` narrowed by knowing ``a key b`` holds (raises Empty if it cannot)."""
    av, am, aumin, aumax, asmin, asmax = _view(a, w)
    bv, bm, bumin, bumax, bsmin, bsmax = _view(b, w)
    if key == "jeq":
        na = _narrow(a, w, umin=bumin, umax=bumax, smin=bsmin, smax=bsmax)
        nb = _narrow(b, w, umin=aumin, umax=aumax, smin=asmin, smax=asmax)
        if bm == 0:
            if (av ^ bv) & ~am:
                raise Empty
            if w == 64:
                na = sync(
                    Scalar(
                        bv,
                        0,
                        bv,
                        bv,
                        _s(bv, 64),
                        _s(bv, 64),
                        bv & M32,
                        bv & M32,
                        _s(bv, 32),
                        _s(bv, 32),
                    )
                )
            else:
                na = sync(
                    Scalar(
                        (a.value & ~M32) | bv,
                        a.mask & ~M32,
                        na.umin,
                        na.umax,
                        na.smin,
                        na.smax,
                        bv,
                        bv,
                        _s(bv, 32),
                        _s(bv, 32),
                    )
                )
        if am == 0 and w == 64:
            nb = const(av)
        return na, nb
    if key == "jne":
        if bm == 0:
            if av == bv and am == 0:
                raise Empty
            if aumin == bv:
                a = _narrow(a, w, umin=bv + 1)
            elif aumax == bv:
                a = _narrow(a, w, umax=bv - 1)
            if asmin == _s(bv, w):
                a = _narrow(a, w, smin=asmin + 1)
            elif asmax == _s(bv, w):
                a = _narrow(a, w, smax=asmax - 1)
        return a, b
    if key == "jset":
        return a, b
    if key == "jgt":
        return _narrow(a, w, umin=bumin + 1), _narrow(b, w, umax=aumax - 1)
    if key == "jge":
        return _narrow(a, w, umin=bumin), _narrow(b, w, umax=aumax)
    if key == "jlt":
        return _narrow(a, w, umax=bumax - 1), _narrow(b, w, umin=aumin + 1)
    if key == "jle":
        return _narrow(a, w, umax=bumax), _narrow(b, w, umin=aumin)
    if key == "jsgt":
        return _narrow(a, w, smin=bsmin + 1), _narrow(b, w, smax=asmax - 1)
    if key == "jsge":
        return _narrow(a, w, smin=bsmin), _narrow(b, w, smax=asmax)
    if key == "jslt":
        return _narrow(a, w, smax=bsmax - 1), _narrow(b, w, smin=asmin + 1)
    if key == "jsle":
        return _narrow(a, w, smax=bsmax), _narrow(b, w, smin=asmin)
    return a, b
