"""The kernel verifier's messages, sorted into classes, each with a hint and an example.

A verifier log ends with one reason (``R0 invalid mem access 'map_value_or_null'``).  The
kernel has a few hundred such messages; :data:`CLASSES` groups the ones programs hit into
classes that have one fix each.  The patterns are the kernel's wording (kernel/bpf/
verifier.c, Linux 5.x-6.18); :func:`classify` returns the first class whose pattern matches.
bpfkit's own verifier (:mod:`bpfkit.verify.static`) words its reasons the same way, so one
table explains both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MessageClass:
    """One kind of rejection: what it means, how to fix it, a short example of the fix."""

    key: str
    title: str
    patterns: tuple[str, ...]
    hint: str
    example: str

    def matches(self, message: str) -> bool:
        """True if ``message`` (one log line) is of this class."""
        return any(re.search(p, message) for p in self.patterns)


CLASSES: tuple[MessageClass, ...] = (
    MessageClass(
        "null",
        "possibly NULL pointer dereferenced",
        (
            r"invalid mem access '\w+_or_null'",
            r"type=\w+_or_null expected=",
            r"[Pp]ossibly NULL pointer passed",
        ),
        "the pointer may be NULL here (a map lookup or reserve can fail): compare it with "
        "NULL and use it only on the branch where it is not",
        "v = bpf_map_lookup_elem(&m, &k);\nif (!v)\n    return 0;\n*v += 1;",
    ),
    MessageClass(
        "packet",
        "packet access without a bounds check",
        (
            r"invalid access to packet",
            r"offset is outside of the packet",
            r"cannot write into packet",
        ),
        "before reading or writing packet bytes, compare the pointer plus the access size "
        "with data_end and access only on the branch where it is inside",
        "void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;\n"
        "struct ethhdr *eth = data;\nif ((void *)(eth + 1) > end)\n    return XDP_PASS;\n"
        "proto = eth->h_proto;",
    ),
    MessageClass(
        "uninit",
        "read of something never written",
        (
            r"!read_ok",
            r"invalid (indirect )?read from stack (R\d+ )?off -?\d+\+",
            r"invalid indirect access to stack",
            r"uninit(ialized)? (stack|memory)",
        ),
        "a register or stack byte is read before anything was written to it: initialise "
        "it first (for a struct or key on the stack, zero the whole of it)",
        "struct key k = {};   /* or __builtin_memset(&k, 0, sizeof(k)) */\nk.pid = pid;\n"
        "v = bpf_map_lookup_elem(&m, &k);",
    ),
    MessageClass(
        "bounds",
        "unbounded or out-of-range offset",
        (
            r"unbounded min value",
            r"unbounded memory access",
            r"min value is negative",
            r"min value is outside of the allowed memory range",
            r"max value is outside of the allowed memory range",
            r"value is outside of the allowed memory range",
            r"math between \w+ pointer and register with unbounded",
            r"math between \w+ pointer and \d+ is not allowed",
            r"value \S+ makes \w+ pointer be out of bounds",
            r"invalid variable-offset",
            r"invalid unbounded variable-offset",
            r"invalid access to map value",
            r"invalid access to memory",
            r"R\d+ min value",
        ),
        "the verifier cannot prove the offset stays inside the object: check the index "
        "against the size (unsigned compare, or mask it) right before the access, on the "
        "same register",
        "if (i >= ARRAY_LEN)\n    return 0;\nval = arr[i];      /* i is now known to be < ARRAY_LEN */",
    ),
    MessageClass(
        "ctx",
        "invalid context or stack access",
        (
            r"invalid bpf_context access",
            r"invalid stack off=",
            r"invalid (read from|write to) stack R\d+ off=",
            r"invalid write to stack",
            r"invalid (size|offset) of register spill",
            r"dereference of modified ctx ptr",
            r"invalid (negative|variable) off",
            r"stack depth \d+ exceeds",
            r"combined stack size",
            r"misaligned (stack|context|packet)? ?access",
        ),
        "the access is outside what the program may touch: read context fields at their "
        "exact offsets and sizes (through the context struct, not arithmetic on it) and keep "
        "stack accesses within 512 bytes below r10",
        "__u32 len = ctx->data_end - ctx->data;   /* fields of the ctx struct, as declared */",
    ),
    MessageClass(
        "type",
        "wrong kind of value",
        (
            r"invalid mem access 'scalar'",
            r"invalid mem access '\w+'",
            r"type=\w+ expected=",
            r"pointer arithmetic on \w+ prohibited",
            r"pointer arithmetic with .* prohibited",
            r"R\d+ pointer comparison prohibited",
            r"R\d+ bitwise operator \S+ on pointer prohibited",
            r"R\d+ 32-bit pointer arithmetic prohibited",
            r"R\d+ pointer \S+ pointer prohibited",
            r"R\d+ leaks addr",
            r"R\d+ partial copy of pointer",
            r"cannot write into \w+",
            r"write into map forbidden",
            r"only read from \w+ is supported",
            r"frame pointer is read only",
            r"R\d+ is not a pointer",
            r"invalid map_fd",
            r"fd \d+ is not pointing to valid bpf_map",
            r"R\d+ is not a scalar",
            r"arg#\d+ ",
        ),
        "the register does not hold the kind of value this instruction or helper needs "
        "(for example a number where a pointer is expected, or a pointer that was changed "
        "in a way the verifier forbids): pass the right variable, and do arithmetic on "
        "offsets, not on pointers of that kind",
        "long *v = bpf_map_lookup_elem(&m, &k);   /* r1 = &map, r2 = pointer to the key */",
    ),
    MessageClass(
        "reference",
        "reference not released",
        (
            r"Unreleased reference",
            r"reference has not been acquired",
            r"release kernel function .* expects",
            r"BPF_EXIT instruction .* cannot be used inside",
            r"function calls are not allowed while holding a lock",
            r"bpf_spin_unlock is missing",
            r"must be referenced",
        ),
        "something acquired (a ring buffer reservation, a socket from a lookup, a task or "
        "a lock) must be released on every path before the program returns: submit or "
        "discard it, or call the matching release helper",
        "e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);\nif (!e)\n    return 0;\n"
        "if (skip) {\n    bpf_ringbuf_discard(e, 0);\n    return 0;\n}\nbpf_ringbuf_submit(e, 0);",
    ),
    MessageClass(
        "loop",
        "loop the verifier cannot bound",
        (
            r"back-edge from insn",
            r"infinite loop detected",
            r"loop detected",
            r"unbounded loop",
        ),
        "give the loop a constant upper bound the verifier can see (a counter compared with "
        "a constant), or use bpf_loop() / bpf_for() for long loops",
        "for (int i = 0; i < 64 && i < n; i++)   /* 64 bounds it */\n    sum += buf[i & 63];",
    ),
    MessageClass(
        "complexity",
        "program too complex to verify",
        (
            r"BPF program is too large",
            r"program is too large",
            r"too many states",
            r"The sequence of \d+ jumps is too complex",
            r"too complex",
            r"the call stack of \d+ frames is too deep",
            r"insn processed limit",
        ),
        "the verifier walked more than its limit of 1,000,000 instructions: make loops "
        "shorter or use bpf_loop(), move repeated work into a global (separately verified) "
        "function, and avoid branches that multiply paths",
        "static long step(__u32 i, void *ctx) { ...; return 0; }\nbpf_loop(1000, step, &st, 0);",
    ),
    MessageClass(
        "helper",
        "helper not allowed here",
        (
            r"unknown func",
            r"program of this type cannot use helper",
            r"cannot call GPL-restricted function",
            r"helper call is not allowed",
            r"calling kernel function .* is not allowed",
            r"kernel function \S+ args#",
            r"invalid func unknown",
            r"cannot be called from",
        ),
        "this helper does not exist for this program type (or needs a GPL licence): use a "
        "helper the type allows (bpfkit explain lists them), change the program type "
        '(section name), or declare the licence "GPL"',
        'SEC("tracepoint/syscalls/sys_enter_openat")   /* a type that may call the helper */\n'
        'char LICENSE[] SEC("license") = "GPL";',
    ),
    MessageClass(
        "return",
        "invalid return value",
        (
            r"At program exit the register R0",
            r"R0 leaks addr as return value",
            r"At subprogram exit the register R0",
        ),
        "the program must return a number the hook accepts (for example XDP_PASS/XDP_DROP, "
        "0/1 for cgroup hooks), not a pointer or an unset r0",
        "return XDP_PASS;",
    ),
    MessageClass(
        "code",
        "malformed code",
        (
            r"unreachable insn",
            r"jump out of range",
            r"last insn is not an exit or jmp",
            r"invalid BPF_LD_IMM",
            r"unknown opcode",
            r"invalid (insn|opcode|func|jump)",
            r"BPF_\w+ uses reserved fields",
            r"invalid dst register",
            r"invalid src register",
            r"R\d+ is invalid",
            r"call to invalid destination",
            r"jump into the middle of ldimm64",
        ),
        "the instructions themselves are invalid (an unreachable block, a jump outside the "
        "program, a reserved field set): rebuild with the right -mcpu or fix the assembly",
        "r0 = 0\nexit      /* every path ends in exit, every jump lands on an instruction */",
    ),
)

OTHER = MessageClass(
    "other",
    "rejected",
    (),
    "read the verifier's message and the log around the failing instruction (-v)",
    "",
)

BY_KEY = {c.key: c for c in (*CLASSES, OTHER)}


def classify(message: str) -> MessageClass:
    """The class of a verifier message (:data:`OTHER` if none matches)."""
    for c in CLASSES:
        if c.matches(message):
            return c
    return OTHER
