"""The annotated verifier corpus: small programs written for bpfkit (not taken from the
kernel's selftests), each annotated as the selftests do: ``__success`` or ``__failure``
with ``__msg("...")`` (a part of the kernel's reason).  Programs are BPF assembly in the
mnemonic syntax; ``lddw %rN, MAP_A`` names a map the test creates (the kernel's fd is
patched in; bpfkit's verifier gets the map's description).

Every message class of :mod:`bpfkit.verify.messages` is covered at least five times;
most failing programs have a passing twin that differs in the one thing the message
is about.
"""

from __future__ import annotations

from dataclasses import dataclass

# name -> (map type, key size, value size, max entries); the placeholder in the source
MAPS = {
    "MAP_A": (1, 4, 8, 16),  # hash, value u64
    "MAP_B": (2, 4, 16, 4),  # array of 16-byte values
    "MAP_R": (27, 0, 0, 4096),  # ring buffer
}
PLACEHOLDER = {"MAP_A": 0x7EA0, "MAP_B": 0x7EA1, "MAP_R": 0x7EA2}


@dataclass(frozen=True)
class Case:
    """One annotated program."""

    name: str
    prog_type: str
    annotations: str  # '__success' / '__failure __msg("...")'
    source: str

    @property
    def expect_success(self) -> bool:
        return "__success" in self.annotations

    @property
    def msg(self) -> str:
        a = self.annotations
        return a.split('__msg("', 1)[1].rsplit('")', 1)[0] if "__msg(" in a else ""


def _src(text: str) -> str:
    for k, v in PLACEHOLDER.items():
        text = text.replace(k, hex(v))
    return text


CASES: list[Case] = []


def case(name: str, prog_type: str, annotations: str, source: str) -> None:
    CASES.append(Case(name, prog_type, annotations, _src(source.strip())))


OK = "__success"


def FAIL(msg: str) -> str:  # noqa: N802 - the selftests' spelling
    return f'__failure __msg("{msg}")'


LOOKUP_A = """
stw [%r10-4], 0
lddw %r1, MAP_A
mov %r2, %r10
add %r2, -4
call 1
"""
LOOKUP_B = LOOKUP_A.replace("MAP_A", "MAP_B")
SIZES = {"b": 1, "h": 2, "w": 4, "dw": 8}

# -- null: a map lookup used without a NULL check --------------------------------------------
for sz, n in SIZES.items():
    for off in (0, 4):
        if off + n > 8:
            continue
        case(
            f"null_load_{sz}_{off}",
            "xdp",
            FAIL("invalid mem access 'map_value_or_null'"),
            LOOKUP_A + f"ldx{sz} %r1, [%r0+{off}]\nmov %r0, 0\nexit",
        )
        case(
            f"null_checked_load_{sz}_{off}",
            "xdp",
            OK,
            LOOKUP_A + f"jeq %r0, 0, out\nldx{sz} %r1, [%r0+{off}]\nout:\nmov %r0, 0\nexit",
        )
        case(
            f"null_store_{sz}_{off}",
            "xdp",
            FAIL("invalid mem access 'map_value_or_null'"),
            LOOKUP_A + f"st{sz} [%r0+{off}], 7\nmov %r0, 0\nexit",
        )
        case(
            f"null_checked_store_{sz}_{off}",
            "xdp",
            OK,
            LOOKUP_A + f"jne %r0, 0, use\nmov %r0, 0\nexit\nuse:\nst{sz} [%r0+{off}], 7\n"
            "mov %r0, 0\nexit",
        )
for r in (6, 7, 8, 9):
    case(
        f"null_copy_r{r}",
        "xdp",
        FAIL("invalid mem access 'map_value_or_null'"),
        LOOKUP_A + f"mov %r{r}, %r0\nldxdw %r0, [%r{r}+0]\nexit",
    )
    case(
        f"null_copy_checked_r{r}",
        "xdp",
        OK,
        LOOKUP_A + f"mov %r{r}, %r0\njeq %r0, 0, out\nldxdw %r0, [%r{r}+0]\nexit\n"
        "out:\nmov %r0, 0\nexit",
    )
    case(
        f"null_wrong_branch_r{r}",
        "xdp",
        FAIL("invalid mem access 'scalar'"),
        LOOKUP_A + f"mov %r{r}, %r0\njne %r0, 0, out\nldxdw %r0, [%r{r}+0]\nexit\n"
        "out:\nmov %r0, 0\nexit",
    )
