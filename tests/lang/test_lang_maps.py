"""Map operations of bpfkit.lang (m[k], m.get, k in m, del m[k], m[k] op= v, struct values,
every map kind, perf and ring buffer output) against the kernel and the VM; print() limits;
the CLI on .py files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bpfkit.cli.main import main
from bpfkit.errors import CompileError
from bpfkit.lang.compiler import compile_source

MAPS = """
from bpfkit.lang import *

@struct
class Stat:
    n: u64
    last: u32

h = HashMap[u32, u64](max_entries=16)
lru = LruHash[u32, u32](max_entries=16)
pch = PerCpuHash[u32, u64](max_entries=16)
pca = PerCpuArray[u32, u64](max_entries=4)
arr = Array[u32, i32](max_entries=4)
st = HashMap[u32, Stat](max_entries=16)
perf = PerfEventArray()
ring = RingBuf(max_entries=4096)
progs = ProgArray(max_entries=2)

@xdp
def prog(ctx) -> u32:
    k = u32(ctx.load(u8, 0))
    h[k] += 5
    h[k] -= 2
    h[k + 1] = 10
    del h[k + 1]
    r: u32 = 0
    if k in h:
        r += 1
    if k + 1 not in h:
        r += 2
    r += u32(h.get(k + 2, 7))
    lru[k] = r
    pch[k] |= 12
    pca[u32(1)] += 1
    arr[u32(2)] = -3
    arr[u32(9)] = 1
    s = st.get(k)
    if s is None:
        st[k] = Stat(n=1, last=k)
    else:
        s.n += 1
    ring.output(Stat(n=u64(r), last=k))
    progs.tail_call(ctx, 5)
    return r + u32(arr[u32(2)] + 3)
"""


def _compile(src: str, name: str) -> Any:
    ns: dict[str, Any] = {}
    exec(compile(src, name, "exec", dont_inherit=True), ns)
    return compile_source(src, ns, name)


def _check(maps: dict[str, dict[bytes, bytes]], r0: int) -> None:
    le = lambda b: int.from_bytes(b, "little")  # noqa: E731
    assert r0 == 1 + 2 + 7
    assert {le(k): le(v) for k, v in maps["h"].items()} == {4: 6}  # (+5 -2) twice
    assert {le(k): le(v) for k, v in maps["lru"].items()} == {4: 10}
    assert {le(k): le(v[:8]) for k, v in maps["st"].items()} == {4: 2}


@pytest.mark.requires("bpf")
def test_map_operations_agree_in_the_vm_and_the_kernel() -> None:
    from bpfkit.kernel.collection import load_collection
    from bpfkit.vm import Vm

    compiled = _compile(MAPS, "maps.py")
    packet = bytes([4]) + bytes(40)
    vm = Vm(compiled.spec.programs[0], obj=compiled.spec)
    vm.run(packet=packet)
    r = vm.run(packet=packet)
    _check({n: dict(m.items()) for n, m in r.maps.items() if n in ("h", "lru", "st")}, r.r0)
    with load_collection(compiled.spec) as coll:
        prog = coll.programs["prog"]
        prog.test_run(packet)
        ret = prog.test_run(packet).retval
        _check({n: dict(coll.maps[n].items_raw()) for n in ("h", "lru", "st")}, ret)


def test_print_shows_at_most_three_values() -> None:
    src = "from bpfkit.lang import *\n@xdp\ndef f(ctx) -> u32:\n    print(1, 2, u32(3), u64(4))\n    return 2\n"
    with pytest.raises(CompileError) as e:
        _compile(src, "p.py")
    assert "at most 3 values" in str(e.value) and e.value.line == 4


def test_print_and_fstrings_in_the_vm() -> None:
    from bpfkit.vm import Vm

    src = (
        "from bpfkit.lang import *\n@xdp\ndef f(ctx) -> u32:\n"
        "    x = u16(ctx.load(u8, 0))\n    name: u8[8] = b'eth0'\n"
        "    print(f'x={x:x} {name} 100%', i8(-1))\n    return 2\n"
    )
    c = _compile(src, "p.py")
    r = Vm(c.spec.programs[0], obj=c.spec).run(packet=bytes([255]) + bytes(20))
    assert r.lines == ["x=ff eth0 100% -1"]


BAD = "from bpfkit.lang import *\n@xdp\ndef f(ctx) -> u32:\n    return undefined_name\n"


def test_cli_builds_and_runs_python(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = Path(__file__).parents[1] / "data" / "lang" / "xdp_proto.py"
    out = tmp_path / "p.o"
    assert main(["build", str(prog), "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x7fELF"
    packet = tmp_path / "pkt"
    packet.write_bytes(bytes(12) + b"\x08\x00" + bytes(40))
    assert main(["vm", str(prog), "--packet", str(packet)]) == 0
    assert "ipv4 4" in capsys.readouterr().out
    bad = tmp_path / "bad.py"
    bad.write_text(BAD)
    assert main(["build", str(bad), "-o", str(tmp_path / "bad.o")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:4:12: error: unknown name 'undefined_name'" in err and "Traceback" not in err
    assert not (tmp_path / "bad.o").exists()
