"""``bpfkit test-run`` shows the program's bpf_printk lines, as ``bpfkit vm`` does."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfkit.cli.main import main
from helpers import clang_bpf

PRINTK_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int prog(struct xdp_md *ctx) {
    bpf_printk("len %d", (int)(ctx->data_end - ctx->data));
    bpf_printk("second line");
    return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.requires("bpf", "tracefs", "clang19")
def test_test_run_prints_the_printk_lines_the_vm_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "pk.c"
    src.write_text(PRINTK_C)
    obj = clang_bpf(src, tmp_path / "pk.o")
    pkt = tmp_path / "pkt.bin"
    pkt.write_bytes(bytes(60))
    assert main(["vm", str(obj), "--packet", str(pkt)]) == 0
    vm = capsys.readouterr().out.splitlines()
    assert main(["test-run", str(obj), "--packet", str(pkt), "--repeat", "2"]) == 0
    kernel = capsys.readouterr().out.splitlines()
    assert vm[:2] == ["len 60", "second line"]
    assert kernel[:4] == vm[:2] * 2  # two runs, two of each