case(
    "null_spilled",
    "xdp",
    FAIL("invalid mem access 'map_value_or_null'"),
    LOOKUP_A + "stxdw [%r10-16], %r0\nldxdw %r3, [%r10-16]\nldxw %r0, [%r3+0]\nexit",
)
case(
    "null_spilled_checked",
    "xdp",
    OK,
    LOOKUP_A + "stxdw [%r10-16], %r0\njeq %r0, 0, out\nldxdw %r3, [%r10-16]\nldxw %r0, [%r3+0]\n"
    "exit\nout:\nmov %r0, 0\nexit",
)
for imm in (4, 8):
    case(
        f"null_arith_{imm}",
        "xdp",
        FAIL("pointer arithmetic on map_value_or_null prohibited"),
        LOOKUP_A + f"add %r0, {imm}\nmov %r0, 0\nexit",
    )

# -- bounds: map value offsets, constant and variable ------------------------------------------
for sz, n in SIZES.items():
    for off in (0, 8, 12, 15, 16, -1):
        good = 0 <= off and off + n <= 16
        case(
            f"bounds_const_{sz}_{off}".replace("-", "m"),
            "xdp",
            OK if good else FAIL("invalid access to map value"),
            LOOKUP_B + f"jeq %r0, 0, out\nldx{sz} %r1, [%r0{off:+d}]\nout:\nmov %r0, 0\nexit",
        )
for mask in (1, 3, 7, 15, 16, 31, 255):
    for sz, n in (("b", 1), ("w", 4)):
        good = mask + n <= 16
        case(
            f"bounds_mask_{mask}_{sz}",
            "xdp",
            OK if good else FAIL("invalid access to map value"),
            LOOKUP_B + f"jeq %r0, 0, out\nldxw %r1, [%r0+0]\nand %r1, {mask}\nadd %r0, %r1\n"
            f"ldx{sz} %r1, [%r0+0]\nout:\nmov %r0, 0\nexit",
        )
for bound in (4, 12, 16, 17, 100):
    case(
        f"bounds_cmp_{bound}",
        "xdp",
        OK if bound <= 16 else FAIL("invalid access to map value"),
        LOOKUP_B + f"jeq %r0, 0, out\nldxw %r1, [%r0+0]\njge %r1, {bound}, out\nadd %r0, %r1\n"
        "ldxb %r1, [%r0+0]\nout:\nmov %r0, 0\nexit",
    )
for sz in ("w", "dw"):
    case(
        f"bounds_unchecked_{sz}",
        "xdp",
        FAIL("unbounded m"),
        LOOKUP_B + f"jeq %r0, 0, out\nldx{sz} %r1, [%r0+0]\nadd %r0, %r1\nldxb %r1, [%r0+0]\n"
        "out:\nmov %r0, 0\nexit",
    )
for bound in (4, 8, 15):
    case(
        f"bounds_signed_{bound}",
        "xdp",
        FAIL("with unbounded min value is not allowed"),
        LOOKUP_B + f"jeq %r0, 0, out\nldxdw %r1, [%r0+0]\njsgt %r1, {bound}, out\n"
        "add %r0, %r1\nldxb %r1, [%r0+0]\nout:\nmov %r0, 0\nexit",
    )
    case(
        f"bounds_signed_both_{bound}",
        "xdp",
        OK,
        LOOKUP_B + f"jeq %r0, 0, out\nldxdw %r1, [%r0+0]\njsgt %r1, {bound}, out\n"
        "jslt %r1, 0, out\nadd %r0, %r1\nldxb %r1, [%r0+0]\nout:\nmov %r0, 0\nexit",
    )
