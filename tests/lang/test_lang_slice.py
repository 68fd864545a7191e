"""bpfkit.lang end to end: a Python XDP program compiled by bpfkit (no LLVM), run in the VM
and, through the kernel's verifier, with BPF_PROG_TEST_RUN; both must agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfkit.errors import CompileError
from bpfkit.lang.compiler import compile_file, compile_source
from bpfkit.vm import Vm
from helpers import TESTS

PROG = str(TESTS / "data" / "lang" / "xdp_proto.py")
IPV4 = bytes(12) + b"\x08\x00" + bytes(50)
IPV6 = bytes(12) + b"\x86\xdd" + bytes(50)


def _vm_run(packets: list[bytes]) -> tuple[list[int], list[str], dict[bytes, bytes]]:
    c = compile_file(PROG)
    vm = Vm(c.spec.programs[0], obj=c.spec)
    rets, out = [], []
    for p in packets:
        r = vm.run(packet=p)
        rets.append(r.r0)
        out += r.lines
    return rets, out, dict(vm.maps["counts"].items())


def test_vm_runs_the_compiled_program() -> None:
    rets, out, counts = _vm_run([IPV4, IPV6, IPV4, bytes(14)])
    assert rets == [2, 1, 2, 2]  # XDP_PASS, XDP_DROP, XDP_PASS; proto 0: PASS
    assert out == ["ipv4 4", "ipv4 4"]  # u8 250 + 10 wraps to 4
    as_ints = {int.from_bytes(k, "little"): int.from_bytes(v, "little") for k, v in counts.items()}
    assert as_ints == {0x800: 2, 0x86DD: 1, 0: 1}


@pytest.mark.requires("bpf")
def test_kernel_verifier_accepts_and_agrees_with_the_vm() -> None:
    from bpfkit.kernel.collection import load_collection

    c = compile_file(PROG)
    packets = [IPV4, IPV6, IPV4, b"\x00" * 14]
    with load_collection(c.spec) as coll:
        prog = coll.programs["by_proto"]
        rets = [prog.test_run(p).retval for p in packets]
        kernel_counts = dict(coll.maps["counts"].items())
    vm_rets, _, vm_counts = _vm_run(packets)
    assert rets == vm_rets == [2, 1, 2, 2]
    assert kernel_counts == vm_counts


def test_errors_point_at_the_python_source() -> None:
    src = "from bpfkit.lang import xdp, u32, u64\n\n@xdp\ndef f(ctx):\n    a = u32(1)\n    return a + u64(2)\n"
    ns: dict[str, object] = {}
    exec(compile(src, "bad.py", "exec"), ns)
    with pytest.raises(CompileError) as e:
        compile_source(src, ns, "bad.py")
    assert e.value.line == 6 and e.value.column == 16
    assert "u32 and u64 mixed" in str(e.value) and str(e.value).startswith("bad.py:6:16: error:")


@pytest.mark.requires("bpf")
def test_verifier_log_shows_python_lines() -> None:
    from bpfkit.kernel.collection import load_collection

    c = compile_file(PROG)
    with load_collection(c.spec, log_level=2) as coll:
        assert not coll.notes  # func_info and line_info accepted
        log = coll.programs["by_proto"].log
    assert "; counts[u32(proto)] += 1 @ xdp_proto.py:11" in log.splitlines()


@pytest.mark.requires("bpf")
def test_a_verifier_rejection_points_at_the_python_line() -> None:
    from bpfkit.errors import VerifierError
    from bpfkit.kernel.collection import load_collection

    src = (
        "from bpfkit.lang import HashMap, struct, xdp, u32, u64\n"
        "@struct\nclass V:\n    n: u64\n"
        "m = HashMap[u32, V](max_entries=4)\n"
        "@xdp\ndef f(ctx) -> u32:\n"
        "    p = m.get(u32(1))\n"
        "    p.n += 1\n"  # no 'if p is not None': the verifier refuses the NULL dereference
        "    return 2\n"
    )
    ns: dict[str, object] = {}
    exec(compile(src, "nullcheck.py", "exec"), ns)
    c = compile_source(src, ns, "nullcheck.py")
    with pytest.raises(VerifierError) as e:
        load_collection(c.spec).close()
    assert "; p.n += 1 @ nullcheck.py:9" in e.value.log


@pytest.mark.requires("llvm19")
def test_llvm_objdump_shows_the_python_source(tmp_path: Path) -> None:
    from helpers import llvm_objdump_each

    obj = tmp_path / "xdp_proto.o"
    obj.write_bytes(compile_file(PROG).obj)
    text = llvm_objdump_each([obj], "-S")[obj]
    # llvm-objdump reads the .BTF.ext line info bpfkit wrote: Python lines over the code.
    assert "; counts[u32(proto)] += 1" in text and '; print(f"ipv4 {x}")' in text
