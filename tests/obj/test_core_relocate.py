"""CO-RE relocation without a kernel: a program compiled against one layout of a type,
relocated against another object's BTF standing in for the kernel's."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfkit.btf import parse_btf, parse_btf_ext
from bpfkit.obj import read_object
from bpfkit.obj.core_relocate import POISON_HELPER, apply_core, essential_name
from helpers import clang_bpf

TARGET = """
struct task_struct {
	long pad;
	int tgid;
	int pid;
	struct { int inner; };
	char comm[16];
};
enum pid_type { PIDTYPE_PID, PIDTYPE_TGID = 7 };
struct task_struct t_used;
enum pid_type e_used;
"""

LOCAL = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
struct task_struct { int pid; int tgid; int inner; char comm[16]; int missing; }
	__attribute__((preserve_access_index));
struct task_struct___flavor { int pid; } __attribute__((preserve_access_index));
enum pid_type___mine { PIDTYPE_TGID___mine = 1 };
__u64 out[8];
SEC("socket") int prog(void *ctx)
{
	out[0] = bpf_core_field_offset(struct task_struct, pid);
	out[1] = bpf_core_field_offset(struct task_struct, tgid);
	out[2] = bpf_core_field_offset(struct task_struct, inner);
	out[3] = bpf_core_field_offset(struct task_struct, comm[3]);
	out[4] = bpf_core_field_exists(struct task_struct, missing);
	out[5] = bpf_core_field_offset(struct task_struct___flavor, pid);
	out[6] = bpf_core_enum_value(enum pid_type___mine, PIDTYPE_TGID___mine);
	out[7] = bpf_core_field_offset(struct task_struct, missing);
	return 0;
}
char _license[] SEC("license") = "GPL";
"""


def _compile(tmp: Path, name: str, text: str) -> Path:
    src, obj = tmp / f"{name}.c", tmp / f"{name}.o"
    src.write_text(text)
    return clang_bpf(src, obj)


def test_essential_names() -> None:
    assert essential_name("task_struct___v2") == "task_struct"
    assert essential_name("task_struct") == "task_struct"
    assert essential_name("a___b___c") == "a___b"
    assert essential_name("___x") == "___x"


@pytest.mark.requires("clang19")
def test_offsets_follow_the_target_layout(tmp_path: Path) -> None:
    target_obj = read_object(_compile(tmp_path, "target", TARGET))
    local_obj = read_object(_compile(tmp_path, "local", LOCAL))
    assert target_obj.btf and local_obj.btf and local_obj.btf_ext
    target = parse_btf(target_obj.btf)
    local = parse_btf(local_obj.btf)
    ext = parse_btf_ext(local_obj.btf_ext, btf=local)
    patched, results = apply_core(local_obj, local, ext, target)
    values = [r.value for r in sorted(results, key=lambda r: r.relo.insn_off)]
    # pid 12, tgid 8, inner 16 (inside an anonymous struct), comm[3] 20 + 3,
    # missing: absent, flavored pid 12, enum value 7, missing offset: poisoned.
    assert values == [12, 8, 16, 23, 0, 12, 7, None]
    insns = patched.program("prog").insns
    assert any(i.opcode == 0x85 and i.imm & 0xFFFFFFFF == POISON_HELPER for i in insns)
    assert patched.program("prog").insns != local_obj.program("prog").insns


RESIZE_TARGET = """
struct pair { long pad; unsigned long wide; int narrow; };
struct pair p_used;
"""

RESIZE_LOCAL = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct pair { unsigned int wide; int narrow; } __attribute__((preserve_access_index));
SEC("tp_btf/x") int prog(struct pair *p) { return p->wide + p->narrow; }
char _license[] SEC("license") = "GPL";
"""


@pytest.mark.requires("clang19")
def test_loads_take_the_kernel_field_size(tmp_path: Path) -> None:
    target_obj = read_object(_compile(tmp_path, "rt", RESIZE_TARGET))
    local_obj = read_object(_compile(tmp_path, "rl", RESIZE_LOCAL))
    assert target_obj.btf and local_obj.btf and local_obj.btf_ext
    local = parse_btf(local_obj.btf)
    ext = parse_btf_ext(local_obj.btf_ext, btf=local)
    patched, _ = apply_core(local_obj, local, ext, parse_btf(target_obj.btf))
    loads = [(i.opcode, i.off) for i in patched.program("prog").insns if i.opcode & 7 == 1]
    # unsigned int wide (4 bytes at 0) becomes the kernel's 8 bytes at 8: ldxdw;
    # int narrow stays a 4-byte load, now at 16.
    assert sorted(loads) == [(0x61, 16), (0x79, 8)]


BITS_TARGET = """
struct bf { long pad; unsigned int a:3; unsigned int b:10; int c:5; };
struct bf bf_used;
"""

BITS_LOCAL = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct bf { unsigned int b:10; int c:5; } __attribute__((preserve_access_index));
__u64 out[8];
SEC("tp_btf/x") int prog(struct bf *p)
{
	out[0] = __builtin_preserve_field_info(p->b, 0);	/* byte offset */
	out[1] = __builtin_preserve_field_info(p->b, 1);	/* byte size */
	out[2] = __builtin_preserve_field_info(p->b, 4);	/* lshift_u64 */
	out[3] = __builtin_preserve_field_info(p->b, 5);	/* rshift_u64 */
	out[4] = __builtin_preserve_field_info(p->c, 0);
	out[5] = __builtin_preserve_field_info(p->c, 4);
	out[6] = __builtin_preserve_field_info(p->c, 5);
	out[7] = __builtin_preserve_field_info(p->c, 3);	/* signed */
	return 0;
}
char _license[] SEC("license") = "GPL";
"""