for shift in (1, 4, 60):
    case(
        f"bounds_shift_{shift}",
        "xdp",
        OK if 64 - shift <= 4 else FAIL("unbounded memory access"),
        LOOKUP_B + f"jeq %r0, 0, out\nldxdw %r1, [%r0+0]\nrsh %r1, {shift}\nadd %r0, %r1\n"
        "ldxb %r1, [%r0+0]\nout:\nmov %r0, 0\nexit",
    )

# -- packet: direct packet access and data_end --------------------------------------------------
PKT = "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\n"
for n in (1, 4, 8, 14, 20, 34):
    for k, sz in ((n - 1, "b"), (n, "b"), (n - 2, "h"), (n - 1, "h"), (n + 4, "b")):
        if k < 0:
            continue
        good = k + SIZES[sz] <= n
        msg = FAIL("invalid access to packet")
        case(
            f"pkt_gt_{n}_{sz}{k}",
            "xdp",
            OK if good else msg,
            PKT + f"mov %r4, %r2\nadd %r4, {n}\njgt %r4, %r3, out\nldx{sz} %r0, [%r2+{k}]\n"
            "out:\nmov %r0, 2\nexit",
        )
    case(
        f"pkt_le_{n}",
        "xdp",
        OK,
        PKT + f"mov %r4, %r2\nadd %r4, {n}\njle %r4, %r3, use\nmov %r0, 2\nexit\nuse:\n"
        f"ldxb %r0, [%r2+{n - 1}]\nmov %r0, 1\nexit",
    )
    case(
        f"pkt_end_lt_{n}",
        "xdp",
        OK,
        PKT + f"mov %r4, %r2\nadd %r4, {n}\njlt %r3, %r4, out\nldxb %r0, [%r2+{n - 1}]\n"
        "out:\nmov %r0, 2\nexit",
    )
    case(
        f"pkt_wrong_side_{n}",
        "xdp",
        FAIL("invalid access to packet"),
        PKT + f"mov %r4, %r2\nadd %r4, {n}\njle %r4, %r3, out\nldxb %r0, [%r2+0]\n"
        "out:\nmov %r0, 2\nexit",
    )
# Strict comparisons prove one byte more (pkt + n < end: byte n is in the packet).
for n in (4, 14):
    for k in (n, n + 1):
        verdict = OK if k <= n else FAIL("invalid access to packet")
        case(
            f"pkt_lt_strict_{n}_{k}",
            "xdp",
            verdict,
            PKT + f"mov %r4, %r2\nadd %r4, {n}\njlt %r4, %r3, use\nmov %r0, 2\nexit\nuse:\n"
            f"ldxb %r0, [%r2+{k}]\nmov %r0, 1\nexit",
        )
        case(
            f"pkt_ge_strict_{n}_{k}",
            "xdp",
            verdict,
            PKT + f"mov %r4, %r2\nadd %r4, {n}\njge %r4, %r3, out\nldxb %r0, [%r2+{k}]\n"
            "out:\nmov %r0, 1\nexit",
        )
# A packet pointer with a bounded variable offset, checked against data_end itself.
for n, k in ((8, 7), (8, 8), (20, 19), (20, 20)):
    case(
        f"pkt_var_off_{n}_{k}",
        "xdp",
        OK if k < n else FAIL("invalid access to packet"),
        PKT + "ldxw %r5, [%r1+12]\nand %r5, 15\nmov %r4, %r2\nadd %r4, %r5\nmov %r6, %r4\n"
        f"add %r6, {n}\njgt %r6, %r3, out\nldxb %r0, [%r4+{k}]\nout:\nmov %r0, 1\nexit",
    )
for k in (0, 12, 13):
    case(
        f"pkt_unchecked_{k}",
        "xdp",
        FAIL("invalid access to packet"),
        PKT + f"ldxb %r0, [%r2+{k}]\nmov %r0, 2\nexit",
    )
    case(
        f"pkt_store_socket_{k}",
        "socket_filter",
        FAIL("invalid bpf_context access"),
        "ldxw %r2, [%r1+76]\nmov %r0, 0\nexit",
    )

