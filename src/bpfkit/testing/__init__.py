"""Testing BPF programs with pytest: the plugin (:mod:`bpfkit.testing.plugin`, loaded by
the ``pytest11`` entry point), the runner over the VM and the kernel
(:mod:`bpfkit.testing.runner`), packet builders (:mod:`bpfkit.testing.packets`),
capability probes (:mod:`bpfkit.testing.probes`) and the leak check
(:mod:`bpfkit.testing.leaks`).  docs/testing.md shows them at work.

The runner's names are imported on first use: importing the probes (as a test suite's
conftest does) does not import the runner, the VM and the object reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bpfkit.testing.runner import BpfRunner, Disagreement, RunResult, diff_results

__all__ = ["BpfRunner", "Disagreement", "RunResult", "diff_results"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bpfkit.testing import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'bpfkit.testing' has no attribute {name!r}")
