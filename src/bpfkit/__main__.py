"""``python -m bpfkit``."""

from bpfkit.cli import entry

entry()