# -- uninit: registers read before written ------------------------------------------------------
for r in range(2, 10):
    case(f"uninit_r{r}", "xdp", FAIL(f"R{r} !read_ok"), f"mov %r0, %r{r}\nexit")
    case(f"uninit_init_r{r}", "xdp", OK, f"mov %r{r}, 1\nmov %r0, %r{r}\nexit")
for r in range(1, 6):
    case(
        f"uninit_after_call_r{r}",
        "xdp",
        FAIL(f"R{r} !read_ok"),
        f"mov %r{r}, 1\ncall 7\nmov %r0, %r{r}\nexit",
    )
for r in range(6, 10):
    case(f"uninit_saved_r{r}", "xdp", OK, f"mov %r{r}, 1\ncall 7\nmov %r0, %r{r}\nexit")
case("uninit_r0_exit", "xdp", FAIL("R0 !read_ok"), "exit")
case(
    "uninit_r0_branch",
    "xdp",
    FAIL("R0 !read_ok"),
    "ldxw %r2, [%r1+12]\njeq %r2, 0, out\nmov %r0, 1\nout:\nexit",
)
case("uninit_helper_arg", "xdp", FAIL("R2 !read_ok"), "lddw %r1, MAP_A\ncall 1\nmov %r0, 0\nexit")
case("uninit_stack_read_root", "xdp", OK, "ldxdw %r0, [%r10-8]\nexit")

# -- ctx / stack: accesses outside what the program may touch -----------------------------------
for off in (24, 28, 40, 64):
    case(
        f"ctx_xdp_off_{off}",
        "xdp",
        FAIL("invalid bpf_context access"),
        f"ldxw %r0, [%r1+{off}]\nexit",
    )
case("ctx_xdp_egress", "xdp", FAIL("invalid bpf_context access"), "ldxw %r0, [%r1+20]\nexit")
for off in (12, 16):
    case(f"ctx_xdp_ok_{off}", "xdp", OK, f"ldxw %r0, [%r1+{off}]\nexit")
    case(
        f"ctx_xdp_write_{off}",
        "xdp",
        FAIL("invalid bpf_context access"),
        f"stw [%r1+{off}], 1\nmov %r0, 0\nexit",
    )
for sz in ("b", "h", "dw"):
    case(
        f"ctx_xdp_size_{sz}",
        "xdp",
        FAIL("invalid bpf_context access"),
        f"ldx{sz} %r0, [%r1+0]\nexit",
    )
for off in (76, 80):
    case(
        f"ctx_socket_data_{off}",
        "socket_filter",
        FAIL("invalid bpf_context access"),
        f"ldxw %r0, [%r1+{off}]\nexit",
    )
for off in (0, 4, 16):
    case(f"ctx_socket_ok_{off}", "socket_filter", OK, f"ldxw %r0, [%r1+{off}]\nexit")
for off in (48, 52):
    case(f"ctx_socket_cb_write_{off}", "socket_filter", OK, f"stw [%r1+{off}], 1\nmov %r0, 0\nexit")
case(
    "ctx_modified",
    "xdp",
    FAIL("dereference of modified ctx ptr"),
    "add %r1, 4\nldxw %r0, [%r1+0]\nexit",
)
case(
    "stack_misaligned",
    "xdp",
    FAIL("misaligned stack access"),
    "stdw [%r10-513], 1\nmov %r0, 0\nexit",
)
for off in (-520, -528, -1024, 0, 8):
    case(
        f"stack_oob_{off}".replace("-", "m"),
        "xdp",
        FAIL("stack R10 off="),
        f"stdw [%r10{off:+d}], 1\nmov %r0, 0\nexit",
    )
for off in (-512, -8, -256):
    case(
        f"stack_ok_{off}".replace("-", "m"),
        "xdp",
        OK,
        f"stdw [%r10{off:+d}], 1\nldxdw %r0, [%r10{off:+d}]\nexit",
    )

# -- type: values of the wrong kind -----------------------------------------------------------
for v in (0, 5, 4096):
    case(
        f"type_scalar_deref_{v}",
        "xdp",
        FAIL("invalid mem access 'scalar'"),
        f"mov %r1, {v}\nldxw %r0, [%r1+0]\nexit",
    )
