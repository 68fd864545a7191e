"""Finding and running the toolchains ``bpfkit build`` drives: rustc, llc, clang.

Versioned names (``llc-19``, ``clang-14``) are found anywhere on ``PATH``; the newest comes
first.  Every failure is a :class:`~bpfkit.errors.BuildError` saying what is missing and which
Debian package provides it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bpfkit.errors import BuildError

# A compiler that runs longer than this is stuck (a BPF program compiles in well under 1 s).
TIMEOUT = 300.0

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, slots=True)
class Tool:
    """A toolchain program found on this machine."""

    name: str  # as found: "llc-19"
    path: str
    version: tuple[int, ...]  # (major, minor, patch), () if unknown

    @property
    def version_text(self) -> str:
        """The version as ``19.1.7`` (``unknown`` if it could not be read)."""
        return ".".join(map(str, self.version)) or "unknown"


def parse_version(text: str, after: str = "") -> tuple[int, ...]:
    """The first ``X.Y[.Z]`` in ``text`` (after the substring ``after`` if given)."""
    if after and after in text:
        text = text[text.index(after) + len(after) :]
    m = _VERSION.search(text)
    if not m:
        return ()
    return tuple(int(g) for g in m.groups() if g is not None)


def run(
    cmd: Sequence[str], *, what: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` capturing its output; a failure to start or a hang is a BuildError."""
    try:
        return subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            errors="replace",
            env=env,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as e:
        raise BuildError(f"{what}: cannot run {cmd[0]}: {e.strerror}") from e
    except subprocess.TimeoutExpired as e:
        raise BuildError(f"{what}: {cmd[0]} did not finish in {TIMEOUT:.0f} s") from e


def _candidates(base: str) -> list[tuple[str, str]]:
    """``(name, path)`` of ``base`` and every ``base-NN`` on PATH, first hit per name."""
    seen: dict[str, str] = {}
    pattern = re.compile(rf"^{re.escape(base)}(?:-(\d+))?$")
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        try:
            entries = os.listdir(directory or ".")
        except OSError:
            continue
        for entry in entries:
            if entry in seen or not pattern.match(entry):
                continue
            path = os.path.join(directory, entry)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                seen[entry] = path
    return list(seen.items())


def _llvm_version(path: str) -> tuple[int, ...]:
    out = run([path, "--version"], what="reading the version")
    return parse_version(out.stdout + out.stderr, after="version")


def find_all(base: str) -> list[Tool]:
    """``base`` and ``base-NN`` (LLVM tools) on PATH, newest version first."""
    tools = []
    resolved: set[str] = set()
    for name, path in _candidates(base):
        real = os.path.realpath(path)
        if real in resolved:  # llc -> llc-14: one tool, two names
            continue
        resolved.add(real)
        tools.append(Tool(name, path, _llvm_version(path)))
    # Newest first; an unreadable version sorts last.  Ties: the plain name last.
    tools.sort(key=lambda t: (t.version, t.name), reverse=True)
    return tools


def find_llcs() -> list[Tool]:
    """Every llc here, newest first; BuildError if there is none."""
    tools = find_all("llc")
    if not tools:
        raise BuildError(
            "no llc found on PATH (looked for llc and llc-NN): install LLVM "
            "(Debian: apt-get install llvm-19), or build the Rust source instead of its IR"
        )
    return tools


def find_clang() -> Tool:
    """The newest clang here; BuildError naming the Debian package if there is none."""
    tools = find_all("clang")
    if not tools:
        raise BuildError(
            "no clang found on PATH (looked for clang and clang-NN): install it "
            "(Debian: apt-get install clang-19; BPF headers: apt-get install libbpf-dev)"
        )
    return tools[0]


def find_rustc() -> Tool:
    """rustc (``$RUSTC`` if set, else from PATH); BuildError if there is none."""
    wanted = os.environ.get("RUSTC") or "rustc"
    path = shutil.which(wanted)
    if path is None:
        raise BuildError(
            f"{wanted} not found: install Rust 1.89 or newer with rustup (https://rustup.rs; "
            "Debian 12's rustc package is 1.63, too old for bpfkit's prelude), or set RUSTC"
        )
    out = run([path, "--version"], what="reading rustc's version")
    return Tool(Path(path).name, path, parse_version(out.stdout, after="rustc"))
