"""Loading whole objects into the real kernel: global data, sub-programs, BTF and legacy
maps, verifier errors with source lines, program-type overrides, the CLI commands, and
loading parity with bpftool (Debian's, on libbpf 1.1) over the test corpus."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import probes
from bpfkit.btf import Btf
from bpfkit.cli.main import main
from bpfkit.errors import KernelError, ObjectError, VerifierError
from bpfkit.kernel import info as kinfo
from bpfkit.kernel import pins
from bpfkit.kernel.collection import load_collection
from bpfkit.obj import read_object
from bpfkit.uapi import ProgType
from helpers import clang_bpf, no_leaked_fds

ROOT = Path(__file__).resolve().parents[2]
PROGS = Path(__file__).parent / "load_progs"

pytestmark = pytest.mark.requires("bpf")


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    with no_leaked_fds():
        yield


@pytest.fixture(scope="module")
@probes.needs("clang19")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The C programs of tests/kernel/load_progs compiled with clang-19 (-O2 -g)."""
    return _Built(tmp_path_factory.mktemp("progs"))


class _Built(dict[str, str]):
    """Compiled on first use (a test compiles only what it loads: cheaper on the emulated
    second kernel, where clang runs slowly)."""

    def __init__(self, out: Path) -> None:
        super().__init__()
        self.out = out

    def __missing__(self, stem: str) -> str:
        obj = str(clang_bpf(PROGS / f"{stem}.c", self.out / f"{stem}.o"))
        self[stem] = obj
        return obj


def test_global_data_and_subprograms_run(built: dict[str, str]) -> None:
    obj = read_object(built["globals"])
    with load_collection(obj) as coll:
        assert set(coll.programs) == {"globals", "xdp_len"}
        assert {".data", ".rodata", ".bss", "counts"} <= set(coll.maps)
        assert coll.btf_fd is not None and not coll.notes
        prog = coll.programs["globals"]
        # A socket filter sees the packet after the Ethernet header: skb->len = 64 - 14.
        # plus_one(scale(50)) = 50 * factor(3) + bias(5) + 1
        assert prog.test_run(bytes(64)).retval == 50 * 3 + 5 + 1
        coll.maps[".data"][0] = 10  # global data is a map: change `bias`
        assert prog.test_run(bytes(64)).retval == 50 * 3 + 10 + 1
        assert coll.maps[".bss"].typed(key=int, value=int)[0] == 2  # `calls`
        assert dict(coll.maps["counts"].typed(key=int, value=int).items()) == {1: 2}
        with pytest.raises(KernelError, match="frozen"):
            coll.maps[".rodata"][0] = 7
        xdp = coll.programs["xdp_len"]
        XDP_DROP, XDP_PASS = 1, 2
        assert xdp.test_run(bytes(60)).retval == XDP_PASS
        assert xdp.test_run(bytes(200)).retval == XDP_DROP
        info = prog.info()
        assert info.btf_id > 0  # loaded with the object's BTF
        assert len(info.map_ids) == 4


def test_legacy_maps_and_pre_1_0_section_names(built: dict[str, str]) -> None:
    obj = read_object(built["legacy_maps"])
    with load_collection(obj) as coll:
        assert coll.programs["count_packets"].type == ProgType.SOCKET_FILTER
        assert coll.programs["on_clone"].type == ProgType.KPROBE
        packets = coll.maps["packets"].typed(key=int, value=int)
        for _ in range(3):
            coll.programs["count_packets"].test_run(bytes(64))
        assert packets[0] == 3
        assert coll.maps["by_proto"].info().max_entries == 64


def test_program_type_override(built: dict[str, str]) -> None:
    obj = read_object(built["legacy_maps"])
    with load_collection(obj, programs=["on_clone"], prog_types={"on_clone": "tracepoint"}) as c:
        assert set(c.programs) == {"on_clone"}
        assert c.programs["on_clone"].info().type_name == "tracepoint"


@pytest.mark.guest
def test_verifier_error_shows_message_and_source_lines(built: dict[str, str]) -> None:
    with pytest.raises(VerifierError) as ei:
        load_collection(read_object(built["oob_read"]))
    e = ei.value
    assert "too_far" in str(e)
    assert "R0 max value is outside of the allowed memory range" in str(e)
    assert "invalid access to map value" in e.log
    # line_info from .BTF.ext reached the kernel: the log quotes the source line (newer
    # kernels, not 6.1, also say where it is: "@ oob_read.c:20").
    assert "; return v[skb->len & 0xff];" in e.log
    if " @ " in e.log:
        assert "@ oob_read.c:20" in e.log
    # Nothing of ours stays loaded (other processes may load programs meanwhile: compare
    # by name, which only this object uses).
    assert "too_far" not in {p.name for p in kinfo.list_programs()}


