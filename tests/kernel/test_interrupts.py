"""Ctrl-C at any moment leaks nothing: Sessions opened, used and closed with a SIGINT at a
random moment of each cycle (scripts/interrupt_cycles.py; 1,000 cycles there, a few dozen
here) leave no fd, tracefs instance or probe entry behind."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import ROOT

pytestmark = pytest.mark.requires("bpf", "tracepoint")


def test_random_interrupts_of_session_open_and_close_leak_nothing() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "interrupt_cycles.py"), "40"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode in (0, 1), proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["interrupted"] > 0  # the signals did land inside the cycles
    assert result["leaked_fds"] == []
    assert result["leaked_instances"] == []
    assert result["leaked_probe_entries"] == []
    assert proc.returncode == 0
