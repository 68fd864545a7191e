"""The one table of the eBPF instruction set.

Every valid instruction form has one :class:`Op` row: its opcode byte, the field values
that tell it apart from other forms sharing that opcode (``off`` for sdiv/smod/movsx and
addr_space_cast, ``imm`` for atomics and byte swaps, ``src`` for lddw and calls), its
mnemonic in the conformance-suite syntax (``add32``, ``ldxdw``, ``lock fetch add``), its
text in LLVM's C-like syntax (a template), the semantics key the VM and verifier
dispatch on, and the first ISA version (``-mcpu=vN``) that has it.

The disassembler, assembler, explainer, VM and verifier all derive from :data:`OPS`.

Template placeholders (LLVM syntax): ``{rd}``/``{wd}`` dst as ``rN``/``wN``,
``{rs}``/``{ws}`` src as ``rN``/``wN``, ``{imm}`` the signed immediate, ``{imm64}`` the
lddw immediate, ``{off}`` a memory offset printed ``+ 8``/``- 8``, ``{target}`` a jump
target, ``{as_dst}``/``{as_src}`` the address spaces of addr_space_cast, ``{pseudo}`` the
``src`` of a pseudo lddw and ``{imm_lo}`` its imm as unsigned 32-bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from bpfkit.isa.encoding import (
    SIZE_BYTES,
    SIZE_SUFFIX,
    AluOp,
    AtomicOp,
    CallSrc,
    Class,
    JmpOp,
    Mode,
    PseudoSrc,
    Size,
    Source,
)
from bpfkit.isa.insn import Insn


class Kind(Enum):
    """The shape of an instruction: which fields it uses and how it is written."""

    ALU = "alu"  # dst op= src|imm
    NEG = "neg"  # dst = -dst
    MOVSX = "movsx"  # dst = (sN) src
    ENDIAN = "endian"  # dst = le16/be32/bswap64 dst
    ADDR_SPACE_CAST = "addr_space_cast"
    LDDW = "lddw"  # dst = imm64
    LD_ABS = "ld_abs"  # r0 = packet[imm]
    LD_IND = "ld_ind"  # r0 = packet[src + imm]
    LOAD = "load"  # dst = *(size *)(src + off)
    LOAD_SX = "load_sx"  # dst = *(sN *)(src + off)
    STORE_IMM = "store_imm"  # *(size *)(dst + off) = imm
    STORE_REG = "store_reg"  # *(size *)(dst + off) = src
    ATOMIC = "atomic"  # lock *(size *)(dst + off) op= src, fetch, xchg, cmpxchg
    LOAD_ACQ = "load_acquire"
    STORE_REL = "store_release"
    JA = "ja"  # goto off (JMP) or imm (JMP32: gotol)
    JCOND = "jcond"  # if dst op src|imm goto off
    MAY_GOTO = "may_goto"
    GOTOX = "gotox"
    CALL = "call"  # helper (src 0), local (src 1), kfunc (src 2)
    CALLX = "callx"
    EXIT = "exit"


@dataclass(frozen=True, slots=True)
class Op:
    """One instruction form of the eBPF instruction set."""

    mnemonic: str  # conformance-suite syntax: "add32", "ldxdw", "lock fetch add32", "call local"
    opcode: int
    kind: Kind
    key: str  # semantics: "add", "sdiv", "eq", "fetch_add", "xchg", "helper", ...
    llvm: str  # LLVM (llvm-objdump) text template, in its -mcpu=v4 form
    width: int = 64  # operation width in bits (32 for ALU/JMP32 and 32-bit atomics)
    size: int = 0  # memory access size in bytes
    source: str = ""  # "imm" or "reg" for ALU/JMP forms
    off: int | None = None  # required value of ``off`` (discriminator), if any
    imm: int | None = None  # required value of ``imm`` (discriminator), if any
    src: int | None = None  # required value of ``src`` (discriminator), if any
    version: int = 1  # first -mcpu version with this form; 5 = newer than v4
    uses: frozenset[str] = field(default_factory=frozenset)  # fields with meaning
    doc: str = ""  # one line on what it does

    def matches(self, insn: Insn) -> bool:
        """True if ``insn`` is this form (opcode and discriminators)."""
        return (
            insn.opcode == self.opcode
            and (self.off is None or insn.off == self.off)
            and (self.imm is None or insn.imm == self.imm)
            and (self.src is None or insn.src == self.src)
        )

    def reserved_nonzero(self, insn: Insn) -> list[str]:
        """Names of fields this form does not use that are not zero in ``insn``."""
        bad = []
        for name in ("dst", "src", "off", "imm"):
            if name in self.uses or getattr(self, name, None) is not None:
                continue  # used, or a discriminator already checked by matches()
            if getattr(insn, name):
                bad.append(name)
        if self.kind is Kind.LDDW and insn.next_raw:
            bad.append("second slot")
        return bad


# --- the rows --------------------------------------------------------------------------

_ALU_OPS: list[tuple[AluOp, str, str, str]] = [
    # op, mnemonic, semantics key, LLVM operator
    (AluOp.ADD, "add", "add", "+="),
    (AluOp.SUB, "sub", "sub", "-="),
    (AluOp.MUL, "mul", "mul", "*="),
    (AluOp.DIV, "div", "div", "/="),
    (AluOp.OR, "or", "or", "|="),
    (AluOp.AND, "and", "and", "&="),
    (AluOp.LSH, "lsh", "lsh", "<<="),
    (AluOp.RSH, "rsh", "rsh", ">>="),
    (AluOp.MOD, "mod", "mod", "%="),
    (AluOp.XOR, "xor", "xor", "^="),
    (AluOp.MOV, "mov", "mov", "="),
    (AluOp.ARSH, "arsh", "arsh", "s>>="),
]

_ALU_DOC = {
    "add": "adds",
    "sub": "subtracts",
    "mul": "multiplies by",
    "div": "divides (unsigned) by",
    "or": "bitwise-ors with",
    "and": "bitwise-ands with",
    "lsh": "shifts left by",
    "rsh": "shifts right (logical) by",
    "mod": "takes the unsigned remainder by",
    "xor": "bitwise-xors with",
    "mov": "copies",
    "arsh": "shifts right (arithmetic) by",
    "sdiv": "divides (signed) by",
    "smod": "takes the signed remainder by",
}

_JMP_OPS: list[tuple[JmpOp, str, str, str]] = [
    (JmpOp.JEQ, "jeq", "eq", "=="),
    (JmpOp.JGT, "jgt", "gt", ">"),
    (JmpOp.JGE, "jge", "ge", ">="),
    (JmpOp.JSET, "jset", "set", "&"),
    (JmpOp.JNE, "jne", "ne", "!="),
    (JmpOp.JSGT, "jsgt", "sgt", "s>"),
    (JmpOp.JSGE, "jsge", "sge", "s>="),
    (JmpOp.JLT, "jlt", "lt", "<"),
    (JmpOp.JLE, "jle", "le", "<="),
    (JmpOp.JSLT, "jslt", "slt", "s<"),
    (JmpOp.JSLE, "jsle", "sle", "s<="),
]

_SIZES = [Size.B, Size.H, Size.W, Size.DW]
_CTYPE = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}
_STYPE = {1: "s8", 2: "s16", 4: "s32"}

_ATOMIC_RMW: list[tuple[AtomicOp, str, str]] = [
    (AtomicOp.ADD, "add", "+="),
    (AtomicOp.OR, "or", "|="),
    (AtomicOp.AND, "and", "&="),
    (AtomicOp.XOR, "xor", "^="),
]

_DST_SRC = frozenset({"dst", "src"})
_DST_IMM = frozenset({"dst", "imm"})
_MEM_LOAD = frozenset({"dst", "src", "off"})
_MEM_STORE_IMM = frozenset({"dst", "off", "imm"})


def _build() -> list[Op]:
    ops: list[Op] = []
    add = ops.append
    for cls, width, suffix, reg in ((Class.ALU64, 64, "", "r"), (Class.ALU, 32, "32", "w")):
        d, s = "{" + reg + "d}", "{" + reg + "s}"
        version = 1 if width == 64 else 3  # ALU32 is -mcpu=v3 (alu32)
        for aop, mn, key, sym in _ALU_OPS:
            for source, srcbits in (("imm", Source.K), ("reg", Source.X)):
                rhs = "{imm}" if source == "imm" else s
                add(
                    Op(
                        f"{mn}{suffix}",
                        cls | aop | srcbits,
                        Kind.ALU,
                        key,
                        f"{d} {sym} {rhs}",
                        width=width,
                        source=source,
                        off=0,
                        version=version,
                        uses=_DST_IMM if source == "imm" else _DST_SRC,
                        doc=f"{_ALU_DOC[key]} {'the immediate' if source == 'imm' else 'src'}",
                    )
                )
                if aop in (AluOp.DIV, AluOp.MOD):
                    skey = "s" + key
                    add(
                        Op(
                            f"s{mn}{suffix}",
                            cls | aop | srcbits,
                            Kind.ALU,
                            skey,
                            f"{d} s{sym} {rhs}",
                            width=width,
                            source=source,
                            off=1,
                            version=4,
                            uses=_DST_IMM if source == "imm" else _DST_SRC,
                            doc=_ALU_DOC[skey],
                        )
                    )
        add(
            Op(
                f"neg{suffix}",
                cls | AluOp.NEG,
                Kind.NEG,
                "neg",
                f"{d} = -{d}",
                width=width,
                off=0,
                version=version,
                uses=frozenset({"dst"}),
                doc="negates dst",
            )
        )
        for bits in (8, 16, 32) if width == 64 else (8, 16):
            add(
                Op(
                    f"movsx{bits}{width}",
                    cls | AluOp.MOV | Source.X,
                    Kind.MOVSX,
                    "movsx",
                    f"{d} = (s{bits}){s}",
                    width=width,
                    source="reg",
                    off=bits,
                    version=4,
                    uses=_DST_SRC,
                    doc=f"copies src's low {bits} bits, sign-extended",
                )
            )
    # addr_space_cast: ALU64 MOV X with off=1, imm = dst_as << 16 | src_as.
    add(
        Op(
            "addr_space_cast",
            Class.ALU64 | AluOp.MOV | Source.X,
            Kind.ADDR_SPACE_CAST,
            "addr_space_cast",
            "{rd} = addr_space_cast({rs}, {as_dst}, {as_src})",
            off=1,
            source="reg",
            version=5,
            uses=frozenset({"dst", "src", "imm"}),
            doc="converts a pointer between address spaces (arena)",
        )
    )
    for bits in (16, 32, 64):
        add(
            Op(
                f"le{bits}",
                Class.ALU | AluOp.END | Source.K,
                Kind.ENDIAN,
                "le",
                f"{{rd}} = le{bits} {{rd}}",
                width=bits,
                imm=bits,
                off=0,
                uses=frozenset({"dst"}),
                doc=f"converts the low {bits} bits to little-endian",
            )
        )
        add(
            Op(
                f"be{bits}",
                Class.ALU | AluOp.END | Source.X,
                Kind.ENDIAN,
                "be",
                f"{{rd}} = be{bits} {{rd}}",
                width=bits,
                imm=bits,
                off=0,
                uses=frozenset({"dst"}),
                doc=f"converts the low {bits} bits to big-endian",
            )
        )
        add(
            Op(
                f"bswap{bits}",
                Class.ALU64 | AluOp.END | Source.K,
                Kind.ENDIAN,
                "bswap",
                f"{{rd}} = bswap{bits} {{rd}}",
                width=bits,
                imm=bits,
                off=0,
                version=4,
                uses=frozenset({"dst"}),
                doc=f"reverses the bytes of the low {bits} bits",
            )
        )

    # lddw and its pseudo sources.
    lddw_doc = {
        PseudoSrc.IMM64: ("lddw", "loads a 64-bit constant"),
        PseudoSrc.MAP_FD: ("lddw_map_fd", "loads the map whose fd is imm"),
        PseudoSrc.MAP_VALUE: ("lddw_map_value", "loads the address of a map's value + imm_hi"),
        PseudoSrc.BTF_ID: ("lddw_btf_id", "loads the address of a kernel variable by BTF id"),
        PseudoSrc.FUNC: ("lddw_func", "loads the address of a function (callback)"),
        PseudoSrc.MAP_IDX: ("lddw_map_idx", "loads the map at index imm of fd_array"),
        PseudoSrc.MAP_IDX_VALUE: ("lddw_map_idx_value", "loads a map value address by index"),
    }
    for psrc, (key, doc) in lddw_doc.items():
        add(
            Op(
                "lddw",
                Class.LD | Mode.IMM | Size.DW,
                Kind.LDDW,
                key,
                # LLVM prints the pseudo forms as ld_pseudo with the low 32 bits of imm.
                "{rd} = {imm64} ll"
                if psrc == PseudoSrc.IMM64
                else "ld_pseudo\t{rd}, {pseudo}, {imm_lo}",
                src=int(psrc),
                off=0,
                uses=frozenset({"dst", "imm"}),
                doc=doc,
            )
        )
    for sz in _SIZES:
        n, sfx = SIZE_BYTES[sz], SIZE_SUFFIX[sz]
        # Legacy packet loads exist in sizes 1, 2 and 4 only (RFC 9669 5.5; the verifier
        # rejects BPF_DW).  LLVM prints ld_ind without its imm.
        if n < 8:
            add(
                Op(
                    f"ldabs{sfx}",
                    Class.LD | Mode.ABS | sz,
                    Kind.LD_ABS,
                    "ld_abs",
                    f"r0 = *({_CTYPE[n]} *)skb[{{imm}}]",
                    size=n,
                    uses=frozenset({"imm"}),
                    doc="legacy packet load at an absolute offset (socket filters)",
                )
            )
            add(
                Op(
                    f"ldind{sfx}",
                    Class.LD | Mode.IND | sz,
                    Kind.LD_IND,
                    "ld_ind",
                    f"r0 = *({_CTYPE[n]} *)skb[{{rs}}]",
                    size=n,
                    uses=frozenset({"src", "imm"}),
                    doc="legacy packet load at src + imm (socket filters)",
                )
            )
        narrow = "{wd}" if n < 8 else "{rd}"
        add(
            Op(
                f"ldx{sfx}",
                Class.LDX | Mode.MEM | sz,
                Kind.LOAD,
                "load",
                f"{narrow} = *({_CTYPE[n]} *)({{rs}} {{off}})",
                size=n,
                uses=_MEM_LOAD,
                doc=f"loads {n} byte{'s' if n > 1 else ''} from memory at src + off",
            )
        )
        if n < 8:
            add(
                Op(
                    f"ldxs{sfx}",
                    Class.LDX | Mode.MEMSX | sz,
                    Kind.LOAD_SX,
                    "load_sx",
                    f"{{rd}} = *({_STYPE[n]} *)({{rs}} {{off}})",
                    size=n,
                    version=4,
                    uses=_MEM_LOAD,
                    doc=f"loads {n} byte(s) at src + off, sign-extended",
                )
            )
        add(
            Op(
                f"st{sfx}",
                Class.ST | Mode.MEM | sz,
                Kind.STORE_IMM,
                "store",
                f"*({_CTYPE[n]} *)({{rd}} {{off}}) = {{imm}}",
                size=n,
                uses=_MEM_STORE_IMM,
                doc=f"stores the immediate's low {n * 8} bits at dst + off",
            )
        )
        narrow_s = "{ws}" if n < 8 else "{rs}"
        add(
            Op(
                f"stx{sfx}",
                Class.STX | Mode.MEM | sz,
                Kind.STORE_REG,
                "store",
                f"*({_CTYPE[n]} *)({{rd}} {{off}}) = {narrow_s}",
                size=n,
                uses=frozenset({"dst", "src", "off"}),
                doc=f"stores src's low {n * 8} bits at dst + off",
            )
        )
        # load-acquire / store-release (any size), STX | ATOMIC with imm 0x100 / 0x110.
        add(
            Op(
                f"ldacq{sfx}",
                Class.STX | Mode.ATOMIC | sz,
                Kind.LOAD_ACQ,
                "load_acquire",
                f"{narrow} = load_acquire(({_CTYPE[n]} *)({{rs}} {{off}}))",
                size=n,
                imm=AtomicOp.LOAD_ACQ,
                version=5,
                uses=_MEM_LOAD,
                doc="loads with acquire ordering",
            )
        )
        add(
            Op(
                f"strel{sfx}",
                Class.STX | Mode.ATOMIC | sz,
                Kind.STORE_REL,
                "store_release",
                f"store_release(({_CTYPE[n]} *)({{rd}} {{off}}), {narrow_s})",
                size=n,
                imm=AtomicOp.STORE_REL,
                version=5,
                uses=frozenset({"dst", "src", "off"}),
                doc="stores with release ordering",
            )
        )
    for sz, width, sfx in ((Size.DW, 64, ""), (Size.W, 32, "32")):
        opc = Class.STX | Mode.ATOMIC | sz
        n = SIZE_BYTES[sz]
        ct = _CTYPE[n]
        s = "{rs}" if width == 64 else "{ws}"
        version = 1 if width == 64 else 3
        uses = frozenset({"dst", "src", "off"})
        for atop, name, sym in _ATOMIC_RMW:
            add(
                Op(
                    f"lock {name}{sfx}",
                    opc,
                    Kind.ATOMIC,
                    name,
                    f"lock *({ct} *)({{rd}} {{off}}) {sym} {s}",
                    width=width,
                    size=n,
                    imm=int(atop),
                    version=version if atop is AtomicOp.ADD else 3,
                    uses=uses,
                    doc=f"atomically {name}s src into memory at dst + off",
                )
            )
            add(
                Op(
                    f"lock fetch {name}{sfx}",
                    opc,
                    Kind.ATOMIC,
                    f"fetch_{name}",
                    f"{s} = atomic_fetch_{name}(({ct} *)({{rd}} {{off}}), {s})",
                    width=width,
                    size=n,
                    imm=int(atop) | AtomicOp.FETCH,
                    version=3,
                    uses=uses,
                    doc=f"atomically {name}s src into memory; src gets the old value",
                )
            )
        x = "xchg_64" if width == 64 else "xchg32_32"
        add(
            Op(
                f"lock xchg{sfx}",
                opc,
                Kind.ATOMIC,
                "xchg",
                f"{s} = {x}({{rd}} {{off}}, {s})",
                width=width,
                size=n,
                imm=AtomicOp.XCHG,
                version=3,
                uses=uses,
                doc="atomically exchanges src with memory at dst + off",
            )
        )
        c = "cmpxchg_64" if width == 64 else "cmpxchg32_32"
        r0 = "r0" if width == 64 else "w0"
        add(
            Op(
                f"lock cmpxchg{sfx}",
                opc,
                Kind.ATOMIC,
                "cmpxchg",
                f"{r0} = {c}({{rd}} {{off}}, {r0}, {s})",
                width=width,
                size=n,
                imm=AtomicOp.CMPXCHG,
                version=3,
                uses=uses,
                doc="if memory at dst + off equals r0, stores src; r0 gets the old value",
            )
        )

    # Jumps.
    add(
        Op(
            "ja",
            Class.JMP | JmpOp.JA,
            Kind.JA,
            "ja",
            "goto {target}",
            uses=frozenset({"off"}),
            doc="jumps by off instructions",
        )
    )
    add(
        Op(
            "ja32",
            Class.JMP32 | JmpOp.JA,
            Kind.JA,
            "ja",
            "gotol {target}",
            width=32,
            version=4,
            uses=frozenset({"imm"}),
            doc="jumps by imm instructions (long jump)",
        )
    )
    add(
        Op(
            "gotox",
            Class.JMP | JmpOp.JA | Source.X,
            Kind.GOTOX,
            "gotox",
            "gotox {rd}",
            version=5,
            uses=frozenset({"dst"}),
            doc="jumps to the instruction address in dst",
        )
    )
    for cls, width, suffix, reg, version in (
        (Class.JMP, 64, "", "r", 1),
        (Class.JMP32, 32, "32", "w", 3),
    ):
        d, s = "{" + reg + "d}", "{" + reg + "s}"
        for jop, mn, key, sym in _JMP_OPS:
            v = (
                2
                if jop in (JmpOp.JLT, JmpOp.JLE, JmpOp.JSLT, JmpOp.JSLE) and width == 64
                else version
            )
            add(
                Op(
                    f"{mn}{suffix}",
                    cls | jop | Source.K,
                    Kind.JCOND,
                    key,
                    f"if {d} {sym} {{imm}} goto {{target}}",
                    width=width,
                    source="imm",
                    version=v,
                    uses=frozenset({"dst", "off", "imm"}),
                    doc=f"jumps by off if dst {sym} imm" + (" (32-bit)" if width == 32 else ""),
                )
            )
            add(
                Op(
                    f"{mn}{suffix}",
                    cls | jop | Source.X,
                    Kind.JCOND,
                    key,
                    f"if {d} {sym} {s} goto {{target}}",
                    width=width,
                    source="reg",
                    version=v,
                    uses=frozenset({"dst", "src", "off"}),
                    doc=f"jumps by off if dst {sym} src" + (" (32-bit)" if width == 32 else ""),
                )
            )
    add(
        Op(
            "may_goto",
            Class.JMP | JmpOp.JCOND,
            Kind.MAY_GOTO,
            "may_goto",
            "may_goto {target}",
            src=0,
            version=5,
            uses=frozenset({"off"}),
            doc="jumps by off once the loop budget the kernel keeps is used up",
        )
    )
    call = Class.JMP | JmpOp.CALL
    add(
        Op(
            "call",
            call,
            Kind.CALL,
            "helper",
            "call {imm}",
            src=CallSrc.HELPER,
            uses=frozenset({"imm"}),
            doc="calls the kernel helper whose id is imm",
        )
    )
    add(
        Op(
            "call local",
            call,
            Kind.CALL,
            "local",
            "call {imm}",
            src=CallSrc.LOCAL,
            uses=frozenset({"imm"}),
            doc="calls the BPF function imm + 1 instructions ahead",
        )
    )
    add(
        Op(
            "call kfunc",
            call,
            Kind.CALL,
            "kfunc",
            "call {imm}",
            src=CallSrc.KFUNC,
            uses=frozenset({"imm", "off"}),
            doc="calls the kernel function with BTF id imm",
        )
    )
    add(
        Op(
            "callx",
            call | Source.X,
            Kind.CALLX,
            "callx",
            "callx {rd}",
            version=5,
            uses=frozenset({"dst"}),
            doc="calls the function whose address is in dst",
        )
    )
    add(
        Op(
            "exit",
            Class.JMP | JmpOp.EXIT,
            Kind.EXIT,
            "exit",
            "exit",
            doc="returns from the function; r0 is the return value",
        )
    )
    return ops


OPS: tuple[Op, ...] = tuple(_build())
"""Every instruction form, in a stable order."""

_BY_OPCODE: dict[int, tuple[Op, ...]] = {}
for _op in OPS:
    _BY_OPCODE[_op.opcode] = _BY_OPCODE.get(_op.opcode, ()) + (_op,)

BY_MNEMONIC: dict[str, tuple[Op, ...]] = {}
for _op in OPS:
    BY_MNEMONIC[_op.mnemonic] = BY_MNEMONIC.get(_op.mnemonic, ()) + (_op,)


def forms(opcode: int) -> tuple[Op, ...]:
    """All forms sharing an opcode byte (empty if the opcode is not defined)."""
    return _BY_OPCODE.get(opcode, ())


def lookup(insn: Insn) -> Op | None:
    """The form of ``insn``, or ``None`` if it is not a valid instruction."""
    for op in _BY_OPCODE.get(insn.opcode, ()):
        if op.matches(insn):
            return op
    return None


def is_valid(insn: Insn) -> bool:
    """True if ``insn`` is a defined form with its unused fields zero."""
    op = lookup(insn)
    if op is None or insn.dst > 10 or insn.src > 10:
        return False
    return not op.reserved_nonzero(insn)
