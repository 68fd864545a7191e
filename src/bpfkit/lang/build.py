"""``bpfkit build prog.py``: compile a Python program file and write its object atomically."""

from __future__ import annotations

import os
import tempfile

from bpfkit.errors import CompileError
from bpfkit.lang.compiler import compile_file


def build_python(source: str, output: str | None = None, *, asm_out: str | None = None) -> str:
    """Compile ``source`` and write the object to ``output`` (default: NAME.o here); the
    path written.  Nothing is written when compiling fails."""
    compiled = compile_file(source)
    out = output or os.path.splitext(os.path.basename(source))[0] + ".o"
    _write(out, compiled.obj)
    if asm_out:
        _write(asm_out, compiled.asm.encode())
    return out


def _write(path: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".bpfkit-")
    except OSError as e:
        raise CompileError(f"cannot write {path}: {e.strerror}", file=path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        os.unlink(tmp)
        raise CompileError(f"cannot write {path}: {e.strerror}", file=path) from None
