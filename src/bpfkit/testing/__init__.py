"""Testing BPF programs with pytest: the plugin (:mod:`bpfkit.testing.plugin`, loaded by
the ``pytest11`` entry point), the runner over the VM and the kernel
(:mod:`bpfkit.testing.runner`), packet builders (:mod:`bpfkit.testing.packets`),
capability probes (:mod:`bpfkit.testing.probes`) and the leak check
(:mod:`bpfkit.testing.leaks`).  docs/testing.md shows them at work.
"""

from bpfkit.testing.runner import BpfRunner, Disagreement, RunResult, diff_results

__all__ = ["BpfRunner", "Disagreement", "RunResult", "diff_results"]
