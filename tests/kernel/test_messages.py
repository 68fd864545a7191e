"""Messages for kernel refusals that need no kernel to check: EILSEQ from a kprobe offset,
listing without CAP_SYS_ADMIN, reading trace output as a non-root user, and the forms of
kprobe_events lines the stale-entry cleanup recognises."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bpfkit.errors import KernelError
from bpfkit.kernel import tracefs
from bpfkit.syscalls import causes, perf
from bpfkit.uapi import Cmd
from helpers import as_nobody


@pytest.mark.parametrize(
    "line",
    [
        "p:bpfkit/k_123_0 __x64_sys_getppid",
        "r:bpfkit/k_123_1 __x64_sys_getppid",
        "r10:bpfkit/k_123_2 __x64_sys_getppid",  # Linux 6.1: maxactive after the r
        "r128:bpfkit/u_123_3 /bin/true:0x1040",
    ],
)
def test_probe_entry_lines_are_recognised(line: str) -> None:
    m = tracefs._ENTRY.match(line)
    assert m is not None and m.group(2) == "123"


def test_kprobe_offset_inside_an_instruction_is_explained() -> None:
    why = perf._cause(errno.EILSEQ, "kprobe:__x64_sys_getppid+4")
    assert "not the start of an instruction" in why
    assert "multibyte" not in why


def test_listing_needs_cap_sys_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(causes, "effective_caps", lambda: 1 << causes.CAP_BPF)
    monkeypatch.setattr(causes.os, "geteuid", lambda: 0)
    for cmd in (Cmd.PROG_GET_NEXT_ID, Cmd.MAP_GET_FD_BY_ID, Cmd.LINK_GET_NEXT_ID):
        why = causes.cause(cmd, errno.EPERM)
        assert "CAP_SYS_ADMIN" in why and "SELinux" not in why


def test_reading_trace_output_as_a_user_says_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def denied(path: object, flags: int, *a: object) -> int:
        if str(path).endswith("trace_pipe"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(tracefs.os, "open", denied)
    with pytest.raises(KernelError, match="reading trace output needs root"):
        tracefs.TracePipe(tmp_path / "trace_pipe")


@pytest.mark.requires("bpf")
def test_prog_list_with_cap_bpf_but_not_cap_sys_admin() -> None:
    """The real refusal: setpriv drops CAP_SYS_ADMIN and keeps CAP_BPF."""
    proc = subprocess.run(
        ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin"]
        + [sys.executable, "-m", "bpfkit", "prog", "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "needs CAP_SYS_ADMIN" in proc.stderr and "SELinux" not in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.requires("bpf", "tracefs")  # root, to become another user
def test_trace_as_a_user_says_it_needs_root() -> None:
    cmd, env = as_nobody("-m", "bpfkit", "trace", "--count", "1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd="/")
    assert proc.returncode == 1
    assert "reading trace output needs root" in proc.stderr
    assert "Traceback" not in proc.stderr
