"""What this machine can do, for deciding test skips.

A test may skip only when a probe here says the capability is absent.  The generic probes
(bpf, tracefs, kprobes, uprobes, rustc, tools on PATH) and BPFKIT_REQUIRE are those of
bpfkit's pytest plugin (:mod:`bpfkit.testing.probes`); this file adds the suite's own.  Setting
``BPFKIT_REQUIRE=bpf,tracepoint,...`` turns those skips into failures (CI sets it for what
its machine has).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Any, TypeVar

from bpfkit.testing import probes as plugin_probes

_F = TypeVar("_F", bound=Callable[..., Any])


# bpfkit's pytest plugin owns the generic probes (docs/testing.md); this suite adds its own.
_tool = plugin_probes.tool


def _debian_archive() -> str | None:
    """None if ``apt-get download xdp-tools`` can work: the package is in apt's lists and
    its archive answers."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        return "apt-get / dpkg-deb not installed"
    out = subprocess.run(
        ["apt-get", "download", "--print-uris", "xdp-tools"], capture_output=True, text=True
    )
    uri = out.stdout.split("'")[1] if out.stdout.count("'") >= 2 else ""
    if out.returncode or not uri:
        return "apt does not know xdp-tools (run apt-get update)"
    import urllib.request

    try:
        urllib.request.urlopen(urllib.request.Request(uri, method="HEAD"), timeout=10).close()
    except OSError as e:
        return f"Debian archive unreachable: {e}"
    return None


def _netns() -> str | None:
    """None if the tests can make a network namespace with a veth pair (root + iproute2)."""
    if os.geteuid() != 0:
        return "not root (network namespaces and veth pairs need CAP_NET_ADMIN)"
    if not shutil.which("ip"):
        return "iproute2 (ip) not installed"
    if not os.path.exists("/sys/module/veth") and not os.path.isdir("/sys/class/net"):
        return "no network devices in sysfs"
    return None


def cgroup2_root() -> str | None:
    """Where cgroup v2 is mounted, or None."""
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2":
                return fields[1]
    return None


SDT_INCLUDE_DIRS = ("/usr/include", f"/usr/include/{os.uname().machine}-linux-gnu")


PYTHON_DTRACE = "/usr/bin/python3.11"


def _python_dtrace() -> str | None:
    """None if Debian's CPython (built --with-dtrace) has its USDT probes."""
    try:
        from bpfkit.obj.usdt import read_notes

        if any(n.name == "function__entry" for n in read_notes(PYTHON_DTRACE)):
            return None
    except Exception as e:  # not there, not ELF
        return f"{PYTHON_DTRACE}: {e}"
    return f"{PYTHON_DTRACE} has no python:function__entry probe (built without --with-dtrace)"


def _path(path: str, why: str) -> Callable[[], str | None]:
    return lambda: None if os.path.exists(path) else f"no {path}: {why}"


CONFORMANCE = os.environ.get("BPFKIT_CONFORMANCE", "/work/shared/conformance/tests")


def _conformance() -> str | None:
    if not os.path.isdir(CONFORMANCE):
        return f"the BPF conformance suite is not at {CONFORMANCE} (set BPFKIT_CONFORMANCE)"
    return None


def realworld_cache() -> str:
    """Where tests/test_realworld.py keeps the Debian packages it downloads."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "bpfkit", "realworld")


REALWORLD_PACKAGES = ("xdp-tools", "libxdp1", "xdp-tests")


def _xdp_objects() -> str | None:
    """None if Debian's xdp-tools objects are in the cache or can be downloaded."""
    import glob

    cache = realworld_cache()
    if all(glob.glob(os.path.join(cache, f"{p}_*.deb")) for p in REALWORLD_PACKAGES):
        return None
    return _debian_archive()


def _cgroup2() -> str | None:
    with open("/proc/mounts") as f:
        if any(line.split()[2] == "cgroup2" for line in f if len(line.split()) > 2):
            return None
    return "no cgroup v2 hierarchy is mounted"


def _uapi_kernel() -> str | None:
    """None if the running kernel is the one bpfkit.uapi._generated was generated from."""
    from bpfkit.uapi import _generated

    if os.uname().release in (_generated.__doc__ or ""):
        return None
    return f"the uapi table was generated from another kernel than {os.uname().release}"


def _guest() -> str | None:
    import guest

    return guest.unavailable()


PROBES: dict[str, Callable[[], str | None]] = {
    **plugin_probes.PROBES,  # root, bpf, tracefs, kprobes, clang, rustc, scapy, ...
    "llvm19": lambda: _tool("llvm-objdump-19") or _tool("llvm-mc-19"),
    "clang19": lambda: _tool("clang-19"),
    "llc": lambda: _tool("llc", "llc-19", "llc-14"),
    "llc19": lambda: _tool("llc-19"),
    "binutils": lambda: _tool("objdump"),
    "bpftool": lambda: _tool("bpftool"),
    "graphviz": lambda: _tool("dot"),
    "chromium": lambda: _tool("chromium"),
    "debian-archive": _debian_archive,
    "xdp-objects": _xdp_objects,
    "kernel-btf": _path("/sys/kernel/btf/vmlinux", "kernel built without CONFIG_DEBUG_INFO_BTF"),
    "netns": _netns,
    "kallsyms": _path("/proc/kallsyms", "no kernel symbol table"),
    "dev-full": _path("/dev/full", "no full device to provoke a write error"),
    "gcc": lambda: _tool("gcc"),
    "sdt-header": lambda: (
        None
        if any(os.path.exists(f"{d}/sys/sdt.h") for d in SDT_INCLUDE_DIRS)
        else "no sys/sdt.h (Debian package systemtap-sdt-dev)"
    ),
    "python-dtrace": _python_dtrace,
    "libbpf-headers": _path("/usr/include/bpf/bpf_helper_defs.h", "libbpf-dev not installed"),
    "conformance": _conformance,
    "uapi-kernel": _uapi_kernel,
    "cgroup2": _cgroup2,
    "llvmlite": lambda: (
        None if importlib.util.find_spec("llvmlite") else "llvmlite is not installed"
    ),
    "guest": _guest,  # QEMU can boot the second kernel (tests/guest.py)
}


def needs(*features: str) -> Callable[[_F], _F]:
    """Mark a fixture as needing ``features``: every test using it requires them (as if
    marked ``@pytest.mark.requires(...)``).  Put it below ``@pytest.fixture``."""

    def mark(fixture: _F) -> _F:
        fixture.bpfkit_requires = features  # type: ignore[attr-defined]
        return fixture

    return mark


_cached: dict[str, str | None] = {}


def missing(feature: str) -> str | None:
    """Why ``feature`` is unavailable here, or None if it is available (asked once per
    process)."""
    if feature not in _cached:
        _cached[feature] = PROBES[feature]()
    return _cached[feature]


def required() -> set[str]:
    """Features that CI says must be present (BPFKIT_REQUIRE, read by the plugin's probes)."""
    return plugin_probes.required()
