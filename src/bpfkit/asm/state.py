"""What the directive handlers act on, named without importing the assembler.

The directives (:mod:`bpfkit.asm.directives`) and the DWARF/CFI directives
(:mod:`bpfkit.asm.dwarf`) take an :class:`Assembling`: the object being built, the byte
order, the section stack and errors located at the current statement.  The assembler
(:class:`bpfkit.asm.llvm_asm.Assembler`) is one; it imports the handlers, so they name this
protocol rather than it.  :class:`DwarfState` is what the DWARF directives collect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bpfkit.asm.builder import Builder, Section
from bpfkit.asm.expr import Value
from bpfkit.errors import AsmError

IS_STMT = 1  # DWARF line-table flag: the row starts a statement


@dataclass
class Entry:
    """A row of the line table: where, and the source position."""

    offset: int
    file: int
    line: int
    column: int
    flags: int
    isa: int
    discriminator: int


@dataclass
class DwarfState:
    """Everything the frame and line-table directives collected."""

    root: tuple[str, str, bytes | None] | None = None  # (directory, name, md5) of file 0
    files: dict[int, tuple[str, int, bytes | None]] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)
    has_table: bool = False
    pending: tuple[int, int, int, int, int, int] | None = None
    stmt: int = IS_STMT  # is_stmt carries over from one .loc to the next
    lines: dict[int, tuple[Section, list[Entry]]] = field(default_factory=dict)
    eh_frame: bool = True
    debug_frame: bool = False
    frames: list[tuple[Section, int, int]] = field(default_factory=list)
    open: tuple[Section, int, Any] | None = None


class Assembling(Protocol):
    """The assembler as the directive handlers see it."""

    b: Builder  # the object being built
    big_endian: bool
    dwarf: DwarfState
    section_stack: list[tuple[Any, Any]]  # .pushsection / .popsection
    previous: object  # the section .previous returns to

    def error(self, message: str, column: int | None = None) -> AsmError:
        """An AsmError at the current statement (1-based ``column``)."""
        ...

    def here(self, column: int) -> object:
        """The current statement's location with another column, for late errors."""
        ...

    def parse_expr(self, text: str, pos: int, base: int) -> tuple[Value, int]:
        """An expression of ``text`` at ``pos``; ``base`` is the 0-based column of text[0]."""
        ...