for op in ("mul", "div", "mod", "lsh", "rsh"):
    case(
        f"type_ptr_{op}", "xdp", FAIL("prohibited"), f"mov %r0, %r10\n{op} %r0, 2\nmov %r0, 0\nexit"
    )
for op in ("and", "or", "xor"):
    case(
        f"type_ptr_{op}",
        "xdp",
        FAIL("on pointer prohibited"),
        f"mov %r0, %r1\n{op} %r0, 2\nmov %r0, 0\nexit",
    )
case(
    "type_ptr32",
    "xdp",
    FAIL("32-bit pointer arithmetic prohibited"),
    "mov %r0, %r1\nadd32 %r0, 2\nmov %r0, 0\nexit",
)
case(
    "type_map_ptr_arith",
    "xdp",
    FAIL("pointer arithmetic on map_ptr prohibited"),
    "lddw %r1, MAP_A\nadd %r1, 8\nmov %r0, 0\nexit",
)
case(
    "type_scalar_key",
    "xdp",
    FAIL("R2 type=scalar expected="),
    "lddw %r1, MAP_A\nmov %r2, 0\ncall 1\nmov %r0, 0\nexit",
)
case(
    "type_ctx_as_map",
    "xdp",
    FAIL("R1 type=ctx expected=map_ptr"),
    "mov %r2, %r10\nadd %r2, -8\nstdw [%r10-8], 0\ncall 1\nmov %r0, 0\nexit",
)
case("type_fp_write", "xdp", FAIL("frame pointer is read only"), "mov %r10, 0\nmov %r0, 0\nexit")
case(
    "type_pkt_end_deref",
    "xdp",
    FAIL("invalid mem access 'pkt_end'"),
    "ldxw %r2, [%r1+4]\nldxb %r0, [%r2+0]\nexit",
)
case("type_map_ptr_read_root", "xdp", OK, "lddw %r1, MAP_A\nldxw %r0, [%r1+0]\nexit")
case("type_ptr_sub_ok", "xdp", OK, PKT + "mov %r0, %r3\nsub %r0, %r2\nexit")

# -- reference: ring buffer reservations -------------------------------------------------------
RESERVE = "lddw %r1, MAP_R\nmov %r2, {n}\nmov %r3, 0\ncall 131\n"
for n in (8, 16, 64, 128, 256):
    case(
        f"ref_leak_{n}",
        "xdp",
        FAIL("Unreleased reference"),
        RESERVE.format(n=n) + "jeq %r0, 0, out\nstdw [%r0+0], 1\nout:\nmov %r0, 0\nexit",
    )
    case(
        f"ref_submit_{n}",
        "xdp",
        OK,
        RESERVE.format(n=n) + "jeq %r0, 0, out\nstdw [%r0+0], 1\nmov %r1, %r0\nmov %r2, 0\n"
        "call 132\nout:\nmov %r0, 0\nexit",
    )
    case(
        f"ref_discard_{n}",
        "xdp",
        OK,
        RESERVE.format(n=n) + "jeq %r0, 0, out\nmov %r1, %r0\nmov %r2, 0\ncall 133\n"
        "out:\nmov %r0, 0\nexit",
    )
    case(
        f"ref_leak_one_path_{n}",
        "xdp",
        FAIL("Unreleased reference"),
        RESERVE.format(n=n) + "jeq %r0, 0, out\nmov %r6, %r0\ncall 7\njeq %r0, 1, out\n"
        "mov %r1, %r6\nmov %r2, 0\ncall 132\nout:\nmov %r0, 0\nexit",
    )
    case(
        f"ref_oob_{n}",
        "xdp",
        FAIL("invalid access to memory"),
        RESERVE.format(n=n) + f"jeq %r0, 0, out\nstdw [%r0+{n}], 1\nmov %r1, %r0\nmov %r2, 0\n"
        "call 132\nout:\nmov %r0, 0\nexit",
    )
    case(
        f"ref_null_{n}",
        "xdp",
        FAIL("invalid mem access 'ringbuf_mem_or_null'"),
        RESERVE.format(n=n) + "stdw [%r0+0], 1\nmov %r1, %r0\nmov %r2, 0\ncall 132\n"
        "mov %r0, 0\nexit",
    )