@pytest.mark.guest
def test_kconfig_and_kfunc_externs(built: dict[str, str]) -> None:
    """__kconfig values from this kernel's config (/proc/config.gz here, /boot/config-*
    on Debian's kernel) and kfuncs by BTF id (bpf_iter_num_*: Linux 6.4 and later)."""
    import gzip
    import struct

    from bpfkit.errors import BpfkitError
    from bpfkit.kernel.features import kernel_version

    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            text = f.read()
    except OSError:
        text = Path(f"/boot/config-{os.uname().release}").read_text()
    config = dict(line.split("=", 1) for line in text.splitlines() if line.startswith("CONFIG_"))
    a, b, c = kernel_version()
    if (a, b) < (6, 4):  # no open-coded iterators: the kfunc is named as missing
        with pytest.raises(BpfkitError, match="bpf_iter_num_new"):
            load_collection(read_object(built["externs"])).close()
        return
    with load_collection(read_object(built["externs"])) as coll:
        assert not coll.notes  # the BTF (with .kconfig and .ksyms) loaded
        assert coll.programs["externs"].info().btf_id > 0
        # bpf_iter_num_new/next/destroy are kfuncs: sum(range(10))
        assert coll.programs["externs"].test_run(bytes(64)).retval == 45
        version, hz, has_bpf, missing = struct.unpack("<4Q", coll.maps[".bss"][0])
        assert version == (a << 16) | (b << 8) | min(c, 255)
        assert hz == int(config["CONFIG_HZ"])
        assert has_bpf == (config.get("CONFIG_BPF_SYSCALL") == "y")
        assert missing == 0  # __weak and unknown
        with pytest.raises(KernelError, match="frozen"):
            coll.maps[".kconfig"][0] = bytes(coll.maps[".kconfig"].value_size)


def _data_maps_seen_by_bpftool(maps: dict[str, int]) -> dict[str, tuple[dict, list]]:
    """Map name -> (``bpftool map show``, ``bpftool map dump``), both as JSON, for the maps
    ``maps`` (name -> id) whose name has a dot (global data); ids and sizes of kernel memory
    left out of the first."""
    seen = {}
    for name, map_id in maps.items():
        if "." not in name:
            continue
        show = json.loads(
            subprocess.check_output(["bpftool", "-j", "map", "show", "id", str(map_id)])
        )
        dump = json.loads(
            subprocess.check_output(["bpftool", "-j", "map", "dump", "id", str(map_id)])
        )
        assert show.pop("btf_id") > 0, show  # the map has the object's BTF
        for k in ("id", "bytes_memlock"):
            show.pop(k)
        seen[name] = (show, dump)
    return seen


def _variables(dump: list) -> dict[str, object]:
    """A data map's variables by name as ``bpftool map dump`` formats them (its BTF)."""
    (entry,) = dump
    ((_, variables),) = entry["formatted"]["value"].items()
    return {k: v for var in variables for k, v in var.items()}


