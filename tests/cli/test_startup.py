"""Start-up: a command imports what it uses, and the kernel's BTF is parsed only for
objects that need it (CO-RE, ksyms, kfuncs, tp_btf).

Each check runs a command in a fresh interpreter and looks at ``sys.modules`` afterwards:
importing the VM, the BTF parser or rich costs tens of milliseconds a one-shot command
like ``bpfkit run OBJ --count 0`` should not pay (see bench/load.py for the times).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

ROOT = ROOT
HELLO = ROOT / "examples" / "hello" / "hello.o"

# Modules no kernel command needs for the seed's hello.o.
HEAVY = (
    "bpfkit.vm",
    "bpfkit.btf",
    "bpfkit.explain",
    "bpfkit.asm",
    "bpfkit.toolchain",
    "rich",
    "bpfkit.events.perf",
    "bpfkit.events.ringbuf",
    "bpfkit.obj.externs",
    "bpfkit.obj.core_relocate",
    "bpfkit.uapi.helpers",
)


def _after(code: str) -> dict[str, object]:
    """Run ``code`` (which sets ``result``) in a fresh interpreter; return ``result`` with
    the loaded module names added as ``modules``."""
    script = (
        "import json, sys\n"
        f"{code}\n"
        "result['modules'] = sorted(sys.modules)\n"
        "print(json.dumps(result))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return out


def _loaded(modules: object, prefixes: tuple[str, ...]) -> list[str]:
    assert isinstance(modules, list)
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]


def test_the_run_parser_imports_neither_the_vm_nor_the_reader() -> None:
    res = _after(
        "from bpfkit.cli.main import build_parser\n"
        "build_parser(['run', 'x.o']).parse_args(['run', 'x.o'])\n"
        "result = {}"
    )
    assert _loaded(res["modules"], (*HEAVY, "bpfkit.obj.reader", "elftools")) == []


@pytest.mark.requires("bpf", "tracepoint")
def test_run_of_hello_imports_only_what_it_uses() -> None:
    res = _after(
        "from bpfkit.cli.main import main\n"
        f"result = {{'rc': main(['run', {str(HELLO)!r}, '--count', '0'])}}"
    )
    assert res["rc"] == 0
    # run finds the printk formats with explain's value analysis: that (and the helper
    # table it reads) loads, explain's renderers and the rest do not.
    analysis = {
        "bpfkit.explain",
        "bpfkit.explain.analysis",
        "bpfkit.explain.sections",
        "bpfkit.explain.values",
        "bpfkit.uapi.helpers",
    }
    assert [m for m in _loaded(res["modules"], HEAVY) if m not in analysis] == []


@pytest.mark.requires("bpf")
def test_prog_list_does_not_import_the_loader() -> None:
    res = _after("from bpfkit.cli.main import main\nresult = {'rc': main(['prog', 'list'])}")
    assert res["rc"] == 0
    loader = ("bpfkit.kernel.collection", "bpfkit.obj.reader", "elftools")
    assert _loaded(res["modules"], (*HEAVY, *loader)) == []


@pytest.mark.requires("bpf", "tracepoint", "clang19")
def test_an_object_with_btf_but_no_core_does_not_parse_vmlinux(tmp_path: Path) -> None:
    """execsnoop.c has BTF (its ring buffer is a BTF-defined map) and no CO-RE
    relocations: its own BTF is read, the kernel's is not."""
    obj = tmp_path / "execsnoop.o"
    clang = shutil.which("clang-19")
    assert clang
    subprocess.run(
        [clang, "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu"]
        + ["-c", str(ROOT / "examples" / "execsnoop" / "execsnoop.c"), "-o", str(obj)],
        check=True,
    )
    res = _after(
        "from bpfkit.cli.main import main\n"
        f"result = {{'rc': main(['run', {str(obj)!r}, '--count', '0'])}}\n"
        "result['read_btf'] = 'bpfkit.btf.btf' in sys.modules\n"
        "import bpfkit.btf\n"
        "result['vmlinux_parsed'] = bpfkit.btf.load_vmlinux.cache_info().currsize"
    )
    assert res["rc"] == 0
    assert res["read_btf"]  # the object's own BTF was read ...
    assert res["vmlinux_parsed"] == 0  # ... the kernel's was not