# -- loop: loops whose state does not change ----------------------------------------------------
for jop, imm in (("jne", 0), ("jgt", 0), ("jset", 1), ("jlt", 9), ("jsgt", 3)):
    case(
        f"loop_spin_{jop}",
        "xdp",
        FAIL("infinite loop detected"),
        f"ldxw %r2, [%r1+16]\nloop:\n{jop} %r2, {imm}, loop\nmov %r0, 0\nexit",
    )
case("loop_self", "xdp", FAIL("infinite loop detected"), "mov %r0, 0\nloop:\nja loop")
case(
    "loop_reload",
    "xdp",
    FAIL("infinite loop detected"),
    "stdw [%r10-8], 1\nloop:\nldxdw %r2, [%r10-8]\njne %r2, 0, loop\nmov %r0, 0\nexit",
)
case(
    "loop_two_blocks",
    "xdp",
    FAIL("infinite loop detected"),
    "ldxw %r2, [%r1+16]\na:\nmov %r3, 1\nja b\nb:\njne %r2, 0, a\nmov %r0, 0\nexit",
)
for n in (4, 16, 100, 1000):
    case(
        f"loop_bounded_{n}",
        "xdp",
        OK,
        f"mov %r0, 0\nmov %r1, 0\nloop:\nadd %r0, 3\nadd %r1, 1\njlt %r1, {n}, loop\nexit",
    )

# -- complexity: loops bounded only by an unknown value, calls nested too deep ------------------
# A loop bounded only by an unknown value runs into the limit of 1M processed instructions:
# each such program costs the kernel about ten CPU seconds (three walks, two of them writing
# a log of 60-120 MB), so one stands for the walk limit (with its bounded twin); the other
# complexity limit, the call stack's 8 frames, fails in milliseconds.
case(
    "complex_count_16",
    "xdp",
    FAIL("BPF program is too large"),
    "ldxw %r2, [%r1+16]\nmov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, %r2, loop\nexit",
)
case(
    "complex_masked_ok",
    "xdp",
    OK,
    "ldxw %r2, [%r1+16]\nand %r2, 255\nmov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, %r2, loop\nexit",
)


def _calls(frames: int, *, guarded: bool = False, body: str = "") -> str:
    """main calling f1 calling f2 ... : ``frames`` frames deep; ``guarded``: main calls
    only when a packet field is not 0; ``body`` comes in every callee before its call."""
    guard = "ldxw %r2, [%r1+16]\njeq %r2, 0, skip\n" if guarded else ""
    out = guard + "call local f1\nskip:\nmov %r0, 0\nexit\n"
    for i in range(1, frames):
        nxt = f"call local f{i + 1}\n" if i + 1 < frames else ""
        out += f"f{i}:\n{body}{nxt}mov %r0, 0\nexit\n"
    return out


# -- code: a jump out of its function, a function that runs off its end ----------------------
case(
    "code_jump_into_subprog",
    "xdp",
    FAIL("jump out of range from insn 1 to 5"),
    "call local f1\nja inner\nmov %r0, 0\nexit\nf1:\nmov %r0, 0\ninner:\nexit",
)
case(
    "code_jump_out_of_subprog",
    "xdp",
    FAIL("jump out of range from insn 3 to 2"),
    "call local f1\nmov %r0, 0\nback:\nexit\nf1:\nja back\nexit",
)
case(
    "code_main_runs_into_subprog",
    "xdp",
    FAIL("last insn is not an exit or jmp"),
    "call local f1\nmov %r0, 0\nf1:\nmov %r0, 1\nexit",
)
case(
    "code_subprog_jumps_within_ok",
    "xdp",
    OK,
    "call local f1\nmov %r0, 0\nexit\nf1:\nmov %r2, 0\njeq %r2, 0, inner\nmov %r0, 1\ninner:\nmov %r0, 0\nexit",
)

