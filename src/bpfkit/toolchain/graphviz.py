"""Laying out graphs with Graphviz's ``dot`` program (Debian package ``graphviz``).

bpfkit writes the DOT text itself (:mod:`bpfkit.explain.graph`) and runs ``dot`` only for
the layout.  The ``graphviz`` package on PyPI would not save that: it is a wrapper that
writes DOT and runs the same ``dot`` executable, so it would add a dependency while still
needing Debian's graphviz.  Failures are :class:`~bpfkit.errors.BuildError` naming the
package to install.
"""

from __future__ import annotations

import shutil
import subprocess

from bpfkit.errors import BuildError

FORMATS = ("svg", "png", "dot")
TIMEOUT = 120.0


def dot_path() -> str | None:
    """Where ``dot`` is, or None."""
    return shutil.which("dot")


def layout(dot_text: str, fmt: str) -> bytes:
    """``dot_text`` laid out as ``fmt`` (``svg`` or ``png``; ``dot`` returns the text)."""
    if fmt not in FORMATS:
        raise BuildError(f"unknown graph format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "dot":
        return dot_text.encode()
    exe = dot_path()
    if exe is None:
        raise BuildError(
            f"drawing {fmt.upper()} needs Graphviz's dot: install it (apt-get install graphviz), "
            "or write .dot text instead"
        )
    try:
        out = subprocess.run(
            [exe, f"-T{fmt}"],
            input=dot_text.encode(),
            capture_output=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        raise BuildError(f"Graphviz dot did not finish in {TIMEOUT:.0f} s") from e
    except OSError as e:
        raise BuildError(f"cannot run Graphviz dot ({exe}): {e.strerror or e}") from e
    if out.returncode != 0 or not out.stdout:
        msg = out.stderr.decode(errors="replace").strip()
        raise BuildError(f"Graphviz dot failed (exit {out.returncode}): {msg}")
    return out.stdout
