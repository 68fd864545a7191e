"""The verifier's state at each instruction of an explained program: :func:`verifier_states`.

explain does not run an analysis of its own for ranges and pointer kinds: it runs bpfkit's
verifier (:mod:`bpfkit.verify.static`) with a trace (:mod:`bpfkit.verify.trace`) over the
linked program and maps the joined states back to the instructions of the function being
explained (a sub-program is explained with the states of the first program that calls
it).  :mod:`bpfkit.explain.values` keeps what the verifier does not track: the bytes of
stack strings and read-only data (printk formats, helper arguments).
"""

from __future__ import annotations

from dataclasses import dataclass

from bpfkit.errors import BpfkitError
from bpfkit.obj.spec import ObjectSpec, ProgramSpec
from bpfkit.verify.trace import Seen

# Instructions walked for an explanation at most (the kernel's limit is 1,000,000): enough
# for the real objects the tests read (xdp-tools' largest: ~71,000), and explain stays
# within seconds; past it the states are those of the paths walked (the verdict says so).
EXPLAIN_LIMIT = 100_000


@dataclass(frozen=True)
class VerifierStates:
    """The joined states of one function's instructions (by the function's slot index)."""

    before: dict[int, Seen]
    after: dict[int, Seen]
    verdict: str  # one sentence: accepted, or rejected at which instruction and why
    accepted: bool


Cache = dict[str, tuple[dict[str, int], VerifierStates | None]]


def _run(obj: ObjectSpec, name: str) -> tuple[dict[str, int], VerifierStates | None]:
    from bpfkit.verify.rules import KERNEL_RULES
    from bpfkit.verify.source import program_view
    from bpfkit.verify.static import attach_type_name, prog_type_name
    from bpfkit.verify.trace import trace_program

    view = program_view(obj, name)
    trace, res = trace_program(
        view, prog_type_name(obj, name), attach_type_name(obj, name), limit=EXPLAIN_LIMIT
    )
    judge = f"bpfkit's verifier (Linux {KERNEL_RULES} rules)"
    if res.accepted:
        verdict = (
            f"{judge} accepts {name} after {res.processed} instructions on all paths; "
            "the ranges and pointer kinds shown are its states, joined over those paths."
        )
    elif res.processed > EXPLAIN_LIMIT:
        verdict = (
            f"{judge} walked {EXPLAIN_LIMIT} instructions of {name} without a verdict "
            "(explain stops there; bpfkit verify goes on to the kernel's 1,000,000): the "
            "states shown are those of the paths walked."
        )
    else:
        where = res.log.steps[-1].idx if res.log.steps else None
        at = f" at instruction {where}" if where is not None else ""
        verdict = (
            f"{judge} rejects {name}{at}: {res.log.reason}; the states shown are those of "
            "the paths it walked before."
        )
    starts = {fname: start for start, fname in view.functions}
    return starts, VerifierStates(trace.before, trace.after, verdict, res.accepted)


def verifier_states(
    obj: ObjectSpec, prog: ProgramSpec, cache: Cache | None = None
) -> VerifierStates | None:
    """The verifier's states for ``prog`` (a program or a sub-program of ``obj``), or None
    if no program of the object can be linked and walked (the explanation then shows no
    ranges)."""
    cache = {} if cache is None else cache
    mains = [p.name for p in obj.programs if not p.is_subprog]
    order = [prog.name] if not prog.is_subprog else mains
    for name in order:
        if name not in cache:
            try:
                cache[name] = _run(obj, name)
            except (BpfkitError, ArithmeticError, LookupError, ValueError, RecursionError):
                cache[name] = ({}, None)  # not linkable here: no states
        starts, states = cache[name]
        if states is None or prog.name not in starts:
            continue
        base = starts[prog.name]
        if base == 0:
            return states
        return VerifierStates(
            {k - base: v for k, v in states.before.items() if k >= base},
            {k - base: v for k, v in states.after.items() if k >= base},
            states.verdict,
            states.accepted,
        )
    return None