STACK = "stdw [%r10-8], 1\n"
for frames in (9, 12):
    case(f"complex_calls_{frames}", "xdp", FAIL("frames is too deep"), _calls(frames))
case("complex_calls_8_ok", "xdp", OK, _calls(8))
case("complex_calls_branch_9", "xdp", FAIL("frames is too deep"), _calls(9, guarded=True))
case("complex_calls_branch_8_ok", "xdp", OK, _calls(8, guarded=True))
case("complex_calls_stack_9", "xdp", FAIL("frames is too deep"), _calls(9, body=STACK))
case("complex_calls_stack_8_ok", "xdp", OK, _calls(8, body=STACK))

# -- helper: helpers the program type may not call ----------------------------------------------
for hid, name in (
    (4, "bpf_probe_read"),
    (27, "bpf_get_stackid"),
    (45, "bpf_probe_read_str"),
    (67, "bpf_get_stack"),
    (26, "bpf_skb_load_bytes"),
):
    case(
        f"helper_xdp_{name}",
        "xdp",
        FAIL(f"cannot use helper {name}#{hid}"),
        f"mov %r1, %r10\nadd %r1, -8\nmov %r2, 8\nmov %r3, 0\ncall {hid}\nmov %r0, 0\nexit",
    )
case(
    "helper_socket_adjust_head",
    "socket_filter",
    FAIL("cannot use helper bpf_xdp_adjust_head#44"),
    "mov %r2, 0\ncall 44\nmov %r0, 0\nexit",
)
case("helper_unknown", "xdp", FAIL("invalid func unknown#100000"), "call 100000\nmov %r0, 0\nexit")
for hid in (5, 7, 8, 14):
    case(f"helper_ok_{hid}", "xdp", OK, f"call {hid}\nmov %r0, 0\nexit")

# -- return: hooks that act on the number returned (cgroup, sock_ops: 0 or 1) -----------------
RET_RANGE = "should have been in [0, 1]"
for ptype in ("cgroup_skb", "cgroup_sock", "cgroup_sysctl", "cgroup_device", "sock_ops"):
    for v in (0, 1):
        case(f"ret_{ptype}_{v}", ptype, OK, f"mov %r0, {v}\nexit")
    for v in (2, -1):
        case(
            f"ret_{ptype}_{'minus1' if v < 0 else v}",
            ptype,
            FAIL(f"At program exit the register R0 has smin={v} smax={v} {RET_RANGE}"),
            f"mov %r0, {v}\nexit",
        )
    case(
        f"ret_{ptype}_pointer",
        ptype,
        FAIL("At program exit the register R0 is not a known value (ctx)"),
        "mov %r0, %r1\nexit",
    )
    case(
        f"ret_{ptype}_unknown",
        ptype,
        FAIL(f"At program exit the register R0 has unknown scalar value {RET_RANGE}"),
        "call 7\nexit",
    )
for mask, ok in ((1, True), (2, False), (3, False)):
    case(
        f"ret_skb_len_and_{mask}",
        "cgroup_skb",
        OK if ok else FAIL(f"R0 has smin=0 smax={mask} {RET_RANGE}"),
        f"ldxw %r0, [%r1+0]\nand %r0, {mask}\nexit",
    )
case(
    "ret_skb_len_unmasked",
    "cgroup_skb",
    FAIL(f"R0 has smin=0 smax=4294967295 {RET_RANGE}"),
    "ldxw %r0, [%r1+0]\nexit",
)
case(
    "ret_skb_len_checked",
    "cgroup_skb",
    OK,
    "ldxw %r0, [%r1+0]\njle %r0, 1, out\nmov %r0, 0\nout:\nexit",
)
case(
    "ret_skb_len_wrong_check",
    "cgroup_skb",
    FAIL(f"R0 has smin=0 smax=4294967295 {RET_RANGE}"),
    "ldxw %r0, [%r1+0]\njle %r0, 1, out\nmov %r0, 0\nexit\nout:\nldxw %r0, [%r1+0]\nexit",
)
