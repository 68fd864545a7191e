"""What explain says about a call: the callee (helper, BPF function, kfunc) and its arguments.

Built by :mod:`bpfkit.explain.explain`, worded by :mod:`bpfkit.explain.text`; kept apart so
that the wording does not import the analysis that imports it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallArg:
    """One argument register of a call, with what it holds."""

    register: str
    name: str
    ctype: str
    kind: str
    value: str  # Value.describe()
    text: str | None  # for pointers to known bytes: the string or bytes pointed at


@dataclass(frozen=True, slots=True)
class CallInfo:
    """A call: helper (id, name, prototype, arguments), BPF function or kfunc."""

    kind: str  # "helper", "local", "kfunc", "callx"
    id: int
    name: str
    prototype: str
    args: tuple[CallArg, ...]

    @property
    def signature(self) -> str:
        """``bpf_trace_printk(fmt = fp-32 "hello from rust\\n", fmt_size = 17)``."""
        parts = []
        for a in self.args:
            shown = a.value + (f" {a.text}" if a.text else "")
            parts.append(f"{a.name} = {shown}")
        return f"{self.name}({', '.join(parts)})"
