"""tracefs: event ids, probe entries and their errors, private instances."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import probes
from bpfkit.errors import KernelError
from bpfkit.kernel import tracefs

pytestmark = pytest.mark.requires("tracefs")


def test_root_is_mounted_tracefs() -> None:
    root = tracefs.root()
    assert (root / "trace_pipe").exists()
    assert any(
        line.split()[1] == str(root) and line.split()[2] == "tracefs"
        for line in Path("/proc/mounts").read_text().splitlines()
    ) or root == Path("/sys/kernel/debug/tracing")


def test_event_ids_match_tracefs_files() -> None:
    root = tracefs.root()
    expected = int((root / "events/syscalls/sys_enter_getppid/id").read_text())
    assert tracefs.event_id("syscalls", "sys_enter_getppid") == expected
    fmt = (root / "events/syscalls/sys_enter_getppid/format").read_text()
    assert f"ID: {expected}" in fmt


def test_missing_events_say_what_exists() -> None:
    with pytest.raises(KernelError, match=r"syscalls:sys_enter_getppidd does not exist.*similar"):
        tracefs.event_id("syscalls", "sys_enter_getppidd")
    with pytest.raises(KernelError, match="no category 'nosuchcategory'"):
        tracefs.event_id("nosuchcategory", "x")


def test_probe_entry_kinds_and_missing_kprobes() -> None:
    with pytest.raises(ValueError, match="kprobe or uprobe"):
        tracefs.ProbeEntry("fprobe", "x")
    if probes.missing("kprobes"):
        with pytest.raises(KernelError, match="no kprobes"):
            tracefs.ProbeEntry("kprobe", "do_sys_open")


@pytest.mark.requires("tracefs", "uprobes")
def test_uprobe_entry_lifecycle_and_syntax_errors() -> None:
    with tracefs.ProbeEntry("uprobe", "/bin/true:0x0", retprobe=True) as entry:
        line = f"bpfkit/{entry.name}"
        assert line in tracefs.probe_entries()
        text = (tracefs.root() / "uprobe_events").read_text()
        assert f"r:bpfkit/{entry.name} /bin/true:0x" in text
        assert entry.event_id == tracefs.event_id("bpfkit", entry.name)
    assert line not in tracefs.probe_entries()
    entry.close()  # idempotent
    with pytest.raises(KernelError, match="uprobe_events failed"):
        tracefs.ProbeEntry("uprobe", "/no/such/binary:0x10")
    assert not any(f"_{os.getpid()}_" in e for e in tracefs.probe_entries())


def test_instance_lifecycle() -> None:
    inst = tracefs.TraceInstance()
    assert inst.path.name in tracefs.instances()
    enable = inst.path / "events/bpf_trace/bpf_trace_printk/enable"
    assert enable.read_text().strip() == "1"
    assert list(inst.pipe.lines(0)) == []  # nothing yet, no wait
    inst.close()
    inst.close()
    assert inst.path.name not in tracefs.instances()
    assert not inst.path.exists()
