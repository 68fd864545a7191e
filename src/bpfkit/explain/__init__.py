"""Annotated bytecode: what each instruction of a BPF object is, does and leaves behind.

:func:`explain_object` turns an :class:`~bpfkit.obj.spec.ObjectSpec` into plain data
(:class:`Explanation`: per instruction the bytes, both instruction syntaxes, the decoded
fields, sentences, the registers and stack after it, the call it makes, and the state
bpfkit's verifier proves there: value ranges and pointer kinds in the kernel log's
notation); the render functions turn that into terminal text, Markdown or JSON.  Ranges
and pointer kinds come from the verifier (:mod:`bpfkit.explain.states`); the small
interpreter of :mod:`bpfkit.explain.values` (:func:`analyze`, :class:`Value`,
:class:`State`) keeps what the verifier does not: the bytes of stack strings and
read-only data.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bpfkit.explain.analysis import analyze_program
    from bpfkit.explain.calls import CallArg, CallInfo
    from bpfkit.explain.explain import (
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

# Where each public name lives: importing the package loads nothing until a name is used,
# so a command that needs only the value analysis (printk formats) skips the renderers.
_HOME = {
    **dict.fromkeys(
        (
            "Explanation InsnExplanation ProgramExplanation StackRun explain_object explain_program"
        ).split(),
        "explain",
    ),
    **dict.fromkeys("render render_json render_markdown render_terminal to_dict".split(), "render"),
    **dict.fromkeys(
        "SectionInfo ctx_field explain_program_section explain_section".split(), "sections"
    ),
    **dict.fromkeys("Analysis Env State Value analyze".split(), "values"),
    **dict.fromkeys(("CallArg", "CallInfo"), "calls"),
    "analyze_program": "analysis",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'bpfkit.explain' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bpfkit.explain.{home}"), name)


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
    "analyze_program",
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
