"""The kernel tests marked ``guest`` on the second kernel: Debian 12's stock Linux 6.1
(which has kprobes, unlike this machine's) booted under QEMU by ``tests/guest.py``.

One boot runs them all (``pytest -m guest`` inside the guest, on the files that hold
them, kprobes required there):
the kprobe and kretprobe tests through both attach paths, the seed's hello as a real
kprobe on ``__x64_sys_clone``, and the tests whose expectations depend on the kernel.
The guest's kernel test summary is added to this run's summary.
"""

from __future__ import annotations

import re

import pytest

import guest

pytestmark = [pytest.mark.requires("guest"), pytest.mark.long]


def _guest_files(session: pytest.Session) -> list[str]:
    """The test files holding this run's ``guest`` tests, as collected here (the guest
    then imports only those: every module costs seconds under TCG); the whole kernel test
    directory when this run collected none of them (this module run alone)."""
    files = {
        item.nodeid.split("::")[0]
        for item in session.items
        if item.get_closest_marker("guest") and item.nodeid.startswith("tests/")
    }
    return sorted(files) or ["tests/kernel"]


def test_guest_kernel_runs_the_guest_tests(
    request: pytest.FixtureRequest, record_property: pytest.RecordProperty
) -> None:
    result = guest.run(
        [".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no"]
        # Only what the guest tests use: every import costs seconds under TCG.
        + ["-p", "no:xdist", "-p", "no:bpfkit", "-m", "guest"]
        + ["-o", "addopts=--strict-markers -rs", *_guest_files(request.session)],
        env={"BPFKIT_REQUIRE": "bpf,tracefs,tracepoint,kprobes,clang19", "BPFKIT_GUEST": "1"},
    )
    tail = result.output[-6000:]
    assert result.release.startswith("6.1."), result.release
    m = re.search(r"kernel tests: (\d+) ran, (\d+) skipped \((\S+), this machine\)", tail)
    assert m, tail
    ran, skipped, release = int(m[1]), int(m[2]), m[3]
    assert release == result.release, tail  # it ran on the guest's kernel
    record_property("guest_kernel_tests", f"{ran} ran, {skipped} skipped ({release}, QEMU guest)")
    assert result.status == 0, tail
    assert ran >= 10 and skipped == 0, tail
