"""``bpfkit dump -r`` prints CO-RE relocations (``.BTF.ext``) as llvm-objdump-19 does.

Found on real-world objects (xdp-tools' xdpdump_bpf.o, the kernel's BPF selftests): with
``-r`` llvm-objdump-19 prints a ``CO-RE <kind> [id] ...`` line after each instruction that
has a CO-RE relocation.  Two objects of our own check it: one compiled by clang-19 with
every relocation kind, and one assembled with a hand-made ``.BTF``/``.BTF.ext`` holding
modifiers, anonymous members, forward declarations and every malformed case.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from bpfkit.btf import parse_btf
from bpfkit.btf.core_text import describe_core_relo
from bpfkit.btf.ext import CoreRelo
from bpfkit.disasm.objdump import dump
from bpfkit.obj.reader import read_object
from helpers import clang_bpf

pytestmark = pytest.mark.requires("llvm19")

CORE_C = """
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

enum color { RED = 1, GREEN = -2, BLUE = 0x7fffffff };
enum big { HUGE = 0x123456789aULL };
struct inner { int a; union { int u1; char u2[4]; }; unsigned int bf : 3; };
typedef struct inner inner_t;
struct outer {
    long x;
    const volatile inner_t arr[3];
    struct inner *ptr;
} __attribute__((preserve_access_index));

