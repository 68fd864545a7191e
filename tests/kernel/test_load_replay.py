"""A recorded load replayed (bpfkit/kernel/replay.py): the kernel ends up with the same
programs and maps as the whole road made them, `bpfkit load` replays the second time
without importing the object reader, and anything that changed takes the whole road."""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import probes
from bpfkit.kernel import replay
from bpfkit.kernel.collection import Collection, load_collection
from bpfkit.kernel.info import map_info, prog_info
from bpfkit.kernel.maps import Map
from bpfkit.kernel.program import Program
from bpfkit.obj import read_object
from bpfkit.syscalls import Fd, attrs, bpf_errno
from helpers import ROOT, clang_bpf, no_leaked_fds

pytestmark = pytest.mark.requires("bpf")

HELLO = ROOT / "examples" / "hello" / "hello.o"
PROGS = Path(__file__).parent / "load_progs"
# Objects with BTF, global data (.data, .rodata frozen, .bss, .kconfig), legacy and BTF
# maps, a prog array and maps of maps filled at load, sub-programs, BTF attach targets.
OBJECTS = ("globals", "tail_calls", "legacy_maps", "multi", "externs", "btf_targets")


@pytest.fixture(scope="module")
@probes.needs("clang19")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("replay")
    return {stem: clang_bpf(PROGS / f"{stem}.c", out / f"{stem}.o") for stem in OBJECTS}


def _record(path: Path) -> tuple[Collection, replay.Plan]:
    with replay.Recorder.watching() as rec:
        coll = load_collection(read_object(str(path)))
    assert rec.why is None, rec.why
    plan = rec.plan(
        progs=[(n, p.fd, p.type_name) for n, p in coll.programs.items()],
        maps=[(n, m.fd, m.info().type_name) for n, m in coll.maps.items()],
        notes=list(coll.notes),
    )
    return coll, plan


def _frozen(fd: int) -> bool:
    """A frozen map refuses updates from user space (EPERM)."""
    attr = attrs.MapElemAttr(map_fd=fd)
    info = map_info(fd)
    key, value = ctypes.create_string_buffer(4), ctypes.create_string_buffer(info.value_size)
    attr.key, attr.value = ctypes.addressof(key), ctypes.addressof(value)
    attr.flags = attrs.EXIST
    return bpf_errno(attrs.Cmd.MAP_UPDATE_ELEM, attr)[1] == errno.EPERM


@pytest.mark.parametrize("stem", OBJECTS)
def test_a_replayed_load_makes_what_the_whole_road_made(built: dict[str, Path], stem: str) -> None:
    with no_leaked_fds():
        coll, plan = _record(built[stem])
        with coll:
            fds = replay.replay(plan)
            try:
                assert len(plan["progs"]) == len(coll.programs) > 0
                # Each program uses the maps of its own load, the same ones by name.
                whole_names = {map_info(m.fd).id: n for n, m in coll.maps.items()}
                again_names = {map_info(fds[s]).id: n for n, s, _ in plan["maps"]}
                for name, step, _ in plan["progs"]:
                    whole, again = prog_info(coll.programs[name].fd), prog_info(fds[step])
                    # The tag is the kernel's hash of the instructions (map fds left out).
                    assert (again.name, again.type, again.tag, again.xlated_len) == (
                        whole.name,
                        whole.type,
                        whole.tag,
                        whole.xlated_len,
                    )
                    assert again.id != whole.id
                    assert set(again.map_ids) <= set(again_names)
                    assert sorted(again_names[i] for i in again.map_ids) == sorted(
                        whole_names[i] for i in whole.map_ids
                    )
                    assert (again.btf_id > 0) == (whole.btf_id > 0)
                for name, step, _ in plan["maps"]:
                    m = coll.maps[name]
                    whole_i, again_i = map_info(m.fd), map_info(fds[step])
                    fields = ("name", "type", "key_size", "value_size", "max_entries", "flags")
                    assert [getattr(again_i, f) for f in fields] == [
                        getattr(whole_i, f) for f in fields
                    ]
                    assert (again_i.btf_id > 0) == (whole_i.btf_id > 0)
                    if whole_i.type_name == "array":  # global data: the initial values
                        again_m = Map.from_fd(Fd(os.dup(fds[step])))
                        with again_m:
                            assert dict(again_m.items()) == dict(m.items())
                        assert _frozen(fds[step]) == _frozen(m.fd)
                if stem == "tail_calls":  # the prog array holds the replayed `tail`
                    entry = next(s for n, s, _ in plan["progs"] if n == "entry")
                    prog = Program(Fd(os.dup(fds[entry])), "entry")
                    with prog:
                        assert prog.test_run(bytes(64)).retval == 42
            finally:
                replay.close(fds)


