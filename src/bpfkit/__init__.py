"""bpfkit: build, read, explain, run and load eBPF programs from pure Python.

The public face, one import away (each name is re-exported from the package that owns it
and imported on first use, so ``import bpfkit`` stays cheap)::

    from bpfkit import read_object, Vm, Session

    obj = read_object("examples/hello/hello.o")     # ObjectSpec (bpfkit.obj)
    Vm(obj.program("kprobe__sys_clone"), obj=obj).run().output

=================  ================================================================
read_object        read a BPF ELF object: programs, maps, data, BTF (bpfkit.obj)
build              Rust, LLVM IR, C or BPF assembly to an object (bpfkit.toolchain)
assemble           LLVM-syntax BPF assembly to object bytes (bpfkit.asm)
dump               the ``llvm-objdump -d`` listing of an object (bpfkit.disasm)
explain_object     annotated bytecode: what each instruction is and does (bpfkit.explain)
Vm                 run a program in the userspace VM, no kernel needed (bpfkit.vm)
load_collection    load an object's maps and programs into the kernel (bpfkit.kernel)
Collection         what load_collection returns: ``.programs``, ``.maps``, ``close()``
attach             attach a loaded program at an AttachPoint; returns a Link
AttachPoint        where to attach: ``kprobe:FUNC``, ``tracepoint:CAT:NAME``, ...
Session            load, attach and read trace lines/events in one ``with`` block
TypedMap           a map as Python values typed by its BTF: ``coll["name"]``,
                   ``session["name"]``, ``vm["name"]`` (``.raw``: the bytes)
open_ring_buffer   decoded ring/perf buffer records to a callback, ``.poll(timeout)``
open_perf_buffer   (also ``coll["events"].open_ring_buffer(cb)``, bcc's shape)
XdpAction ...      return values and flags by their uapi names (bpfkit.uapi):
                   ``XdpAction``, ``TcAction``, ``SkAction``, ``RetCode``, ``UpdateFlag``
BpfkitError ...    the errors (bpfkit.errors): ``except KernelError`` also catches a
                   verifier rejection (VerifierError)
=================  ================================================================
"""

from __future__ import annotations

import importlib

from bpfkit.errors import (
    AsmError,
    BpfkitError,
    BtfError,
    BuildError,
    IsaError,
    KernelError,
    MapValueError,
    ObjectError,
    VerifierError,
    VmError,
)

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at start-up
if TYPE_CHECKING:
    from typing import Any

    from bpfkit.asm.assemble import assemble
    from bpfkit.btf.typedmap import TypedMap, open_perf_buffer, open_ring_buffer
    from bpfkit.disasm.objdump import dump
    from bpfkit.explain.explain import explain_object
    from bpfkit.kernel.attach import AttachPoint
    from bpfkit.kernel.collection import Collection, load_collection
    from bpfkit.kernel.links import attach
    from bpfkit.kernel.session import Session
    from bpfkit.obj.reader import read_object
    from bpfkit.toolchain import build
    from bpfkit.uapi import RetCode, SkAction, TcAction, UpdateFlag, XdpAction
    from bpfkit.vm.vm import Vm

__version__ = "0.1.0"

# name -> the module that owns it (imported on first use).
_LAZY = {
    "read_object": "bpfkit.obj.reader",
    "build": "bpfkit.toolchain",
    "assemble": "bpfkit.asm.assemble",
    "dump": "bpfkit.disasm.objdump",
    "explain_object": "bpfkit.explain.explain",
    "Vm": "bpfkit.vm.vm",
    "load_collection": "bpfkit.kernel.collection",
    "Collection": "bpfkit.kernel.collection",
    "attach": "bpfkit.kernel.links",
    "AttachPoint": "bpfkit.kernel.attach",
    "Session": "bpfkit.kernel.session",
    "TypedMap": "bpfkit.btf.typedmap",
    "open_ring_buffer": "bpfkit.btf.typedmap",
    "open_perf_buffer": "bpfkit.btf.typedmap",
    "XdpAction": "bpfkit.uapi",
    "TcAction": "bpfkit.uapi",
    "SkAction": "bpfkit.uapi",
    "RetCode": "bpfkit.uapi",
    "UpdateFlag": "bpfkit.uapi",
}

__all__ = [
    "AsmError",
    "AttachPoint",
    "BpfkitError",
    "BtfError",
    "BuildError",
    "Collection",
    "IsaError",
    "KernelError",
    "MapValueError",
    "ObjectError",
    "RetCode",
    "Session",
    "SkAction",
    "TcAction",
    "TypedMap",
    "UpdateFlag",
    "VerifierError",
    "Vm",
    "VmError",
    "XdpAction",
    "__version__",
    "assemble",
    "attach",
    "build",
    "dump",
    "explain_object",
    "load_collection",
    "open_perf_buffer",
    "open_ring_buffer",
    "read_object",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
