"""A uprobe target's place in its binary is kept in bpfkit's cache directory: a second
lookup reads no ELF; a changed binary (or a damaged entry) is looked up again."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from bpfkit.kernel import symbols


@pytest.fixture
def libc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The C library this process runs on (bpfkit runs on glibc systems).
    with open("/proc/self/maps") as f:
        found = [line.split()[-1] for line in f if line.rstrip().endswith("/libc.so.6")]
    assert found, "no libc.so.6 mapped into this process"
    monkeypatch.setenv("BPFKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BPFKIT_NO_CACHE", raising=False)
    copy = tmp_path / "libc.so.6"
    shutil.copyfile(found[0], copy)
    return copy


def _refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> Any:
        raise AssertionError("read the ELF although the cache holds the symbol")

    monkeypatch.setattr(symbols, "_resolve_user_symbol", refuse)


def test_a_second_lookup_reads_the_cache(libc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = symbols.resolve_user_symbol(str(libc), "malloc")
    assert first.offset > 0
    _refuse(monkeypatch)
    again = symbols.resolve_user_symbol(str(libc), "malloc")
    assert again == first
    with pytest.raises(AssertionError, match="read the ELF"):  # another symbol: a miss
        symbols.resolve_user_symbol(str(libc), "free")


def test_a_changed_binary_is_looked_up_again(libc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    symbols.resolve_user_symbol(str(libc), "malloc")
    st = libc.stat()
    os.utime(libc, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    _refuse(monkeypatch)
    with pytest.raises(AssertionError, match="read the ELF"):
        symbols.resolve_user_symbol(str(libc), "malloc")


def test_a_damaged_entry_is_a_miss(libc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = symbols.resolve_user_symbol(str(libc), "malloc")
    (entry,) = (Path(os.environ["BPFKIT_CACHE_DIR"]) / "uprobe").iterdir()
    entry.write_bytes(entry.read_bytes()[:-3] + b"xyz")
    assert symbols.resolve_user_symbol(str(libc), "malloc") == first  # read again, no error


def test_a_missing_binary_is_one_clear_error(tmp_path: Path) -> None:
    from bpfkit.errors import KernelError

    with pytest.raises(KernelError, match="uprobe target .*nothere"):
        symbols.resolve_user_symbol(str(tmp_path / "nothere"), "malloc")