SEC("tp/test")
int prog(struct outer *o)
{
    int r = 0;
    r += BPF_CORE_READ(o, x);
    r += o->arr[2].a;
    r += o->arr[1].u1;
    r += bpf_core_field_exists(o->arr[0].u2[1]);
    r += bpf_core_field_size(o->ptr);
    r += BPF_CORE_READ_BITFIELD_PROBED(&o->arr[1], bf);
    r += bpf_core_type_exists(struct inner);
    r += bpf_core_type_size(inner_t);
    r += bpf_core_type_id_kernel(struct outer);
    r += bpf_core_type_id_local(struct outer);
    r += bpf_core_enum_value_exists(enum color, GREEN);
    r += bpf_core_enum_value(enum color, BLUE);
    r += bpf_core_enum_value(enum big, HUGE);
    r += bpf_core_type_matches(struct outer);
    r += bpf_core_field_offset(o[3].x);
    return r;
}
char LICENSE[] SEC("license") = "GPL";
"""


def _llvm(path: Path, *flags: str) -> str:
    args = ["llvm-objdump-19", "-d", *flags, str(path)]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def _flags(mcpu: str | None, imm_hex: bool) -> list[str]:
    out = ["-r", "--print-imm-hex" if imm_hex else "--no-print-imm-hex"]
    return [*out, f"--mcpu={mcpu}"] if mcpu else out


@pytest.mark.requires("clang19")
@pytest.mark.parametrize("imm_hex", [False, True], ids=["dec", "hex"])
@pytest.mark.parametrize("mcpu", [None, "v2", "v4"])
def test_compiled_core_relocations(
    tmp_path_factory: pytest.TempPathFactory, mcpu: str | None, imm_hex: bool
) -> None:
    obj = _compiled(tmp_path_factory)
    ref = _llvm(obj, *_flags(mcpu, imm_hex))
    assert ref.count("CO-RE ") >= 19  # every kind the source asks for
    ours = dump(read_object(str(obj)), relocs=True, imm_hex=imm_hex, mcpu=mcpu)
    assert ours == ref


@pytest.mark.requires("clang19")
def test_plain_dump_has_no_core_lines(tmp_path_factory: pytest.TempPathFactory) -> None:
    obj = _compiled(tmp_path_factory)
    ours = dump(read_object(str(obj)), mcpu="v3", imm_hex=False)
    assert "CO-RE" not in ours
    assert ours == _llvm(obj, "--no-print-imm-hex", "--mcpu=v3")


_CACHE: dict[str, Path] = {}


def _compiled(factory: pytest.TempPathFactory) -> Path:
    if "c" not in _CACHE:
        d = factory.mktemp("core_c")
        (d / "core.c").write_text(CORE_C)
        _CACHE["c"] = clang_bpf(d / "core.c", d / "core.o")
    return _CACHE["c"]


# --- a hand-made .BTF / .BTF.ext, assembled by llvm-mc-19 ---------------------------


class _Strings:
    def __init__(self) -> None:
        self.data = bytearray(b"\0")
        self.offs: dict[str, int] = {"": 0}

    def __call__(self, s: str) -> int:
        if s not in self.offs:
            self.offs[s] = len(self.data)
            self.data += s.encode() + b"\0"
        return self.offs[s]


def _t(name: int, kind: int, vlen: int, size_or_type: int, flag: bool = False) -> bytes:
    return struct.pack("<III", name, (int(flag) << 31) | (kind << 24) | vlen, size_or_type)


# (kind, type id, access string)
RELOS: list[tuple[int, int, str]] = [
    (0, 5, "0:1"),  # volatile const struct s::<anon 1>
    (0, 6, "2:2:1"),  # typedef, [2] first, array index
    (2, 7, "0:0"),  # type_tag modifier
    (9, 10, "0"),  # fwd union
    (8, 11, "0"),  # anonymous pointer
    (11, 8, "0"),  # unsigned enum with a negative int32
    (11, 9, "0"),  # signed enum64
    (10, 12, "0"),  # signed enum
    (11, 13, "0"),  # const typedef of an enum
    (1, 4, "0:1"),  # array as the root type
    (0, 2, "0:9"),  # member index out of range
    (0, 99, "0"),  # unknown type id
    (0, 2, "0:x"),  # not a number
    (0, 2, "0;1"),  # bad delimiter
    (9, 2, "1"),  # type-based spec must be 0
    (10, 8, "5"),  # bad enum value index
    (10, 2, "0"),  # not an enum
    (0, 1, "0:0"),  # int has no members
    (0, 2, ""),  # field spec too short
    (20, 2, "0"),  # unknown kind
    (0, 0, "0:0"),  # void
    (10, 8, "0:1"),  # enum spec of two numbers
    (6, 14, "0"),  # const void
    (0, 2, "0:1"),  # two relocations at one instruction: the first wins
]
SHARED = len(RELOS) - 1


def _btf_and_ext() -> tuple[bytes, bytes]:
    s = _Strings()
    types = [
        _t(s("int"), 1, 0, 4) + struct.pack("<I", (1 << 24) | 32),  # 1 int
        _t(s("s"), 4, 3, 16)  # 2 struct s { int a; int; int arr[2]; }
        + struct.pack("<III", s("a"), 1, 0)
        + struct.pack("<III", 0, 1, 32)
        + struct.pack("<III", s("arr"), 4, 64),
        _t(0, 10, 0, 2),  # 3 const s
        _t(0, 3, 0, 0) + struct.pack("<III", 1, 1, 2),  # 4 int[2]
        _t(0, 9, 0, 3),  # 5 volatile const s
        _t(s("s_t"), 8, 0, 5),  # 6 typedef
        _t(s("tag"), 18, 0, 2),  # 7 type_tag
        _t(s("e"), 6, 1, 4) + struct.pack("<Ii", s("A"), -5),  # 8 unsigned enum
        _t(s("e64"), 19, 1, 8, True) + struct.pack("<III", s("B"), 0xFFFFFFFF, 0xFFFFFFFF),
        _t(s("u"), 7, 0, 0, True),  # 10 fwd union u
        _t(0, 2, 0, 2),  # 11 pointer
        _t(s("se"), 6, 1, 4, True) + struct.pack("<Ii", 0, -3),  # 12 signed, anon value
        _t(0, 10, 0, 15),  # 13 const -> typedef
        _t(0, 10, 0, 0),  # 14 const void
        _t(s("e_t"), 8, 0, 8),  # 15 typedef of enum e
    ]
    sec = s("xdp")
    tdata = b"".join(types)
    recs = b""
    for i, (kind, tid, acc) in enumerate(RELOS):
        off = min(i, SHARED - 1) * 8
        recs += struct.pack("<IIII", off, tid, s(acc), kind)
    btf = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(tdata), len(tdata), len(s.data))
    btf += tdata + bytes(s.data)
    core = struct.pack("<III", 16, sec, len(RELOS)) + recs
    ext = struct.pack("<HBBIIIIIII", 0xEB9F, 1, 0, 32, 0, 0, 0, 0, 0, len(core)) + core
    return btf, ext


def _bytes(data: bytes) -> str:
    return "".join(
        f"\t.byte {', '.join(str(b) for b in data[i : i + 16])}\n" for i in range(0, len(data), 16)
    )


def _assembled(tmp_path: Path) -> Path:
    btf, ext = _btf_and_ext()
    src = (
        '\t.section xdp,"ax",@progbits\n\t.globl prog\n\t.type prog,@function\nprog:\n'
        + "\tr0 = 0\n" * SHARED
        + "\texit\n"
        + '\t.section .BTF,"",@progbits\n'
        + _bytes(btf)
        + '\t.section .BTF.ext,"",@progbits\n'
        + _bytes(ext)
        + '\t.section license,"aw",@progbits\n\t.asciz "GPL"\n'
    )
    (tmp_path / "core.s").write_text(src)
    out = tmp_path / "core.o"
    subprocess.run(
        [
            "llvm-mc-19",
            "-triple",
            "bpfel",
            "-filetype=obj",
            str(tmp_path / "core.s"),
            "-o",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out


def test_handmade_core_relocations(tmp_path: Path) -> None:
    obj = _assembled(tmp_path)
    ref = _llvm(obj, "-r", "--no-print-imm-hex")
    assert ref.count("CO-RE ") == SHARED  # one line per instruction
    for text in ("volatile const struct s::<anon 1>", "fwd union u", "type_tag(", "<anon 0>"):
        assert text in ref
    assert dump(read_object(str(obj)), relocs=True, imm_hex=False) == ref


def test_describe_without_objdump() -> None:
    """The library call, on the same BTF: a few texts as LLVM's BTFParser documents them."""
    btf_data, _ = _btf_and_ext()
    btf = parse_btf(btf_data)
    assert (
        describe_core_relo(btf, CoreRelo(0, 2, 0, 0), "0:1")
        == "<byte_off> [2] struct s::<anon 1> (0:1)"
    )
    assert (
        describe_core_relo(btf, CoreRelo(0, 99, 0, 9), "0")
        == "<type_size> [99] '0' <unknown type id: 99>"
    )
    assert (
        describe_core_relo(btf, CoreRelo(0, 8, 0, 11), "0")
        == "<enumval_value> [8] enum e::A = 18446744073709551611"
    )
