"""The exception tree: errors.py's drawing is the classes' real tree, every bpfkit error is
in it, and ``except KernelError`` catches a program the verifier refused (a fake kernel
refuses it with a verifier log, as BPF_PROG_LOAD does)."""

from __future__ import annotations

import ctypes
import errno
import importlib
import pkgutil
import re

import pytest

import bpfkit
from bpfkit import errors
from bpfkit.errors import BpfkitError, KernelError, VerifierError
from bpfkit.isa.insn import Insn
from bpfkit.syscalls import Cmd, attrs, use_backend


def _drawn() -> dict[str, str]:
    """Each class of the docstring's drawing -> the class drawn above it."""
    doc = errors.__doc__ or ""
    lines = [ln for ln in doc.split("::", 1)[1].splitlines() if ln.strip()]
    parents: dict[str, str] = {}
    path: list[tuple[int, str]] = []  # (column of the name, name) from the root down
    for line in lines:
        m = re.match(r"^(\s*(?:[│ ]\s*)*(?:[├└]── )?)(\w+)", line)
        if m is None or not m[2].endswith("Error") and m[2] != "Fault":
            break  # the prose after the drawing
        col, name = len(m[1]), m[2]
        while path and path[-1][0] >= col:
            path.pop()
        parents[name] = path[-1][1] if path else ""
        path.append((col, name))
    return parents


def _all_error_classes() -> dict[str, type[BaseException]]:
    for mod in pkgutil.walk_packages(bpfkit.__path__, "bpfkit."):
        if not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)
    found: dict[str, type[BaseException]] = {}
    todo: list[type[BaseException]] = [BpfkitError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("bpfkit."):
            found[cls.__name__] = cls
        todo += cls.__subclasses__()
    return found


def test_the_drawing_is_the_tree() -> None:
    drawn = _drawn()
    classes = _all_error_classes()
    assert drawn["BpfkitError"] == ""
    assert set(drawn) == set(classes), "draw these in errors.py, or remove them from it"
    for name, parent in drawn.items():
        if parent:
            assert classes[name].__bases__ == (classes[parent],), name


def test_the_drawing_reads_indentation() -> None:
    assert _drawn()["VerifierError"] == "KernelError"
    assert _drawn()["Fault"] == "VmError"
    assert _drawn()["KernelError"] == "BpfkitError"


def test_except_kernel_error_catches_a_verifier_rejection() -> None:
    from bpfkit.kernel.program import load_program

    log = b"0: (95) exit\nR0 !read_ok\nprocessed 1 insns\n\0"

    def verifier(cmd: int, attr: ctypes.Structure) -> int:
        assert cmd == Cmd.PROG_LOAD and isinstance(attr, attrs.ProgLoadAttr)
        if attr.log_size:
            ctypes.memmove(attr.log_buf, log, min(len(log), attr.log_size))
            attr.log_true_size = len(log)
        raise OSError(errno.EACCES, "Permission denied")

    with use_backend(verifier), pytest.raises(KernelError) as caught:
        load_program([Insn(0x95)], "socket_filter")
    assert isinstance(caught.value, VerifierError)
    assert caught.value.errno == errno.EACCES
    assert "R0 !read_ok" in caught.value.log
