"""Helpers several test modules share (tests/ is on sys.path via conftest: ``import helpers``).

API::

    clang_bpf(src, out, *extra, target="bpf") -> Path   # clang-19 -O2 -g, the object's path
    valid_insn(op_index, dst, src, off, imm, hi) -> Insn  # a row of OPS, unused fields zero
    valid_insns                                         # hypothesis strategy of valid_insn
    no_leaked_fds()                                     # context manager: asserts no fd leaks
    llvm_objdump(paths, mcpu, imm_hex, relocs) -> {Path: text}  # llvm-objdump-19 -d, per file
    llvm_objdump_each(paths, *flags) -> {Path: text}    # the same with any options
    readobj_relocations(path) -> {section: [(offset, type, symbol)]}  # llvm-readobj-19 -r
    verifier_log(insns, prog_type=1) -> str             # the kernel verifier's log_level 2 log
    realworld_objects() -> [Path]    # xdp-tools' BPF objects (apt-get download; probe "xdp-objects")
"""

from __future__ import annotations

import ctypes
import fcntl
import gc
import os
import re
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import strategies as st

import probes
from bpfkit.isa import OPS, Insn
from bpfkit.isa.insn import LDDW_OPCODE

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
# The BPF conformance suite's tests/ directory (probe "conformance"; BPFKIT_CONFORMANCE).
CONFORMANCE = Path(probes.CONFORMANCE)

# The multiarch headers (asm/types.h, ...) a BPF target does not find on its own.
INCLUDE = f"-I/usr/include/{os.uname().machine}-linux-gnu"


_built: dict[tuple[str, bytes, tuple[str, ...], str], bytes] = {}


