"""The userspace eBPF machine: run programs without a kernel.

:class:`Vm` runs a program (a :class:`~bpfkit.obj.spec.ProgramSpec` of an object, or a
list of instructions) against VM maps, a context and a packet, and returns a
:class:`VmResult`.  Memory is made of checked regions (:mod:`bpfkit.vm.memory`); helpers
are emulated from the helper table (:mod:`bpfkit.vm.helpers`); the interpreter decodes a
program once into closures (:mod:`bpfkit.vm.interp`).
"""

from bpfkit.vm.env import Env
from bpfkit.vm.maps import (
    ArrayMap,
    HashMap,
    PerfEventArray,
    ProgArray,
    RingBuf,
    VmMap,
    map_from_data,
    map_from_spec,
)
from bpfkit.vm.vm import Vm, VmResult, program_type, run_program

__all__ = [
    "ArrayMap",
    "Env",
    "HashMap",
    "PerfEventArray",
    "ProgArray",
    "RingBuf",
    "Vm",
    "VmMap",
    "VmResult",
    "map_from_data",
    "map_from_spec",
    "program_type",
    "run_program",
]