@pytest.mark.requires("clang19")
def test_bitfields_as_libbpf_computes_them(tmp_path: Path) -> None:
    target_obj = read_object(_compile(tmp_path, "bt", BITS_TARGET))
    local_obj = read_object(_compile(tmp_path, "bl", BITS_LOCAL))
    assert target_obj.btf and local_obj.btf and local_obj.btf_ext
    local = parse_btf(local_obj.btf)
    ext = parse_btf_ext(local_obj.btf_ext, btf=local)
    _, results = apply_core(local_obj, local, ext, parse_btf(target_obj.btf))
    values = [r.value for r in sorted(results, key=lambda r: r.relo.insn_off)]
    # b: bits 67..76 of the struct, read as the u32 at byte 8: shifts 64-13 and 64-10.
    # c: bits 77..81, same load: shifts 64-18 and 64-5; signed.
    assert values == [8, 4, 51, 54, 8, 46, 59, 1]


TYPES_TARGET = """
typedef struct { int a; } anon_t;
struct { long x; long y; } other_anon;
typedef int count_t;
typedef struct { char c[24]; } big_t;
anon_t a_used;
count_t c_used;
big_t b_used;
"""

TYPES_LOCAL = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
typedef struct { int a; } anon_t;
typedef struct { int z; } missing_t;
typedef long count_t;
typedef struct { char c[8]; } big_t;
struct nowhere { int q; };
__u64 out[8];
SEC("socket") int prog(void *ctx)
{
	out[0] = bpf_core_type_exists(anon_t);
	out[1] = bpf_core_type_exists(missing_t);
	out[2] = bpf_core_type_size(missing_t);
	out[3] = bpf_core_type_size(big_t);
	out[4] = bpf_core_type_exists(count_t);
	out[5] = bpf_core_type_id_kernel(struct nowhere);
	out[6] = bpf_core_type_size(count_t);
	return 0;
}
char _license[] SEC("license") = "GPL";
"""


@pytest.mark.requires("clang19")
def test_type_relocations_as_libbpf(tmp_path: Path) -> None:
    """Found on the kernel selftests' test_core_reloc_type_based.o: a typedef is looked up
    as a typedef (not as the anonymous struct it names, which matched any anonymous
    struct of the kernel), and a missing type's size or id is 0, not a poisoned call."""
    target_obj = read_object(_compile(tmp_path, "ttarget", TYPES_TARGET))
    local_obj = read_object(_compile(tmp_path, "tlocal", TYPES_LOCAL))
    assert target_obj.btf and local_obj.btf and local_obj.btf_ext
    local = parse_btf(local_obj.btf)
    ext = parse_btf_ext(local_obj.btf_ext, btf=local)
    patched, results = apply_core(local_obj, local, ext, parse_btf(target_obj.btf))
    values = [r.value for r in sorted(results, key=lambda r: r.relo.insn_off)]
    # anon_t exists; missing_t does not (though the kernel has anonymous structs), so
    # its size is 0; big_t is 24 bytes there; count_t exists (int vs long: both ints,
    # compatible) and is 4 bytes; struct nowhere has no kernel id.
    assert values == [1, 0, 0, 24, 1, 0, 4]
    insns = patched.program("prog").insns
    assert not any(i.opcode == 0x85 and i.imm & 0xFFFFFFFF == POISON_HELPER for i in insns)


ENUM_LOCAL = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
enum gone { GONE_A = 1, GONE_B = 2 };
__u64 out[2];
SEC("socket") int prog(void *ctx)
{
	out[0] = bpf_core_enum_value(enum gone, GONE_B);
	out[1] = bpf_core_enum_value_exists(enum gone, GONE_A);
	return 0;
}
char _license[] SEC("license") = "GPL";
"""


@pytest.mark.requires("clang19")
def test_missing_enum_value_poisons_both_lddw_slots(tmp_path: Path) -> None:
    """Found on the kernel selftests' test_core_reloc_enumval.o: a missing enumerator's
    value (an lddw) was patched to 0 and the program loaded; libbpf turns both slots into
    the poison call so that the verifier refuses it when the code can run."""
    target_obj = read_object(_compile(tmp_path, "etarget", TYPES_TARGET))
    local_obj = read_object(_compile(tmp_path, "elocal", ENUM_LOCAL))
    assert target_obj.btf and local_obj.btf and local_obj.btf_ext
    local = parse_btf(local_obj.btf)
    ext = parse_btf_ext(local_obj.btf_ext, btf=local)
    patched, results = apply_core(local_obj, local, ext, parse_btf(target_obj.btf))
    assert sorted((r.relo.kind, r.value) for r in results) == [(10, 0), (11, None)]
    before, after = local_obj.program("prog").insns, patched.program("prog").insns
    assert sum(i.width for i in after) == sum(i.width for i in before)  # slots kept
    poison = [i for i in after if i.opcode == 0x85 and i.imm & 0xFFFFFFFF == POISON_HELPER]
    assert len(poison) == 2
    lddws = [i for i in before if i.opcode == 0x18]
    assert len([i for i in after if i.opcode == 0x18]) == len(lddws) - 1