def test_a_refused_replay_closes_what_it_made() -> None:
    with no_leaked_fds():
        coll, plan = _record(HELLO)
        coll.close()
        cmd, attr, ptrs, fds = plan["steps"][-1]
        bad = bytearray(attr)
        bad[0:4] = (0xFFFF).to_bytes(4, sys.byteorder)  # prog_type: none such
        plan["steps"].append((cmd, bytes(bad), ptrs, fds))
        with pytest.raises(replay.ReplayError) as e:
            replay.replay(plan)
        assert e.value.errno == errno.EINVAL


# -- the command line ------------------------------------------------------------------------
@pytest.fixture()
def cache(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {**os.environ, "BPFKIT_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("BPFKIT_NO_CACHE", None)
    yield env


def _load(env: dict[str, str], *args: str, imports: bool = False) -> tuple[str, str]:
    flags = ["-X", "importtime"] if imports else []
    done = subprocess.run(
        [sys.executable, *flags, "-m", "bpfkit", "load", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def _masked(out: str) -> str:
    return re.sub(r"(prog|map) +\d+", r"\1 ID", out)


def _imported(stderr: str) -> set[str]:
    return {line.split("|")[-1].strip() for line in stderr.splitlines() if "import time" in line}


def test_the_second_bpfkit_load_replays_the_first(
    cache: dict[str, str], built: dict[str, Path]
) -> None:
    for path in (HELLO, built["globals"]):
        first, _ = _load(cache, str(path), imports=True)
        second, err = _load(cache, str(path), imports=True)
        assert _masked(second) == _masked(first)
        assert re.search(r"prog +\d+ ", second)
        assert re.findall(r"prog +(\d+)", second) != re.findall(r"prog +(\d+)", first)
        modules = _imported(err)
        assert "bpfkit.kernel.replay" in modules
        # The cheap road: neither the object reader, nor pyelftools, nor the uapi enums.
        assert not {"elftools", "bpfkit.obj", "bpfkit.uapi", "argparse"} & modules


def test_what_changed_takes_the_whole_road(
    cache: dict[str, str], built: dict[str, Path], tmp_path: Path
) -> None:
    obj = tmp_path / "prog.o"
    shutil.copy(HELLO, obj)
    _load(cache, str(obj))
    out, err = _load(cache, str(obj), imports=True)
    assert "kprobe__sys_clone" in out and "elftools" not in _imported(err)
    # Other bytes at the same path: the whole road, which shows the other object.
    shutil.copy(built["globals"], obj)
    out, err = _load(cache, str(obj), imports=True)
    assert "kprobe__sys_clone" not in out and "elftools" in _imported(err)
    assert _masked(out) == _masked(_load(cache, str(built["globals"]))[0]).replace(
        str(built["globals"]), str(obj)
    )
    # Other options: recorded apart.
    name = re.findall(r"prog +\d+ (\w+)", out)[0]
    out, err = _load(cache, str(obj), "--program", name, imports=True)
    assert "elftools" in _imported(err) and out.count("  prog ") == 1


@pytest.mark.parametrize("how", ["--pin", "-v", "BPFKIT_NO_CACHE"])
def test_what_is_not_recorded(cache: dict[str, str], tmp_path: Path, how: str) -> None:
    args = [str(HELLO)]
    if how == "--pin":
        pin = Path("/sys/fs/bpf") / f"bpfkit-replay-{os.getpid()}"
        args += ["--pin", str(pin)]
    elif how == "-v":
        args.append("-v")
    else:
        cache = {**cache, "BPFKIT_NO_CACHE": "1"}
    try:
        _load(cache, *args)
    finally:
        if how == "--pin":
            shutil.rmtree(pin, ignore_errors=True)
    assert not list(Path(cache["BPFKIT_CACHE_DIR"]).glob("load/*"))


def test_a_refused_replay_takes_the_whole_road(
    cache: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _load(cache, str(HELLO))
    [entry] = Path(cache["BPFKIT_CACHE_DIR"]).glob("load/*")
    monkeypatch.setenv("BPFKIT_CACHE_DIR", cache["BPFKIT_CACHE_DIR"])
    key = replay.plan_key(str(HELLO), ((), ()))
    plan = replay.lookup(key, HELLO.read_bytes())
    assert plan is not None
    cmd, attr, ptrs, fds = plan["steps"][-1]
    bad = bytearray(attr)
    bad[0:4] = (0xFFFF).to_bytes(4, sys.byteorder)
    plan["steps"][-1] = (cmd, bytes(bad), ptrs, fds)
    replay.store(key, HELLO.read_bytes(), plan)
    out, err = _load(cache, str(HELLO), imports=True)
    assert "elftools" in _imported(err)  # refused, so the whole road ran
    assert re.search(r"prog +\d+ +kprobe__sys_clone +kprobe", out)
    # ... and recorded the load again: the next one replays.
    out, err = _load(cache, str(HELLO), imports=True)
    assert "elftools" not in _imported(err) and "kprobe__sys_clone" in out
    assert entry.exists()
