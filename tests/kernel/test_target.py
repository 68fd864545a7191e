"""The running kernel as obj.prepare sees it (kernel/target.py), the one /proc/kallsyms
reader and the one privilege check: without root, through their file readers."""

from __future__ import annotations

import pytest

from bpfkit.btf import Btf, Kind
from bpfkit.kernel import symbols
from bpfkit.kernel.target import RunningKernel, kernel_btf_ids
from bpfkit.syscalls import causes

KALLSYMS = """\
ffffffff81000000 T _stext
ffffffff81234560 t helper_fn
ffffffff82000000 D some_data
ffffffffc0001000 t mod_fn\t[some_module]
ffffffff81234560 T helper_fn
"""


def test_one_kallsyms_reader_serves_probes_and_ksyms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(symbols, "_kallsyms_text", lambda: KALLSYMS)
    k = RunningKernel()
    assert k.symbol_address("_stext") == 0xFFFFFFFF81000000
    assert k.symbol_address("some_data") == 0xFFFFFFFF82000000
    assert k.symbol_address("mod_fn") == 0xFFFFFFFFC0001000
    assert k.symbol_address("absent") is None
    assert symbols.kernel_has_symbol("helper_fn") and symbols.kernel_has_symbol("mod_fn")
    assert not symbols.kernel_has_symbol("some_data")  # data, not a function


def test_privileged_means_capabilities_not_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    cap_bpf = 1 << causes.CAP_BPF
    monkeypatch.setattr(causes.os, "geteuid", lambda: 0)
    monkeypatch.setattr(causes, "effective_caps", lambda: 0)
    assert not causes.privileged()  # root whose capabilities were dropped (setpriv)
    monkeypatch.setattr(causes.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(causes, "effective_caps", lambda: cap_bpf)
    assert causes.privileged()  # a user with CAP_BPF
    from bpfkit.kernel import features

    assert features.privileged is causes.privileged  # one check, re-exported


def test_kernel_btf_ids_name_the_kernels_types(vmlinux_btf: Btf) -> None:
    ids = kernel_btf_ids()
    checked = 0
    for t in vmlinux_btf.types[:: max(1, len(vmlinux_btf.types) // 500)]:
        if t.kind in (Kind.FUNC, Kind.VAR, Kind.TYPEDEF) and t.name:
            assert ids[(int(t.kind), t.name)] == vmlinux_btf.find_all(t.name, t.kind)[0].id
            checked += 1
    assert checked > 50
