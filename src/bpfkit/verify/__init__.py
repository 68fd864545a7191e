"""Why a verifier said no: kernel verifier logs explained, and a verifier of bpfkit's own.

API::

    explain_rejection(obj, program, log, *, judge="the kernel verifier") -> Explanation
        a kernel verifier log of ``program`` (a name in ``obj``) turned into: the failing
        instruction, its function and source line with the lines around it, the branch
        decisions on the path there, a backward slice of the offending value to its origin,
        the message class and a fix hint with an example
    render(explanation) -> str
    classify(message) -> MessageClass       (bpfkit.verify.messages: the class table)
    parse_log(text) -> VerifierLog          (bpfkit.verify.log)
    program_view(obj, name) -> ProgramView  (bpfkit.verify.source: functions, line info)

Nothing here calls bpf(): loading (to get the kernel's log) is the caller's business
(``bpfkit verify --kernel``, ``bpfkit load``), so this package runs anywhere.
"""

from __future__ import annotations

from bpfkit.errors import BpfkitError
from bpfkit.obj.spec import ObjectSpec
from bpfkit.verify.log import VerifierLog, parse_log
from bpfkit.verify.messages import CLASSES, MessageClass, classify
from bpfkit.verify.report import Explanation, explain_log, render
from bpfkit.verify.source import ProgramView, program_view


def explain_rejection(
    obj: ObjectSpec | None, program: str, log: str, *, judge: str = "the kernel verifier"
) -> Explanation:
    """Explain the verifier ``log`` of ``program`` (see the module docstring); without
    ``obj`` (or if the program cannot be linked) only the log is used."""
    view = None
    if obj is not None and program:
        try:
            view = program_view(obj, program)
        except BpfkitError:
            view = None
    return explain_log(parse_log(log), view, program=program or "program", judge=judge)


__all__ = [
    "CLASSES",
    "Explanation",
    "MessageClass",
    "ProgramView",
    "VerifierLog",
    "classify",
    "explain_log",
    "explain_rejection",
    "parse_log",
    "program_view",
    "render",
]
