"""Annotated bytecode: what each instruction of a BPF object is, does and leaves behind.

:func:`explain_object` turns an :class:`~bpfkit.obj.spec.ObjectSpec` into plain data
(:class:`Explanation`: per instruction the bytes, both instruction syntaxes, the decoded
fields, sentences, the registers and stack after it, the call it makes); the render
functions turn that into terminal text, Markdown or JSON.  The abstract interpreter
underneath (:mod:`bpfkit.explain.values`: :func:`analyze`, :class:`Value`,
:class:`State`) is meant to be shared with the verifier.
"""

from bpfkit.explain.explain import (
    CallArg,
    CallInfo,
    Explanation,
    InsnExplanation,
    ProgramExplanation,
    StackRun,
    explain_object,
    explain_program,
)
from bpfkit.explain.render import (
    render,
    render_json,
    render_markdown,
    render_terminal,
    to_dict,
)
from bpfkit.explain.sections import (
    SectionInfo,
    ctx_field,
    explain_program_section,
    explain_section,
)
from bpfkit.explain.values import Analysis, Env, State, Value, analyze

__all__ = [
    "Analysis",
    "CallArg",
    "CallInfo",
    "Env",
    "Explanation",
    "InsnExplanation",
    "ProgramExplanation",
    "SectionInfo",
    "StackRun",
    "State",
    "Value",
    "analyze",
    "ctx_field",
    "explain_object",
    "explain_program",
    "explain_program_section",
    "explain_section",
    "render",
    "render_json",
    "render_markdown",
    "render_terminal",
    "to_dict",
]