def test_ctrl_c_during_start_up_exits_quietly_with_130() -> None:
    """SIGINTs spread over a command's start-up (imports, parsing, running, exiting): no
    traceback, status 130.  (A SIGINT inside the interpreter's own start-up, while it
    imports ``site`` before any bpfkit code exists, is Python's to report.)"""
    import re
    import signal
    import threading
    import time

    # What the console script `bpfkit` runs (pip's wrapper around bpfkit.cli.entry).
    script = "import sys; from bpfkit.cli import entry; sys.argv[0] = 'bpfkit'; entry()"
    cmd = [sys.executable, "-c", script, "dump", str(HELLO)]
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = time.monotonic() - t0
    t0 = time.monotonic()
    subprocess.run(cmd, capture_output=True, check=True)
    whole = time.monotonic() - t0
    ours = interrupted = 0
    for i in range(10):
        p = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # As from a shell: SIGINT not ignored (pytest-xdist workers ignore it, and a
            # child inheriting that would never see the signal).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        delay = bare + (whole - bare) * i / 9
        timer = threading.Timer(delay, p.send_signal, (signal.SIGINT,))
        timer.start()
        err = p.communicate(timeout=120)[1]
        timer.join()
        if "Traceback" in err and not re.search(r'/bpfkit/.*", line \d+, in (?!<module>)', err):
            # Inside the interpreter's start-up or the console script's first import of
            # the package: no bpfkit function runs yet, so nothing of ours can catch it.
            continue
        ours += 1
        interrupted += p.returncode in (130, -signal.SIGINT)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        # 130, or killed by the SIGINT itself (in the interpreter's very first or last
        # moments, where the default handler is in place): both are 130 to a shell.
        assert p.returncode in (0, 130, -signal.SIGINT), (p.returncode, err)
        assert p.returncode != -signal.SIGINT or not err.strip(), err
    assert ours >= 3
    assert interrupted >= 2  # the signals did stop commands


@pytest.mark.requires("bpf")
def test_load_of_hello_imports_only_what_it_uses() -> None:
    """``bpfkit load`` reads and loads: not the opcode table (reading needs bpfkit.isa.insn
    only), no BTF code for an object without BTF, nothing of run's tracing."""
    res = _after(
        "import contextlib, io\n"
        "from bpfkit.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    result = {{'rc': main(['load', {str(HELLO)!r}])}}"
    )
    assert res["rc"] == 0
    other = ("bpfkit.isa.table", "bpfkit.kernel.session", "bpfkit.events", "bpfkit.verify")
    assert _loaded(res["modules"], (*HEAVY, *other)) == []


@pytest.mark.requires("bpf", "tracepoint", "kernel-btf")
def test_a_core_object_decodes_only_the_kernel_types_it_needs() -> None:
    """execsnoop.py reads the parent's tgid through CO-RE: loading it decodes a few of the
    kernel's types (task_struct and what its path goes through), not all 100,000."""
    res = _after(
        "from bpfkit.lang.runtime import Program\n"
        "from bpfkit.kernel.collection import load_collection\n"
        "from bpfkit.btf import load_vmlinux\n"
        "prog = Program.from_file('examples/python/execsnoop.py')\n"
        "load_vmlinux.cache_clear()  # count what loading decodes, not compiling\n"
        "with load_collection(prog.spec):\n"
        "    pass\n"
        "btf = load_vmlinux()\n"
        "result = {'decoded': len(btf.types._cache), 'all': len(btf)}"
    )
    assert isinstance(res["decoded"], int) and isinstance(res["all"], int)
    assert 1 < res["decoded"] < 500 < res["all"]
