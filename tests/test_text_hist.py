"""Histograms drawn as bcc draws them: bcc's own drawing code is the oracle.

bcc's ``table.py`` (Debian's python3-bpfcc, fetched with ``apt-get download`` at test time,
never committed) holds ``_print_log2_hist`` and ``_print_linear_hist``; they are run here on
their own (bcc's package itself needs libbcc) and must print what bpfkit.text draws.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import functools
import io
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import probes
from bpfkit.text import linear_hist, log2_hist, log2_slot


@functools.cache
def _bcc() -> dict[str, Any]:
    cache = Path(probes.realworld_cache())
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not list(cache.glob("python3-bpfcc_*.deb")):
            subprocess.run(
                ["apt-get", "download", "python3-bpfcc"], cwd=cache, check=True, capture_output=True
            )
        deb = sorted(cache.glob("python3-bpfcc_*.deb"))[-1]
        tree = cache / "bcc"
        if not list(tree.rglob("table.py")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    source = next(tree.rglob("bcc/table.py")).read_text()
    wanted = {"_stars", "_print_log2_hist", "_print_linear_hist", "stars_max"}
    module = ast.parse(source)
    keep = [
        node
        for node in module.body
        if (isinstance(node, ast.FunctionDef) and node.name in wanted)
        or (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id in wanted for t in node.targets)
        )
    ]
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), "bcc/table.py", "exec"), namespace)
    return namespace


def _printed(fn: Callable[..., None], *args: Any) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        fn(*args)
    return out.getvalue()


counts = st.lists(st.integers(0, 10**9) | st.just(0), max_size=66)


@pytest.mark.requires("debian-archive")
@settings(max_examples=200, deadline=None)
@given(counts, st.booleans(), st.sampled_from(["usecs", "nsecs", "bytes", "a-long-label-x"]))
def test_log2_hist_is_bccs(slots: list[int], strip: bool, label: str) -> None:
    bcc = _bcc()
    assert log2_hist(slots, label, strip_leading_zero=strip) == _printed(
        bcc["_print_log2_hist"], slots, label, strip
    )


@pytest.mark.requires("debian-archive")
@settings(max_examples=200, deadline=None)
@given(counts, st.booleans(), st.sampled_from(["kbytes", "slot"]))
def test_linear_hist_is_bccs(slots: list[int], strip: bool, label: str) -> None:
    bcc = _bcc()
    assert linear_hist(slots, label, strip_leading_zero=strip) == _printed(
        bcc["_print_linear_hist"], slots, label, strip
    )


def test_log2_slot_and_mapping_input() -> None:
    assert [log2_slot(v) for v in (0, 1, 2, 3, 4, 7, 8, 1 << 40)] == [0, 1, 2, 2, 3, 3, 4, 41]
    assert log2_hist({3: 2, 1: 1}) == log2_hist([0, 1, 0, 2])
