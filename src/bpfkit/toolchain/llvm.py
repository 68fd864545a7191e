"""LLVM IR (``.ll`` text or ``.bc`` bitcode) to a BPF object with llc.

Textual IR is not compatible across LLVM releases (LLVM 17 dropped typed pointers such as
``i8*``, which the seed's hello.ll uses; new releases add syntax old ones cannot read), so
every llc here is tried, newest first, until one reads the file.
"""

from __future__ import annotations

import re
from pathlib import Path

from bpfkit.errors import BuildError
from bpfkit.toolchain.tools import Tool, find_llcs, run

# llc could not *read* the module (as opposed to failing to compile it).
_READ_ERROR = re.compile(
    r":\d+:\d+: error:|Invalid bitcode|Invalid record|Unknown attribute|"
    r"error: Unknown|Bitcode|bitcode|expected top-level entity|unknown type",
)


def _first_error(stderr: str, tool_path: str = "") -> str:
    # llc prefixes its messages with its own path, sometimes twice.
    prefix = re.compile(rf"^(?:{re.escape(tool_path)}: (?:error: )?)+") if tool_path else None
    for line in stderr.splitlines():
        if "error" in line.lower():
            return prefix.sub("", line.strip()) if prefix else line.strip()
    return stderr.strip().splitlines()[0] if stderr.strip() else "(no message)"


def llc_command(tool: Tool, src: Path, out: Path, *, big_endian: bool = False) -> list[str]:
    """The llc command line for one BPF object."""
    return [
        tool.path,
        f"-march={'bpfeb' if big_endian else 'bpfel'}",
        "-filetype=obj",
        str(src),
        "-o",
        str(out),
    ]


def compile_ir(src: Path, out: Path, *, big_endian: bool = False) -> Tool:
    """Compile the IR file ``src`` to the object ``out``; returns the llc that did it."""
    tools = find_llcs()
    unreadable: list[str] = []
    for tool in tools:
        res = run(llc_command(tool, src, out, big_endian=big_endian), what=f"compiling {src}")
        if res.returncode == 0 and out.is_file():
            return tool
        out.unlink(missing_ok=True)
        if not _READ_ERROR.search(res.stderr):
            raise BuildError(
                f"{tool.name} ({tool.version_text}) failed to compile {src}: "
                f"{_first_error(res.stderr, tool.path)}\n{res.stderr.rstrip()}"
            )
        unreadable.append(
            f"  {tool.name} {tool.version_text}: {_first_error(res.stderr, tool.path)}"
        )
    newest = tools[0]
    raise BuildError(
        f"no llc here can read {src}:\n"
        + "\n".join(unreadable)
        + f"\nIf the IR comes from a newer LLVM than {newest.name} {newest.version_text} "
        "(rustc 1.95 writes LLVM 22 IR), build the Rust source itself instead: "
        "`bpfkit build program.rs` uses rustc's own BPF backend and bpfkit's assembler"
    )
