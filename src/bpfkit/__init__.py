"""bpfkit: build, read, explain, run and load eBPF programs from pure Python."""

from bpfkit.errors import BpfkitError

__all__ = ["BpfkitError", "__version__"]
__version__ = "0.1.0"
