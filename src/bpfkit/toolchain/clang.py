"""C to a BPF object with clang (``clang -target bpf -O2 -g``).

``-g`` makes clang emit BTF (``.BTF`` and ``.BTF.ext``), which BTF-defined maps
(``SEC(".maps")``) need.  ``<bpf/bpf_helpers.h>`` comes from libbpf-dev in /usr/include;
``<linux/types.h>`` pulls ``<asm/types.h>``, which Debian keeps in the multiarch directory.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Sequence
from pathlib import Path

from bpfkit.errors import BuildError
from bpfkit.toolchain.tools import Tool, find_clang, run

# `bpf_tracing.h` needs the target architecture to read pt_regs.
_TARGET_ARCH = {"x86_64": "x86", "aarch64": "arm64", "s390x": "s390", "ppc64le": "powerpc"}
_MULTIARCH = {
    "x86_64": "x86_64-linux-gnu",
    "aarch64": "aarch64-linux-gnu",
    "s390x": "s390x-linux-gnu",
    "ppc64le": "powerpc64le-linux-gnu",
}
_LOCATION = re.compile(r"^(\S+?):(\d+):(\d+): (?:fatal )?error: (.*)$", re.MULTILINE)


def clang_command(
    tool: Tool,
    src: Path,
    out: Path,
    *,
    big_endian: bool = False,
    cflags: Sequence[str] = (),
) -> list[str]:
    """The clang command line for one BPF object."""
    machine = platform.machine()
    cmd = [
        tool.path,
        "-target",
        "bpfeb" if big_endian else "bpfel",
        "-O2",
        "-g",
        "-Wall",
        "-fno-color-diagnostics",
    ]
    arch = _TARGET_ARCH.get(machine)
    if arch:
        cmd.append(f"-D__TARGET_ARCH_{arch}")
    multiarch = Path("/usr/include") / _MULTIARCH.get(machine, f"{machine}-linux-gnu")
    if multiarch.is_dir():
        cmd += ["-I", str(multiarch)]
    cmd += list(cflags)
    cmd += ["-c", str(src), "-o", str(out)]
    return cmd


def compile_c(
    src: Path, out: Path, *, big_endian: bool = False, cflags: Sequence[str] = ()
) -> Tool:
    """Compile the C file ``src`` to the object ``out``; returns the clang used."""
    tool = find_clang()
    res = run(
        clang_command(tool, src, out, big_endian=big_endian, cflags=cflags),
        what=f"compiling {src}",
    )
    if res.returncode == 0 and out.is_file():
        return tool
    out.unlink(missing_ok=True)
    m = _LOCATION.search(res.stderr)
    summary = f"{m.group(1)}:{m.group(2)}:{m.group(3)}: {m.group(4)}" if m else str(src)
    hint = ""
    if re.search(r"'bpf/[\w.]+' file not found", res.stderr) and not os.path.isdir(
        "/usr/include/bpf"
    ):
        hint = "\nnote: the libbpf headers are missing: apt-get install libbpf-dev"
    raise BuildError(
        f"{tool.name} {tool.version_text} failed on {summary}\n{res.stderr.rstrip()}{hint}"
    )