def clang_bpf(src: Path, out: Path, *extra: str, target: str = "bpf") -> Path:
    """Compile ``src`` with clang-19 for ``target`` (-O2 -g, ``extra`` flags) to ``out``.

    The same file with the same text and flags is compiled once per process (the object
    is copied).  A failure raises ``subprocess.CalledProcessError`` with clang's messages
    as a note."""
    key = (str(Path(src).resolve()), Path(src).read_bytes(), extra, target)
    if key in _built:
        Path(out).write_bytes(_built[key])
        return out
    try:
        subprocess.run(
            [
                "clang-19",
                "-target",
                target,
                "-O2",
                "-g",
                INCLUDE,
                *extra,
                "-c",
                str(src),
                "-o",
                str(out),
            ],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as e:
        e.add_note(e.stderr.decode(errors="replace"))
        raise
    _built[key] = Path(out).read_bytes()
    return out


def valid_insn(op_index: int, dst: int, src: int, off: int, imm: int, hi: int) -> Insn:
    """An instruction of row ``OPS[op_index]``: its fixed fields, the rest from the arguments
    where the row uses them, zero where it does not."""
    op = OPS[op_index]
    if op.opcode == LDDW_OPCODE:
        return Insn(op.opcode, dst, op.src or 0, 0, imm, hi)
    return Insn(
        op.opcode,
        dst if "dst" in op.uses else 0,
        op.src if op.src is not None else (src if "src" in op.uses else 0),
        op.off if op.off is not None else (off if "off" in op.uses else 0),
        op.imm if op.imm is not None else (imm if "imm" in op.uses else 0),
    )


valid_insns = st.builds(
    valid_insn,
    st.integers(0, len(OPS) - 1),
    st.integers(0, 10),
    st.integers(0, 10),
    st.integers(-0x8000, 0x7FFF),
    st.integers(-0x80000000, 0x7FFFFFFF),
    st.integers(-0x80000000, 0x7FFFFFFF),
)


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@contextmanager
def no_leaked_fds() -> Iterator[None]:
    """Fail if the block leaves file descriptors open (after a garbage collection)."""
    before = _open_fds()
    yield
    leaked = _open_fds() - before
    if leaked:
        # Collect only when needed: with the kernel's BTF parsed (a large object graph
        # other modules cache), a full collection takes a noticeable time.
        gc.collect()
        leaked = _open_fds() - before
    assert not leaked, f"test left descriptors open: {sorted(leaked)}"


def llvm_objdump(
    paths: list[Path], mcpu: str | None, imm_hex: bool, relocs: bool
) -> dict[Path, str]:
    """llvm-objdump-19 -d on all ``paths`` with these options, its output split per file."""
    args = ["--print-imm-hex" if imm_hex else "--no-print-imm-hex"]
    if mcpu:
        args.append(f"--mcpu={mcpu}")
    if relocs:
        args.append("-r")
    return llvm_objdump_each(paths, *args)


def llvm_objdump_each(paths: list[Path], *flags: str) -> dict[Path, str]:
    """``llvm-objdump-19 -d FLAGS`` on all ``paths`` (one run per byte order, since given
    objects of both it decodes all of them with the first one's byte order), its output
    split per file: what it prints for each file alone."""
    args = ["llvm-objdump-19", "-d", *flags]
    result: dict[Path, str] = {}
    for big in (False, True):
        group = [str(p) for p in paths if (p.read_bytes()[5] == 2) == big]
        if not group:
            continue
        out = subprocess.run([*args, *group], check=True, capture_output=True, text=True).stdout
        starts = [out.index(f"\n{p}:\tfile format") for p in group]
        ends = [*starts[1:], len(out)]
        result.update({Path(p): out[s:e] for p, s, e in zip(group, starts, ends, strict=True)})
    return result


def readobj_relocations(path: Path) -> dict[str, list[tuple[int, str, str]]]:
    """(offset, type, symbol) relocations by the section they apply to, from llvm-readobj-19
    (``.rel.text`` -> ``.text``, ``.relxdp`` -> ``xdp``: REL sections prefix ``.rel``)."""
    out = subprocess.run(
        ["llvm-readobj-19", "-r", str(path)], check=True, capture_output=True, text=True
    ).stdout
    rels: dict[str, list[tuple[int, str, str]]] = {}
    current: list[tuple[int, str, str]] = []
    for line in out.splitlines():
        if m := re.match(r"\s*Section \((\d+)\) (\S+) \{", line):
            current = rels.setdefault(m.group(2)[len(".rel") :], [])
        elif m := re.match(r"\s*(0x[0-9A-F]+) (R_BPF_\w+) (\S+)", line):
            current.append((int(m.group(1), 16), m.group(2), m.group(3)))
    return rels


def verifier_log(insns: bytes, prog_type: int = 1) -> str:
    """Load ``insns`` (as a socket filter by default) with log_level 2 through a raw bpf()
    call (not bpfkit's); return the verifier's log."""
    libc = ctypes.CDLL(None, use_errno=True)
    ibuf = ctypes.create_string_buffer(insns)
    lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(1 << 20)
    # union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, log_level,
    # log_size, log_buf.
    attr = struct.pack(
        "=IIQQIIQ",
        prog_type,
        len(insns) // 8,
        ctypes.addressof(ibuf),
        ctypes.addressof(lic),
        2,
        len(log),
        ctypes.addressof(log),
    )
    abuf = ctypes.create_string_buffer(attr + bytes(128))
    nr = {"x86_64": 321, "aarch64": 280}[os.uname().machine]
    fd = libc.syscall(nr, 5, abuf, len(attr) + 128)
    if fd >= 0:
        os.close(fd)
    return log.value.decode()


_nobody_tree: Path | None = None


def as_nobody(*args: str, setpriv: tuple[str, ...] = ()) -> tuple[list[str], dict[str, str]]:
    """A command running ``python -s ARGS`` as the unprivileged user nobody, and its env.

    The checkout and its .venv may sit where nobody cannot read (a clone under /root, whose
    mode is 0700): bpfkit and the libraries it imports are copied once per process into a
    world-readable directory, put on PYTHONPATH for the system interpreter the venv uses."""
    global _nobody_tree
    import atexit
    import importlib.util
    import shutil
    import sys
    import tempfile

    if _nobody_tree is None:
        tree = Path(tempfile.mkdtemp(prefix="bpfkit-nobody-"))
        atexit.register(shutil.rmtree, tree, True)
        skip = shutil.ignore_patterns("__pycache__")
        shutil.copytree(ROOT / "src" / "bpfkit", tree / "bpfkit", ignore=skip)
        for name in ("elftools", "rich", "pygments", "markdown_it", "mdurl", "typing_extensions"):
            spec = importlib.util.find_spec(name)
            if spec is None or spec.origin is None:
                continue
            origin = Path(spec.origin)
            if spec.submodule_search_locations:
                shutil.copytree(origin.parent, tree / name, ignore=skip)
            else:
                shutil.copy(origin, tree / origin.name)
        for p in [tree, *tree.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        _nobody_tree = tree
    env = {
        **os.environ,
        "PYTHONPATH": str(_nobody_tree),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
    }
    python = os.path.realpath(sys.executable)
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *setpriv]
    return [*cmd, python, "-s", *args], env


_EM_BPF = 247


def _is_bpf_elf(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return False
    machine = int.from_bytes(head[18:20], "big" if head[5] == 2 else "little")
    return machine == _EM_BPF


def realworld_objects() -> list[Path]:
    """The BPF objects of Debian's xdp-tools, libxdp1 and xdp-tests, downloaded once
    (``apt-get download``, only when probe "xdp-objects" said the archive is reachable)
    into probes.realworld_cache() and unpacked with ``dpkg-deb -x``."""
    cache = Path(probes.realworld_cache())
    cache.mkdir(parents=True, exist_ok=True)
    # Several test runs may share the cache: one fetches and unpacks at a time.
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [p for p in probes.REALWORLD_PACKAGES if not list(cache.glob(f"{p}_*.deb"))]
        if missing:
            subprocess.run(
                ["apt-get", "download", *missing], cwd=cache, check=True, capture_output=True
            )
        tree = cache / "ex"
        for deb in sorted(cache.glob("*.deb")):
            stamp = tree / f".{deb.name}.done"
            if not stamp.exists():
                tree.mkdir(exist_ok=True)
                subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
                stamp.touch()
    found = sorted(p for p in tree.rglob("*.o") if p.is_file() and _is_bpf_elf(p))
    assert len(found) >= 10, f"expected the xdp-tools BPF objects under {tree}"
    return found


USDT_DATA = TESTS / "data" / "usdt"


def sdt_binary(out: Path, *flags: str) -> Path:
    """Build tests/data/usdt's probe binary (probes.c + tick.c, sys/sdt.h probes) with gcc
    and ``flags`` (``-O2``, ``-O0 -no-pie``, ...) at ``out``."""
    subprocess.run(
        [
            "gcc",
            *flags,
            "-g",
            "-o",
            str(out),
            str(USDT_DATA / "probes.c"),
            str(USDT_DATA / "tick.c"),
        ],
        check=True,
        capture_output=True,
    )
    return out


def fails(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``bpfkit ARGS`` in process; assert it failed with exit status 1 and one
    ``bpfkit: error:`` line, no traceback; return that line."""
    from bpfkit.cli.main import main

    capsys.readouterr()
    assert main(list(args)) == 1
    err = capsys.readouterr().err
    assert err.startswith("bpfkit: error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    return err


def llvm_mc_x86(code: bytes) -> list[str]:
    """llvm-mc-19's disassembly of x86-64 ``code``: one text per instruction (without the
    ``# imm = 0x...`` comments its assembly printer adds; bpftool gets none)."""
    out = subprocess.run(
        ["llvm-mc-19", "--disassemble", "-triple=x86_64"],
        input=" ".join(f"0x{b:02x}" for b in code),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [ln for ln in out.splitlines() if ln.startswith("\t") and ln.strip() != ".text"]
    return [re.sub(r"\s+# .*$", "", ln) for ln in lines]
