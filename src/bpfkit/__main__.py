"""``python -m bpfkit``."""

from bpfkit.cli.main import entry

entry()