def _bpftool_data_maps(path: str) -> tuple[dict[str, tuple[dict, list]], dict[str, int]]:
    """What bpftool shows of the global data maps of ``path`` loaded by ``bpftool prog
    loadall`` (libbpf), and their BTF value type ids."""
    from bpfkit.kernel.maps import Map

    top = os.path.join(pins.ensure_bpffs(), f"bpfkit_datasec_{os.getpid()}")
    os.makedirs(top)
    try:
        subprocess.run(
            ["bpftool", "prog", "loadall", path, f"{top}/p", "pinmaps", f"{top}/m"],
            check=True,
            capture_output=True,
        )
        ids, types = {}, {}
        for pin in os.listdir(f"{top}/m"):
            with Map.from_pin(f"{top}/m/{pin}") as m:
                info = m.info()
                ids[info.name] = info.id
                types[info.name] = info.btf_value_type_id
        return _data_maps_seen_by_bpftool(ids), types
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.requires("bpf", "bpftool")
def test_data_maps_carry_their_datasec_as_libbpf_does(
    built: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """.data/.rodata/.bss/.kconfig maps have the object's BTF with the section's DATASEC as
    value type (key 0): bpftool shows a btf_id and dumps the variables by name, exactly as
    for the same object loaded by bpftool (libbpf).  externs.c (.kconfig) calls kfuncs of
    Linux 6.4."""
    from bpfkit.kernel.features import kernel_version

    for stem in ("globals", "externs") if kernel_version()[:2] >= (6, 4) else ("globals",):
        _check_data_maps(built, stem, capsys)


def _check_data_maps(built: dict[str, str], stem: str, capsys: pytest.CaptureFixture[str]) -> None:
    theirs, their_types = _bpftool_data_maps(built[stem])
    with load_collection(read_object(built[stem])) as coll:
        assert not coll.notes
        infos = {m.info().name: m.info() for m in coll.maps.values()}
        mine = _data_maps_seen_by_bpftool({n: i.id for n, i in infos.items()})
        # bpfkit's own typed view of the same maps agrees
        typed = {sec: coll[sec][0] for sec in (".data", ".rodata", ".bss") if sec in coll.maps}
        # and `bpfkit map dump -j` prints what bpftool does
        for name, (_, dump) in mine.items():
            capsys.readouterr()
            assert main(["map", "dump", "-j", "id", str(infos[name].id)]) == 0
            assert json.loads(capsys.readouterr().out) == dump, name
    assert {n: (i.btf_key_type_id, i.btf_value_type_id) for n, i in infos.items() if "." in n} == {
        n: (0, t) for n, t in their_types.items() if "." in n
    }
    assert sorted(mine) == sorted(theirs) and len(mine) >= 2
    for name in mine:
        assert mine[name][0] == theirs[name][0], name
        assert _variables(mine[name][1]) == _variables(theirs[name][1]), name
    if stem == "globals":
        assert mine == theirs  # same bytes, same formatting
        # the initializers in globals.c
        assert _variables(mine["globals.data"][1]) == {"bias": 5}
        assert _variables(mine["globals.rodata"][1]) == {"factor": 3}
        assert _variables(mine["globals.bss"][1]) == {"calls": 0}
        assert typed == {".data": {"bias": 5}, ".rodata": {"factor": 3}, ".bss": {"calls": 0}}


def test_data_map_refused_with_its_btf_is_created_without(built: dict[str, str]) -> None:
    """A data map whose BTF value type the kernel refuses (here: the DATASEC of another
    section, of another size) is created without BTF, with a note, as libbpf does."""
    from dataclasses import replace

    from bpfkit.btf import parse_btf
    from bpfkit.kernel.btf_load import load_btf
    from bpfkit.kernel.object_maps import ObjectMaps

    obj = read_object(built["globals"])
    assert obj.btf is not None
    btf = parse_btf(obj.btf)
    bss = btf.find(".bss", "datasec").id
    data = next(d for d in obj.data if d.name == ".data")
    assert data.size != btf.type(bss).size
    wrong = replace(obj, data=(replace(data, value_type_id=bss),))
    from bpfkit.obj.prepare import btf_for_kernel

    with load_btf(btf_for_kernel(obj, btf)) as fd:
        maker = ObjectMaps(wrong, btf_fd=fd.fd)
        try:
            maker.create_data()
            info = maker.maps[".data"].info()
            assert (info.btf_id, info.btf_value_type_id) == (0, 0)
            assert maker.maps[".data"][0] == data.data  # still filled
            (note,) = maker.notes
            assert note.startswith("map '.data': ") and "created again without BTF" in note
        finally:
            maker.close()


def test_btf_attach_targets_load(built: dict[str, str]) -> None:
    with load_collection(read_object(built["btf_targets"])) as coll:
        assert {p.info().type_name for p in coll.programs.values()} == {"tracing"}


def test_initial_values_fill_prog_arrays_and_maps_of_maps(built: dict[str, str]) -> None:
    with load_collection(read_object(built["tail_calls"])) as coll:
        assert not coll.notes
        assert coll.programs["entry"].test_run(bytes(64)).retval == 42  # tail-called `tail`
        assert coll.programs["through_outer"].test_run(bytes(64)).retval == 0
        coll.maps["inner_b"][0] = 7  # outer[1] is inner_b
        assert coll.programs["through_outer"].test_run(bytes(64)).retval == 7
        assert coll.maps["events"].max_entries == 4 * 4096  # 3 pages rounded up


def test_sanitized_btf_keeps_type_ids_and_loads(built: dict[str, str]) -> None:
    from bpfkit.btf import parse_btf
    from bpfkit.btf.fixup import NEWER_KINDS
    from bpfkit.kernel.btf_load import load_btf
    from bpfkit.obj.prepare import btf_for_kernel

    obj = read_object(built["btf_kinds"])
    assert obj.btf is not None
    before = parse_btf(obj.btf)
    assert {int(t.kind) for t in before.types} >= set(NEWER_KINDS)
    raw = btf_for_kernel(obj, before, unsupported=NEWER_KINDS)
    after = parse_btf(raw)
    assert not {int(t.kind) for t in after.types} & set(NEWER_KINDS)
    assert len(after.types) == len(before.types)
    tagged = before.find("tagged", "struct")
    assert after.type(tagged.id).name == "tagged"
    with load_btf(raw):
        pass
    with load_collection(obj) as coll:  # the unsanitized BTF loads on this kernel
        assert not coll.notes and coll.programs["kinds"].info().btf_id > 0


def test_core_relocations_follow_the_kernel_types(built: dict[str, str], vmlinux_btf: Btf) -> None:
    import struct

    kernel = vmlinux_btf
    task = kernel.find("task_struct", "struct")
    members = {m: task.member(m) for m in ("pid", "tgid", "real_parent")}
    tgid = kernel.find("pid_type", "enum").value("PIDTYPE_TGID")
    obj = read_object(built["core"])
    with load_collection(obj, programs=["core"]) as coll:
        assert not coll.notes
        coll.programs["core"].test_run(bytes(64))
        out = struct.unpack("<9Q", coll.maps[".bss"][0])
    assert out[:3] == tuple(m.bit_offset // 8 for m in members.values())  # type: ignore[union-attr]
    assert out[3:] == (8, 0, task.size, 1, tgid, 0)
    with pytest.raises(VerifierError, match="CO-RE relocation failed .*bpfkit_no_such_field"):
        load_collection(obj, programs=["poisoned"])


def test_programs_sharing_a_section_and_sub_programs(built: dict[str, str]) -> None:
    with load_collection(read_object(built["multi"])) as coll:
        assert set(coll.programs) == {"first", "second"}
        assert coll.programs["first"].test_run(bytes(60)).retval == 2  # XDP_PASS
        assert coll.programs["second"].test_run(bytes(60)).retval == 2
        assert coll.maps[".data.counters"].typed(key=int, value=int)[0] == 8


def test_question_mark_sections_load_only_when_named(tmp_path: Path) -> None:
    src = tmp_path / "opt.c"
    src.write_text(
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
        'SEC("socket") int always(void *ctx) { return 1; }\n'
        'SEC("?socket") int optional(void *ctx) { return 2; }\n'
        'char _license[] SEC("license") = "GPL";\n'
    )
    obj_path = tmp_path / "opt.o"
    inc = f"-I/usr/include/{os.uname().machine}-linux-gnu"
    subprocess.run(
        ["clang-19", "-O2", "-target", "bpf", inc, "-c", str(src), "-o", str(obj_path)],
        check=True,
    )
    obj = read_object(obj_path)
    with load_collection(obj) as coll:
        assert set(coll.programs) == {"always"}
    with load_collection(obj, programs=["optional"]) as coll:
        assert coll.programs["optional"].test_run(bytes(64)).retval == 2


def test_unknown_program_and_section(built: dict[str, str]) -> None:
    obj = read_object(built["globals"])
    with pytest.raises(ObjectError, match="no program named 'nope'"):
        load_collection(obj, programs=["nope"])
    with pytest.raises(ObjectError, match="unknown program section name"):
        load_collection(read_object(ROOT / "tests/corpus/obj/labels.o"))


def test_seed_hello_loads() -> None:
    with load_collection(read_object(ROOT / "examples/hello/hello.o")) as coll:
        (prog,) = coll.programs.values()
        i = prog.info()
        assert i.type_name == "kprobe" and i.xlated_insns == 14


def test_pinned_maps_by_name_are_reused(built: dict[str, str], tmp_path: Path) -> None:
    # LIBBPF_PIN_BY_NAME maps: pinned on first load, reused by the next.
    src = tmp_path / "pinned.c"
    src.write_text(
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
        "struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);"
        " __type(key, __u32); __type(value, __u64); __uint(pinning, LIBBPF_PIN_BY_NAME);"
        ' } shared SEC(".maps");\n'
        'SEC("socket") int p(void *ctx) { __u32 k = 0; __u64 *v = bpf_map_lookup_elem(&shared, &k);'
        " if (v) __sync_fetch_and_add(v, 1); return 0; }\n"
        'char _license[] SEC("license") = "GPL";\n'
    )
    obj_path = tmp_path / "pinned.o"
    clang_bpf(src, obj_path)
    pin_dir = os.path.join(pins.ensure_bpffs(), f"bpfkit_test_pins_{os.getpid()}")
    os.makedirs(pin_dir)
    try:
        obj = read_object(obj_path)
        with load_collection(obj, pin_maps_dir=pin_dir) as first:
            first.programs["p"].test_run(bytes(64))
            map_id = first.maps["shared"].info().id
        assert os.path.exists(os.path.join(pin_dir, "shared"))
        with load_collection(obj, pin_maps_dir=pin_dir) as second:
            assert second.maps["shared"].info().id == map_id
            second.programs["p"].test_run(bytes(64))
            assert second.maps["shared"].typed(key=int, value=int)[0] == 2
            assert any("reusing" in n for n in second.notes)
    finally:
        shutil.rmtree(pin_dir)


# -- the CLI -----------------------------------------------------------------------------------


def test_cli_load_prints_programs_and_maps(
    built: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["load", built["globals"]]) == 0
    out = capsys.readouterr().out
    assert "2 programs, 4 maps" in out
    assert "globals" in out and "socket_filter" in out and "xlated" in out and "jited" in out
    assert ".rodata" in out and "hash" in out


def test_cli_load_pin_keeps_them_and_prog_list_shows_them(
    built: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    pin_dir = os.path.join(pins.ensure_bpffs(), f"bpfkit_test_cli_{os.getpid()}")
    try:
        assert main(["load", built["legacy_maps"], "--pin", pin_dir]) == 0
        ids = {
            int(line.split()[1])
            for line in capsys.readouterr().out.splitlines()
            if "  prog " in line
        }
        assert len(ids) == 2
        assert sorted(os.listdir(pin_dir)) == ["count_packets", "maps", "on_clone"]
        assert sorted(os.listdir(os.path.join(pin_dir, "maps"))) == ["by_proto", "packets"]
        assert main(["prog", "list"]) == 0
        listing = capsys.readouterr().out
        assert listing.splitlines()[0].split() == ["ID", "TYPE", "NAME", "TAG", "LOADED", "AT"]
        assert "count_packets" in listing and "on_clone" in listing
    finally:
        shutil.rmtree(pin_dir, ignore_errors=True)
    assert not ids & set(kinfo.prog_ids())  # unpinned: unloaded


def test_cli_test_run(
    built: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkt = tmp_path / "pkt.bin"
    pkt.write_bytes(bytes(range(60)))
    assert (
        main(
            [
                "test-run",
                built["globals"],
                "--program",
                "xdp_len",
                "--packet",
                str(pkt),
                "--repeat",
                "5",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "retval: 2 (XDP_PASS)" in out and "duration:" in out and "data_out: 60 bytes" in out
    assert "0000  00 01 02 03" in out
    assert (
        main(["test-run", built["globals"], "--program", "globals", "--packet", str(pkt), "--maps"])
        == 0
    )
    out = capsys.readouterr().out
    assert f"retval: {46 * 3 + 5 + 1} " in out  # skb->len is 60 - 14
    assert "map counts (hash): 1 entries\n  1: 1\n" in out
    assert "map .rodata (array): 1 slots\n  [0]: {factor: 3}" in out
    assert main(["test-run", built["globals"], "--packet", str(pkt)]) == 1
    assert "choose one with --program" in capsys.readouterr().err


def test_cli_verifier_error_prints_log_tail(
    built: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["load", built["oob_read"]]) == 1
    err = capsys.readouterr().err
    assert "invalid access to map value" in err
    assert err.rstrip().splitlines()[-1].startswith("bpfkit: error: loading program 'too_far'")


def test_cli_without_privileges_says_so_in_one_sentence(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import bpfkit.syscalls.causes as causes  # owns the privilege check

    monkeypatch.setattr(causes.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(causes, "effective_caps", lambda: 0)
    for argv in (["load", str(ROOT / "examples/hello/hello.o")], ["prog", "list"]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "root or the CAP_BPF capability" in err


# -- parity with bpftool -------------------------------------------------------------------------

CORPUS = sorted(
    glob.glob(str(ROOT / "tests/corpus/obj/*.o")) + glob.glob(str(ROOT / "examples/*/*.o"))
)


def _bpftool_tags(path: str) -> dict[str, str] | None:
    """Program name -> tag as ``bpftool prog loadall`` loads ``path``; None if it fails."""
    pin_dir = os.path.join(pins.ensure_bpffs(), f"bpfkit_parity_{os.getpid()}")
    try:
        res = subprocess.run(
            ["bpftool", "prog", "loadall", path, pin_dir], capture_output=True, text=True
        )
        if res.returncode != 0:
            return None
        tags = {}
        for name in os.listdir(pin_dir) if os.path.isdir(pin_dir) else ():
            out = subprocess.check_output(
                ["bpftool", "--json", "prog", "show", "pinned", os.path.join(pin_dir, name)]
            )
            tags[name] = json.loads(out)["tag"]
        return tags
    finally:
        shutil.rmtree(pin_dir, ignore_errors=True)


def _check_parity(path: str) -> None:
    # The kernel's tag hashes the program as loaded (map fds blanked): equal tags mean
    # bpfkit linked and relocated (sub-programs, globals, CO-RE...) exactly as libbpf did.
    tags = _bpftool_tags(path)
    obj = read_object(path)
    if tags is None:
        if any(m.legacy for m in obj.maps):
            # libbpf 1.0 refuses legacy `maps`; bpfkit must load them.
            with load_collection(obj) as coll:
                assert coll.programs
        return
    with load_collection(obj) as coll:
        mains = [p.name for p in obj.programs if not p.is_subprog]
        assert sorted(coll.programs) == sorted(mains)
        mine = {name: prog.info().tag for name, prog in coll.programs.items()}
    assert mine == tags


@pytest.mark.requires("bpf", "bpftool")
@pytest.mark.parametrize("path", CORPUS, ids=[os.path.relpath(p, ROOT) for p in CORPUS])
def test_loads_whatever_bpftool_loads(path: str) -> None:
    _check_parity(path)


@pytest.mark.requires("bpf", "bpftool")
def test_parity_on_the_load_test_programs(built: dict[str, str]) -> None:
    for name, path in sorted(built.items()):
        if name != "oob_read":
            _check_parity(path)


VMLINUX_PROG = """
// libbpf-bootstrap style: vmlinux.h, CO-RE reads, a ring buffer, const volatile config,
// tp_btf and ksyscall sections.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
char LICENSE[] SEC("license") = "Dual BSD/GPL";
struct event { int pid; int ppid; char comm[16]; char filename[64]; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 256 * 1024); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8192); __type(key, pid_t);
         __type(value, u64); } exec_start SEC(".maps");
const volatile unsigned long long min_duration_ns = 0;
SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	pid_t pid = bpf_get_current_pid_tgid() >> 32;
	u64 ts = bpf_ktime_get_ns();
	struct event *e;

	bpf_map_update_elem(&exec_start, &pid, &ts, BPF_ANY);
	if (min_duration_ns)
		return 0;
	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->ppid += BPF_CORE_READ_BITFIELD_PROBED(task, sched_reset_on_fork);
	if (bpf_core_field_exists(task->sched_remote_wakeup))
		e->ppid += BPF_CORE_READ_BITFIELD_PROBED(task, sched_remote_wakeup);
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_probe_read_str(&e->filename, sizeof(e->filename),
            (void *)ctx + (ctx->__data_loc_filename & 0xFFFF));
	bpf_ringbuf_submit(e, 0);
	return 0;
}
SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *p)
{
	pid_t pid = p->tgid;

	bpf_map_delete_elem(&exec_start, &pid);
	return 0;
}
SEC("ksyscall/execve")
int BPF_KSYSCALL(on_execve, const char *filename)
{
	bpf_printk("execve %s", filename);
	return 0;
}
"""


@pytest.mark.requires("bpf", "bpftool", "clang19")
def test_parity_on_a_vmlinux_h_program(tmp_path: Path, vmlinux_h: Path) -> None:
    (tmp_path / "exec.bpf.c").write_text(VMLINUX_PROG)
    arch = {"x86_64": "x86", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    obj = tmp_path / "exec.bpf.o"
    subprocess.run(
        [
            "clang-19",
            "-O2",
            "-g",
            "-target",
            "bpf",
            f"-D__TARGET_ARCH_{arch}",
            f"-I{vmlinux_h}",
            "-c",
            str(tmp_path / "exec.bpf.c"),
            "-o",
            str(obj),
        ],
        check=True,
    )
    _check_parity(str(obj))
