"""The bpftool command set of the CLI (``prog show|list|pin``, ``map
list|show|dump|lookup|update|delete|pin``) against bpftool itself, on maps and a program
this module loads: same ids, same fields, same JSON keys and values; and the errors a user
hits (no such id, a key of the wrong length, no privileges) as one bpfkit message, exit 1."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bpfkit.cli.main import main
from bpfkit.kernel import pins
from bpfkit.kernel.collection import Collection, load_collection
from bpfkit.obj import read_object
from helpers import TESTS, as_nobody, clang_bpf, fails, no_leaked_fds

pytestmark = pytest.mark.requires("bpf", "bpftool", "clang19")

SRC = TESTS / "data" / "bpftool" / "maps.c"
PAIR = (5).to_bytes(4, "little") + (-2).to_bytes(4, "little", signed=True) + b"ab\0\0"


@pytest.fixture(scope="module")
def coll(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collection]:
    obj = clang_bpf(SRC, tmp_path_factory.mktemp("bpftool") / "maps.o")
    with load_collection(read_object(str(obj))) as c:
        c.maps["bk_pairs"][1] = PAIR
        c.maps["bk_pairs"][9] = bytes(12)
        c.maps["bk_slots"][2] = 7
        c.maps["bk_percpu"][1] = (3).to_bytes(4, "little")
        yield c


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    with no_leaked_fds():
        yield


def bpftool(*args: str) -> Any:
    out = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def bpfkit(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 0
    return capsys.readouterr().out


def bpfkit_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    return json.loads(bpfkit(capsys, *args, "--json"))


def _same_prog(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    # loaded_at is computed from two clocks read at slightly different times.
    assert abs(mine.pop("loaded_at") - theirs.pop("loaded_at")) <= 1
    theirs.pop("pids", None)  # bpftool built with skeletons names the holders
    assert mine == theirs


def by_id(out: Any, obj_id: int) -> dict[str, Any]:
    """The record of ``obj_id`` in the answer to a ``name NAME`` query (an object, or a list
    when somebody else's test has loaded the same object too)."""
    records = out if isinstance(out, list) else [out]
    (rec,) = [r for r in records if r["id"] == obj_id]
    return dict(rec)


def ids(coll: Collection) -> tuple[int, dict[str, int]]:
    return coll.programs["bk_cli_prog"].info().id, {
        name: m.info().id for name, m in coll.maps.items()
    }


def test_prog_show_by_id_name_and_pin_equals_bpftool(
    coll: Collection, capsys: pytest.CaptureFixture[str]
) -> None:
    pid, _ = ids(coll)
    theirs = bpftool("prog", "show", "id", str(pid))
    assert set(theirs) >= {"id", "type", "name", "tag", "bytes_xlated", "map_ids", "btf_id"}
    _same_prog(bpfkit_json(capsys, "prog", "show", "id", str(pid)), dict(theirs))
    _same_prog(by_id(bpfkit_json(capsys, "prog", "show", "name", "bk_cli_prog"), pid), dict(theirs))
    listed = [r for r in bpfkit_json(capsys, "prog", "list") if r["id"] == pid]
    assert len(listed) == 1
    _same_prog(listed[0], dict(theirs))
    path = os.path.join(pins.ensure_bpffs(), f"bpfkit_test_prog_pin_{os.getpid()}")
    try:
        assert path in bpfkit(capsys, "prog", "pin", "id", str(pid), path)
        _same_prog(bpfkit_json(capsys, "prog", "show", "pinned", path), dict(theirs))
        assert bpftool("prog", "show", "pinned", path)["id"] == pid
    finally:
        if os.path.exists(path):
            os.unlink(path)
    text = bpfkit(capsys, "prog", "show", "id", str(pid))
    assert str(pid) in text and theirs["tag"] in text and "bk_cli_prog" in text


def test_long_program_name_is_btfs_as_in_bpftool(
    coll: Collection, capsys: pytest.CaptureFixture[str]
) -> None:
    full = "bk_cli_program_with_a_long_name"
    pid = coll.programs[full].info().id
    assert coll.programs[full].info().name == full[:15]  # what the kernel keeps
    theirs = bpftool("prog", "show", "id", str(pid))
    assert theirs["name"] == full
    _same_prog(bpfkit_json(capsys, "prog", "show", "id", str(pid)), dict(theirs))
    _same_prog(by_id(bpfkit_json(capsys, "prog", "show", "name", full), pid), dict(theirs))
    assert by_id(bpftool("prog", "show", "name", full), pid)["id"] == pid


def test_unnamed_program_and_map_show_as_bpftool(capsys: pytest.CaptureFixture[str]) -> None:
    # bpftool leaves the name out (JSON) and the "name" word out (text) of nameless objects.
    from bpfkit.isa.insn import Insn
    from bpfkit.kernel.maps import create_map
    from bpfkit.kernel.program import load_program

    with (
        load_program([Insn(0xB7), Insn(0x95)], "socket_filter") as prog,
        create_map("array", 4, 4, 1) as m,
    ):
        pid, mid = str(prog.info().id), str(m.info().id)
        theirs = bpftool("prog", "show", "id", pid)
        assert "name" not in theirs
        _same_prog(bpfkit_json(capsys, "prog", "show", "id", pid), dict(theirs))
        their_map = bpftool("map", "show", "id", mid)
        their_map.pop("pids", None)
        assert "name" not in their_map
        assert bpfkit_json(capsys, "map", "show", "id", mid) == their_map
        text = subprocess.run(
            ["bpftool", "map", "show", "id", mid], capture_output=True, text=True, check=True
        ).stdout
        assert bpfkit(capsys, "map", "show", "id", mid) == text


def test_map_show_and_list_equal_bpftool(
    coll: Collection, capsys: pytest.CaptureFixture[str]
) -> None:
    _, mids = ids(coll)
    # A program array (its owner's type, "owner jited") and the frozen .rodata map
    # (bpftool puts "frozen" on the btf_id line) besides the plain maps.
    listed = {r["id"]: r for r in bpfkit_json(capsys, "map", "list")}
    plains = []
    for name in ("bk_pairs", "bk_slots", "bk_percpu", "bk_jumps", ".rodata"):
        mid = str(mids[name])
        theirs = bpftool("map", "show", "id", mid)
        theirs.pop("pids", None)
        assert bpfkit_json(capsys, "map", "show", "id", mid) == theirs
        kname = theirs["name"]
        assert by_id(bpfkit_json(capsys, "map", "show", "name", kname), mids[name]) == theirs
        assert listed[mids[name]] == theirs
        plain = subprocess.run(
            ["bpftool", "map", "show", "id", mid], capture_output=True, text=True, check=True
        ).stdout
        assert bpfkit(capsys, "map", "show", "id", mid) == plain
        plains.append(plain)
    assert "\towner_prog_type socket_filter  owner jited\n" in plains[3]
    assert plains[4].endswith("frozen\n")


@pytest.mark.parametrize("name", ["bk_pairs", "bk_slots", "bk_percpu"])
def test_map_dump_json_equals_bpftool(
    coll: Collection, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    mid = str(ids(coll)[1][name])
    theirs = bpftool("map", "dump", "id", mid)
    assert all("formatted" in e for e in theirs)  # the maps carry BTF
    mine = bpfkit_json(capsys, "map", "dump", "id", mid)
    key = lambda e: e["key"]  # noqa: E731 - hash order is the kernel's, the same for both
    assert sorted(mine, key=key) == sorted(theirs, key=key)


def test_prog_array_dump_lists_program_ids_as_bpftool(
    coll: Collection, capsys: pytest.CaptureFixture[str]
) -> None:
    jumps = coll.maps["bk_jumps"]
    mid = str(jumps.info().id)
    target = coll.programs["bk_cli_program_with_a_long_name"]
    assert bpfkit_json(capsys, "map", "dump", "id", mid) == bpftool("map", "dump", "id", mid) == []
    jumps.put((1).to_bytes(4, "little"), target.fd.to_bytes(4, "little"))
    try:
        theirs = bpftool("map", "dump", "id", mid)
        assert theirs[0]["formatted"] == {"key": 1, "value": target.info().id}
        assert bpfkit_json(capsys, "map", "dump", "id", mid) == theirs
    finally:
        jumps.delete((1).to_bytes(4, "little"))


def test_map_dump_text_is_typed_by_the_kernels_btf(
    coll: Collection, capsys: pytest.CaptureFixture[str]
) -> None:
    mids = ids(coll)[1]
    pairs = bpfkit(capsys, "map", "dump", "id", str(mids["bk_pairs"]))
    assert pairs.splitlines()[0] == "map bk_pairs (hash): 2 entries"
    assert '  1: {a: 5, b: -2, tag: "ab"}' in pairs.splitlines()
    slots = bpfkit(capsys, "map", "dump", "id", str(mids["bk_slots"])).splitlines()
    assert slots == [
        "map bk_slots (array): 8 slots",
        "  [0..1]: 0 (2 zero slots)",
        "  [2]: 7",
        "  [3..7]: 0 (5 zero slots)",
    ]


def test_lookup_update_delete_agree_with_bpftool(
    coll: Collection, capsys: pytest.CaptureFixture[str]
) -> None:
    mid = str(ids(coll)[1]["bk_pairs"])
    key = ["key", "1", "0", "0", "0"]
    assert bpfkit_json(capsys, "map", "lookup", "id", mid, *key) == bpftool(
        "map", "lookup", "id", mid, *key
    )
    value = ["value", "hex", "2a", "0", "0", "0", "ff", "ff", "ff", "ff", "78", "79", "7a", "0"]
    bpfkit(capsys, "map", "update", "id", mid, "key", "hex", "20", "0", "0", "0", *value)
    got = bpftool("map", "lookup", "id", mid, "key", "32", "0", "0", "0")
    assert got["formatted"] == {"key": 32, "value": {"a": 42, "b": -1, "tag": "xyz"}}
    assert bpfkit(capsys, "map", "lookup", "id", mid, "key", "32", "0", "0", "0") == (
        'key: 32  value: {a: 42, b: -1, tag: "xyz"}\n'
    )
    err = fails(capsys, "map", "update", "id", mid, "key", "32", "0", "0", "0", *value, "noexist")
    assert "exists" in err
    bpfkit(capsys, "map", "delete", "id", mid, "key", "0x20", "0", "0", "0")
    gone = subprocess.run(
        ["bpftool", "map", "lookup", "id", mid, "key", "32", "0", "0", "0"], capture_output=True
    )
    assert gone.returncode != 0
    assert "no entry" in fails(capsys, "map", "lookup", "id", mid, "key", "32", "0", "0", "0")


def test_percpu_update_writes_every_cpu(
    coll: Collection, capsys: pytest.CaptureFixture[str]
) -> None:
    mid = str(ids(coll)[1]["bk_percpu"])
    bpfkit(
        capsys, "map", "update", "id", mid, "key", "0", "0", "0", "0", "value", "9", "0", "0", "0"
    )
    theirs = bpftool("map", "lookup", "id", mid, "key", "0", "0", "0", "0")
    assert {v["value"] for v in theirs["formatted"]["values"]} == {9}
    assert bpfkit_json(capsys, "map", "lookup", "id", mid, "key", "0", "0", "0", "0") == theirs


def test_map_pin(coll: Collection, capsys: pytest.CaptureFixture[str]) -> None:
    mid = ids(coll)[1]["bk_slots"]
    path = os.path.join(pins.ensure_bpffs(), f"bpfkit_test_map_pin_{os.getpid()}")
    try:
        bpfkit(capsys, "map", "pin", "id", str(mid), path)
        assert bpftool("map", "show", "pinned", path)["id"] == mid
        assert bpfkit_json(capsys, "map", "show", "pinned", path)["id"] == mid
        assert "exists" in fails(capsys, "map", "pin", "id", str(mid), path)
        assert "is a pinned map, not a program" in fails(capsys, "prog", "show", "pinned", path)
        assert "is a pinned map, not a link" in fails(capsys, "link", "show", "pinned", path)
    finally:
        if os.path.exists(path):
            os.unlink(path)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["map", "show", "id", "2147483000"], "no map with that id"),
        (["map", "dump", "id", "0"], "out of range"),
        (["prog", "show", "id", "2147483000"], "no program with that id"),
        (["map", "dump", "pinned", "/sys/fs/bpf/bpfkit_no_such_pin"], "nothing is pinned"),
        (["map", "show", "name", "bk_no_such_map"], "no map called"),
        (["map", "show", "ident", "3"], "expected id N | pinned PATH | name NAME"),
        (["map", "dump", "id", "x"], "not a number"),
        (["map", "lookup", "name", "bk_pairs", "key", "1", "0", "0"], "key needs 4 bytes, got 3"),
        (["map", "lookup", "name", "bk_pairs", "key", "1", "0", "0", "0", "0"], "after the key"),
        (["map", "lookup", "name", "bk_pairs", "key", "256", "0", "0", "0"], "not in 0..255"),
        (
            ["map", "update", "name", "bk_slots", "key", "0", "0", "0", "0", "value", "1"],
            "value needs 8 bytes",
        ),
        (
            ["map", "update", "name", "bk_slots", "key", "0", "0", "0", "0"]
            + ["value", "1", "0", "0", "0", "0", "0", "0", "0", "sometimes"],
            "any|exist|noexist",
        ),
        (["map", "delete", "name", "bk_slots", "key", "0", "0", "0", "0"], "array maps"),
        (["map", "lookup", "name", "bk_pairs"], "expected `key"),
    ],
)
def test_errors_are_one_message(
    coll: Collection, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    # `name bk_x` stands for the id of this module's map (names may be loaded twice).
    mids = ids(coll)[1]
    words = []
    for i, word in enumerate(argv):
        if word == "name" and argv[i + 1] in mids:
            word = "id"
        words.append(str(mids[word]) if word in mids else word)
    assert says in fails(capsys, *words)


def test_unprivileged_user_gets_one_message(coll: Collection, tmp_path: Path) -> None:
    mid = str(ids(coll)[1]["bk_slots"])
    for argv in (["map", "dump", "id", mid], ["prog", "show"]):
        cmd, env = as_nobody("-m", "bpfkit", *argv, setpriv=("--inh-caps=-all",))
        r = subprocess.run(cmd, capture_output=True, text=True, cwd="/", env=env)
        assert r.returncode == 1, r.stderr
        assert r.stderr.startswith("bpfkit: error: ") and "Traceback" not in r.stderr
        assert "privilege" in r.stderr.lower() or "root" in r.stderr.lower()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import bpfkit

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"bpfkit {bpfkit.__version__}\n"


def _cgroup2() -> str | None:
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if parts[2] == "cgroup2":
                return parts[1]
    return None


@pytest.fixture
def linked(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A raw tracepoint link, a perf_event link and (where cgroup v2 is mounted) a cgroup
    link on a cgroup made for the test: the ids of the programs linked."""
    from bpfkit.kernel.attach import AttachPoint, parse_spec, plan
    from bpfkit.kernel.links import attach
    from bpfkit.syscalls import Cmd, Fd, attrs, bpf
    from bpfkit.uapi import AttachType

    obj = clang_bpf(TESTS / "data" / "bpftool" / "links.c", tmp_path / "links.o")
    tp = plan(parse_spec("tracepoint:syscalls:sys_enter_getpid")).point
    root = _cgroup2()
    cg = os.path.join(root, f"bpfkit_test_link_{os.getpid()}") if root else None
    with (
        load_collection(read_object(str(obj))) as c,
        attach(c.programs["bk_link_raw"], AttachPoint("raw_tracepoint", "sys_enter")),
        attach(c.programs["bk_link_tp"], tp),
    ):
        progs = {name: p.info().id for name, p in c.programs.items()}
        if cg is None:
            del progs["bk_link_cg"]
            yield progs
            return
        os.mkdir(cg)
        try:
            cg_fd = os.open(cg, os.O_RDONLY | os.O_DIRECTORY)
            try:
                attr = attrs.LinkCreateAttr(
                    prog_fd=c.programs["bk_link_cg"].fd,
                    target_fd=cg_fd,
                    attach_type=AttachType.CGROUP_INET_INGRESS,
                )
                with Fd(bpf(Cmd.LINK_CREATE, attr, "linking to the test cgroup"), "link"):
                    yield progs
            finally:
                os.close(cg_fd)
        finally:
            os.rmdir(cg)


def _my_links(records: list[dict[str, Any]], progs: dict[str, int]) -> list[dict[str, Any]]:
    return sorted(
        (r for r in records if r["prog_id"] in progs.values()), key=lambda r: r["prog_id"]
    )


def test_link_list_show_pin_detach_agree_with_bpftool(
    linked: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = _my_links(bpftool("link", "list"), linked)
    for r in theirs:
        r.pop("pids", None)
    by_type = {r["type"]: r for r in theirs}
    assert by_type["raw_tracepoint"]["tp_name"] == "sys_enter"
    assert "perf_event" in by_type
    assert _my_links(bpfkit_json(capsys, "link", "list"), linked) == theirs
    for r in theirs:
        assert bpfkit_json(capsys, "link", "show", "id", str(r["id"])) == r
        text = subprocess.run(
            ["bpftool", "link", "show", "id", str(r["id"])],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert bpfkit(capsys, "link", "show", "id", str(r["id"])) == text
    raw = str(by_type["raw_tracepoint"]["id"])
    assert "cannot be detached" in fails(capsys, "link", "detach", "id", raw)
    assert "no link with that id" in fails(capsys, "link", "show", "id", "2147483000")
    assert "expected id N | pinned PATH" in fails(capsys, "link", "show", "name", "x")


@pytest.mark.requires("netns")
def test_xdp_link_shows_bpftools_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # bpftool 7.1 shows an XDP link's id, type and program only (no ifindex): on a veth
    # pair made for the test.
    from bpfkit.kernel.attach import xdp_point
    from bpfkit.kernel.links import attach

    obj = clang_bpf(TESTS / "data" / "bpftool" / "links.c", tmp_path / "links.o")
    host, peer = f"bkxl{os.getpid() % 100000}", f"bkxp{os.getpid() % 100000}"
    subprocess.run(
        ["ip", "link", "add", host, "type", "veth", "peer", "name", peer],
        check=True,
        capture_output=True,
    )
    try:
        with (
            load_collection(read_object(str(obj))) as c,
            attach(c.programs["bk_link_xdp"], xdp_point(host, "generic")),
        ):
            pid = c.programs["bk_link_xdp"].info().id
            (theirs,) = [r for r in bpftool("link", "list") if r["prog_id"] == pid]
            theirs.pop("pids", None)
            assert theirs["type"] == "xdp"
            lid = str(theirs["id"])
            assert bpfkit_json(capsys, "link", "show", "id", lid) == theirs
            text = subprocess.run(
                ["bpftool", "link", "show", "id", lid], capture_output=True, text=True, check=True
            ).stdout
            assert bpfkit(capsys, "link", "show", "id", lid) == text
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)


@pytest.mark.requires("cgroup2")
def test_cgroup_link_pin_and_detach(
    linked: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = _my_links(bpftool("link", "list"), linked)
    (cg,) = [r for r in theirs if r["type"] == "cgroup"]
    cg.pop("pids", None)
    assert bpfkit_json(capsys, "link", "show", "id", str(cg["id"])) == cg
    assert cg["attach_type"] == "cgroup_inet_ingress" and cg["cgroup_id"] > 0
    path = os.path.join(pins.ensure_bpffs(), f"bpfkit_test_link_pin_{os.getpid()}")
    try:
        bpfkit(capsys, "link", "pin", "id", str(cg["id"]), path)
        assert bpftool("link", "show", "pinned", path)["id"] == cg["id"]
        bpfkit(capsys, "link", "detach", "pinned", path)
        # Detached: the link lives on (pinned) but belongs to no cgroup any more.
        after = bpftool("link", "show", "pinned", path)
        after.pop("pids", None)
        assert after["id"] == cg["id"] and after["cgroup_id"] == 0
        assert bpfkit_json(capsys, "link", "show", "pinned", path) == after
    finally:
        if os.path.exists(path):
            os.unlink(path)


def test_prog_dump_xlated_equals_bpftool(
    coll: Collection, capsys: pytest.CaptureFixture[str]
) -> None:
    # Instructions, prototype and source lines as bpftool prints them (helper calls named
    # by the kernel function they became, maps by id); tests/cli/test_prog_xlated.py
    # compares every mode on more programs.
    pid = str(ids(coll)[0])
    text = subprocess.run(
        ["bpftool", "prog", "dump", "xlated", "id", pid], capture_output=True, text=True, check=True
    ).stdout
    insns = [ln for ln in text.splitlines() if not ln.startswith(";") and not ln.endswith(":")]
    assert any("map[id:" in ln for ln in insns) and any("call " in ln for ln in insns)
    assert bpfkit(capsys, "prog", "dump", "xlated", "id", pid) == text
    theirs = bpftool("prog", "dump", "xlated", "id", pid)
    assert bpfkit_json(capsys, "prog", "dump", "xlated", "id", pid) == theirs
    llvm = bpfkit(capsys, "prog", "dump", "xlated", "id", pid, "--llvm").splitlines()
    assert len(llvm) == len(text.splitlines()) and llvm[-1].endswith(": exit")
    assert "no program with that id" in fails(capsys, "prog", "dump", "xlated", "id", "2147483000")


def test_feature_probe_agrees_with_bpftool(capsys: pytest.CaptureFixture[str]) -> None:
    from bpfkit.errors import KernelError
    from bpfkit.isa.insn import Insn
    from bpfkit.kernel.program import load_program

    theirs = bpftool("feature", "probe", "kernel")
    mine = bpfkit_json(capsys, "feature", "probe")
    assert list(mine) == list(theirs)  # the same sections in the same order
    for section in ("system_config", "syscall_config", "misc"):
        assert mine[section] == theirs[section], section
    assert theirs["system_config"]["CONFIG_BPF_SYSCALL"] == "y"  # a config was read
    for section in ("program_types", "map_types"):
        # bpfkit also lists the types libbpf 1.1 (bpftool's) does not know.
        assert {k: mine[section].get(k) for k in theirs[section]} == theirs[section], section
    # Helpers: bpftool v7.1 (Debian 12) predates the verifier's "program of this type cannot
    # use helper" wording, so on newer kernels it lists every helper it knows for every
    # type.  bpfkit's lists must be within bpftool's, empty where bpftool's are, and agree
    # with the verifier itself on a helper a socket filter may not call.
    known = set().union(*map(set, theirs["helpers"].values()))
    for key, names in theirs["helpers"].items():
        assert set(mine["helpers"][key]) & known <= set(names), key
        if not names:
            assert mine["helpers"][key] == [], key
    call_probe_read = [Insn(0x85, imm=4), Insn(0xB7), Insn(0x95)]
    with pytest.raises(KernelError, match="cannot use helper|unknown func|invalid func"):
        load_program(call_probe_read, "socket_filter").close()
    assert "bpf_probe_read" not in mine["helpers"]["socket_filter_available_helpers"]
    assert "bpf_probe_read" in mine["helpers"]["kprobe_available_helpers"]
    assert "bpf_map_lookup_elem" in mine["helpers"]["socket_filter_available_helpers"]
    # bpftool tries the helpers that write to the kernel log only in "full" mode.
    assert "bpf_trace_printk" not in mine["helpers"]["kprobe_available_helpers"]
    full = bpfkit_json(capsys, "feature", "probe", "kernel", "full")
    assert "bpf_trace_printk" in full["helpers"]["kprobe_available_helpers"]
    # The text: bpftool's lines but for the helper lists and the types it does not know.
    their_text = subprocess.run(
        ["bpftool", "feature", "probe", "kernel"], capture_output=True, text=True, check=True
    ).stdout
    unknown = {k.removeprefix("have_").removesuffix("_prog_type") for k in mine["program_types"]}
    unknown -= {k.removeprefix("have_").removesuffix("_prog_type") for k in theirs["program_types"]}
    unknown_maps = set(mine["map_types"]) - set(theirs["map_types"])

    def comparable(text: str) -> list[str]:
        keep = []
        for line in text.splitlines():
            words = line.split()
            if line.startswith("\t- ") or (words and words[-1].rstrip(":") in unknown):
                continue
            if line.startswith("eBPF program_type ") and words[2] in unknown:
                continue
            if line.startswith("eBPF map_type ") and f"have_{words[2]}_map_type" in unknown_maps:
                continue
            keep.append(line)
        return keep

    text = bpfkit(capsys, "feature", "probe")
    assert comparable(text) == comparable(their_text)
    assert "eBPF program_type socket_filter is available" in text
    assert "CONFIG_BPF_SYSCALL is set to y" in text and "ISA extension v3 is available" in text
    assert "unexpected 'macros'" in fails(capsys, "feature", "probe", "macros")


def test_prog_run_agrees_with_bpftool(
    coll: Collection, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The socket filter returns bk_pairs[0].a and counts its runs in bk_slots[0].
    pid = str(ids(coll)[0])
    packet = tmp_path / "pkt"
    packet.write_bytes(bytes(64))
    pairs, slots = coll.maps["bk_pairs"], coll.maps["bk_slots"].typed(key=int, value=int)
    pairs[0] = (77).to_bytes(4, "little") + bytes(8)
    try:
        theirs = bpftool("prog", "run", "id", pid, "data_in", str(packet), "repeat", "3")
        assert theirs["retval"] == 77
        mine = bpfkit_json(capsys, "prog", "run", "id", pid, "data_in", str(packet), "repeat", "5")
        assert set(mine) == set(theirs) and mine["retval"] == 77
        assert slots[0] == 8  # bpftool's 3 runs and bpfkit's 5
        out = tmp_path / "out"
        text = bpfkit(
            capsys, "prog", "run", "id", pid, "data_in", str(packet), "data_out", str(out)
        )
        assert text.startswith("Return value: 77, duration: ") and text.endswith("ns\n")
        assert out.read_bytes() == bytes(64)
        assert "give the input" in fails(capsys, "prog", "run", "id", pid)
        assert "repeat 0 is out of range" in fails(
            capsys, "prog", "run", "id", pid, "data_in", str(packet), "repeat", "0"
        )
        assert "data_in /nonexistent" in fails(
            capsys, "prog", "run", "id", pid, "data_in", "/nonexistent"
        )
    finally:
        del pairs[0]
        slots[0] = 0


def test_map_dump_hist(coll: Collection, capsys: pytest.CaptureFixture[str]) -> None:
    # A map whose keys are slots and values counts (bk_slots: array of u64; bk_percpu: per-
    # CPU u32, summed) drawn by the one histogram drawer, bcc's format.
    from bpfkit.kernel.maps import possible_cpus
    from bpfkit.text import linear_hist, log2_hist

    m = coll.maps["bk_slots"].typed(key=int, value=int)
    counts = {1: 3, 2: 7, 5: 40}
    mid = str(m.info().id)
    try:
        for slot, n in counts.items():
            m[slot] = n
        got = bpfkit(capsys, "map", "dump", "id", mid, "--hist")
        assert got == log2_hist(counts, "value")
        assert "|****************************************|" in got  # slot 5: the peak
        linear = bpfkit(capsys, "map", "dump", "id", mid, "--hist", "linear", "--label", "n")
        assert linear == linear_hist(counts, "n")
    finally:
        for slot in counts:
            m[slot] = 0
        m[2] = 7
    pid = str(ids(coll)[1]["bk_percpu"])
    for key, value in (("0", "9"), ("1", "2")):
        bpfkit(
            capsys,
            "map",
            "update",
            "id",
            pid,
            "key",
            key,
            "0",
            "0",
            "0",
            "value",
            value,
            "0",
            "0",
            "0",
        )
    got = bpfkit(capsys, "map", "dump", "id", pid, "--hist", "linear")
    assert got == linear_hist({0: 9 * possible_cpus(), 1: 2 * possible_cpus()}, "value")
    err = fails(capsys, "map", "dump", "id", str(ids(coll)[1]["bk_pairs"]), "--hist")
    assert "--hist needs integer slots" in err


@pytest.mark.requires("bpf")
def test_options_between_the_trailing_words(capsys: pytest.CaptureFixture[str]) -> None:
    """`prog dump jited id N --json linum`: the words after an option still belong to the
    command (as bpftool reads them); an unknown option is still refused."""
    assert main(["prog", "dump", "jited", "id", "2147483647", "--json", "linum"]) == 1
    assert "no program with that id" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["prog", "dump", "jited", "id", "2147483647", "--bogus", "linum"])
    assert e.value.code == 2
    assert "unrecognized arguments: --bogus linum" in capsys.readouterr().err
