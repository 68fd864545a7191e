#!/usr/bin/env python3
"""Generate bpfkit's kernel-constant tables (``src/bpfkit/uapi/_generated.py``).

Sources (pinned: their identity is written into the generated module's header):

* the running kernel's BTF, ``/sys/kernel/btf/vmlinux``: the uapi enums ``bpf_func_id``
  (helper ids and names), ``bpf_prog_type``, ``bpf_map_type``, ``bpf_attach_type``,
  ``bpf_link_type`` and ``bpf_cmd``;
* libbpf's ``/usr/include/bpf/bpf_helper_defs.h``: each helper's C prototype
  (``static long (*bpf_trace_printk)(const char *fmt, __u32 fmt_size, ...) = (void *) 6;``);
* the uapi header ``/usr/include/linux/pkt_cls.h``: tc's verdicts (``#define TC_ACT_OK 0``),
  which are macros and so not in the kernel's BTF.

Usage::

    scripts/gen_uapi.py            # rewrite src/bpfkit/uapi/_generated.py
    scripts/gen_uapi.py --check    # exit 1 if the committed file differs from a fresh run

The BTF reader below is deliberately tiny (it only walks type records to find enums):
the generator must not depend on the package it generates.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "bpfkit" / "uapi" / "_generated.py"
VMLINUX = Path("/sys/kernel/btf/vmlinux")
HELPER_DEFS = Path("/usr/include/bpf/bpf_helper_defs.h")
PKT_CLS = Path("/usr/include/linux/pkt_cls.h")

# Bytes of kind-specific data after each 12-byte btf_type record, per BTF kind:
# fixed part and per-member part (times vlen).  See the kernel's Documentation/bpf/btf.rst.
_KIND_EXTRA = {
    1: (4, 0),  # INT
    2: (0, 0),  # PTR
    3: (12, 0),  # ARRAY
    4: (0, 12),  # STRUCT
    5: (0, 12),  # UNION
    6: (0, 8),  # ENUM
    7: (0, 0),  # FWD
    8: (0, 0),  # TYPEDEF
    9: (0, 0),  # VOLATILE
    10: (0, 0),  # CONST
    11: (0, 0),  # RESTRICT
    12: (0, 0),  # FUNC
    13: (0, 8),  # FUNC_PROTO
    14: (4, 0),  # VAR
    15: (0, 12),  # DATASEC
    16: (0, 0),  # FLOAT
    17: (4, 0),  # DECL_TAG
    18: (0, 0),  # TYPE_TAG
    19: (0, 12),  # ENUM64
}

# enum -> (generated IntEnum class, uapi prefix stripped from member names)
_ENUM_CLASSES = {
    "bpf_prog_type": ("ProgType", "BPF_PROG_TYPE_"),
    "bpf_map_type": ("MapType", "BPF_MAP_TYPE_"),
    "bpf_attach_type": ("AttachType", "BPF_"),
    "bpf_link_type": ("LinkType", "BPF_LINK_TYPE_"),
    "bpf_cmd": ("Cmd", "BPF_"),
    # Return values and flags keep their uapi names: they are printed as users write them.
    "xdp_action": ("XdpAction", ""),
    "sk_action": ("SkAction", ""),
    "bpf_ret_code": ("RetCode", ""),
    "bpf_update_flags": ("UpdateFlag", ""),
}
# Anonymous enums, named here by one of their members.
_ANON_ENUMS = {"BPF_NOEXIST": "bpf_update_flags"}

# Program context structs: explain names the fields programs load from r1.
CTX_STRUCTS = (
    "__sk_buff",
    "xdp_md",
    "pt_regs",
    "bpf_perf_event_data",
    "bpf_sock_ops",
    "sk_msg_md",
    "bpf_sock_addr",
    "bpf_raw_tracepoint_args",
    "bpf_sysctl",
    "sk_reuseport_md",
    "bpf_sk_lookup",
)

ENUMS = (
    "bpf_func_id",
    "bpf_prog_type",
    "bpf_map_type",
    "bpf_attach_type",
    "bpf_link_type",
    "bpf_cmd",
    "xdp_action",
    "sk_action",
    "bpf_ret_code",
    "bpf_update_flags",
)


Types = list[tuple[int, str, int, int, bytes]]


def btf_types(data: bytes) -> Types:
    """Every type record of a raw BTF blob (little-endian only), id 0 (void) first:
    ``(kind, name, size_or_type, info, kind-specific bytes)``.  Member and enumerator
    names inside the kind-specific bytes are string offsets, resolved by :func:`_str`."""
    magic, _ver, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
    if magic != 0xEB9F:
        raise SystemExit("not a little-endian BTF blob")
    type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, 8)
    types = hdr_len + type_off
    strings = hdr_len + str_off

    def name(off: int) -> str:
        end = data.index(b"\0", strings + off)
        return data[strings + off : end].decode()

    out: Types = [(0, "void", 0, 0, b"")]
    pos, end = types, types + type_len
    while pos < end:
        name_off, info, size_type = struct.unpack_from("<III", data, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        pos += 12
        fixed, per = _KIND_EXTRA[kind]
        extra = data[pos : pos + fixed + per * vlen]
        out.append((kind, name(name_off), size_type, info, extra))
        pos += fixed + per * vlen
    _STRINGS[:] = [data[strings : strings + str_len]]
    return out


_STRINGS: list[bytes] = []  # the string section of the blob btf_types() read last


def _str(off: int) -> str:
    table = _STRINGS[0]
    return table[off : table.index(b"\0", off)].decode()


def btf_enums(types: Types, wanted: set[str]) -> dict[str, list[tuple[str, int]]]:
    """Enumerators of the named enums."""
    found: dict[str, list[tuple[str, int]]] = {}
    for kind, name, _st, info, extra in types:
        if kind == 6 and (name in wanted or not name):
            kflag = info >> 31
            vals = []
            for i in range(info & 0xFFFF):
                n_off, val = struct.unpack_from("<Ii" if not kflag else "<II", extra, 8 * i)
                vals.append((_str(n_off), val))
            if not name:
                name = next((_ANON_ENUMS[n] for n, _ in vals if n in _ANON_ENUMS), "")
            if name in wanted:
                found[name] = vals
    return found


_TC_ACT = re.compile(r"^#define (TC_ACT_[A-Z]+)\s+\(?(-?\d+)\)?", re.M)


def tc_actions(header: str) -> list[tuple[str, int]]:
    """tc's verdicts from pkt_cls.h (the plain numbers; not the extended opcodes)."""
    return [(m[1], int(m[2])) for m in _TC_ACT.finditer(header)]


def _size(types: Types, tid: int) -> int:
    kind, _n, size_type, _info, extra = types[tid]
    if kind in (1, 4, 5, 6, 16, 19):  # INT, STRUCT, UNION, ENUM, FLOAT, ENUM64: sized
        return size_type
    if kind == 2:  # PTR
        return 8
    if kind == 3:  # ARRAY: elem type, index type, count
        elem, _idx, n = struct.unpack_from("<III", extra, 0)
        return _size(types, elem) * n
    if kind in (8, 9, 10, 11, 18):  # TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG
        return _size(types, size_type)
    return 0


def _strip(types: Types, tid: int) -> int:
    while types[tid][0] in (8, 9, 10, 11, 18):
        tid = types[tid][2]
    return tid


def struct_fields(types: Types, name: str) -> list[tuple[str, int, int]]:
    """``(field, byte offset, size)`` of a struct's members, anonymous unions and structs
    flattened, small arrays of scalars expanded (``cb[0]``); bitfields left out."""
    for tid, (kind, tname, _st, _info, _extra) in enumerate(types):
        if kind == 4 and tname == name:
            return _members(types, tid, 0)
    raise SystemExit(f"struct {name} not in the BTF")


def _members(types: Types, tid: int, base: int) -> list[tuple[str, int, int]]:
    _kind, _name, _st, info, extra = types[tid]
    kflag = info >> 31
    out: list[tuple[str, int, int]] = []
    for i in range(info & 0xFFFF):
        n_off, mtype, moff = struct.unpack_from("<III", extra, 12 * i)
        bits = moff >> 24 if kflag else 0
        off = moff & 0xFFFFFF if kflag else moff
        if bits or off % 8:
            continue  # a bitfield: no byte-addressable load reads it alone
        mname = _str(n_off)
        at = base + off // 8
        real = _strip(types, mtype)
        if not mname and types[real][0] in (4, 5):
            out += _members(types, real, at)
            continue
        if types[real][0] == 3:
            elem, _idx, n = struct.unpack_from("<III", types[real][4], 0)
            esize = _size(types, elem)
            if 0 < n <= 8 and types[_strip(types, elem)][0] in (1, 2, 6):
                out += [(f"{mname}[{k}]", at + k * esize, esize) for k in range(n)]
                continue
            if n == 0:  # a flexible array: "args[]" with the element size
                out.append((f"{mname}[]", at, esize))
                continue
        out.append((mname, at, _size(types, mtype)))
    return out


_PROTO = re.compile(
    r"^static (?P<ret>[^(]+?)\s*\(\*\s*(?:const\s+)?(?P<name>bpf_\w+)\)\((?P<args>.*)\)"
    r" = \(void \*\) (?P<id>\d+);$"
)


def helper_protos(text: str) -> dict[int, tuple[str, str, list[tuple[str, str]], bool]]:
    """``id -> (name, ret, [(arg name, ctype)], variadic)`` from bpf_helper_defs.h."""
    out = {}
    for line in text.splitlines():
        m = _PROTO.match(line)
        if not m:
            continue
        args: list[tuple[str, str]] = []
        variadic = False
        raw = m["args"].strip()
        if raw not in ("", "void"):
            for a in (x.strip() for x in raw.split(",")):
                if a == "...":
                    variadic = True
                    continue
                am = re.match(r"^(.*?[\s*])(\w+)$", a)
                if not am:
                    raise SystemExit(f"cannot parse argument {a!r} in: {line}")
                args.append((am[2], am[1].strip()))
        out[int(m["id"])] = (m["name"], m["ret"].strip(), args, variadic)
    return out


def render(
    enums: dict[str, list[tuple[str, int]]],
    protos: dict[int, tuple[str, str, list[tuple[str, str]], bool]],
    pins: list[str],
    structs: dict[str, list[tuple[str, int, int]]],
) -> str:
    lines = [
        '"""Kernel uapi constants and helper prototypes. GENERATED by scripts/gen_uapi.py -- do not edit.',
        "",
        "Sources:",
        *[f"    {p}" for p in pins],
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from enum import IntEnum",
        "",
    ]
    for enum, (cls, prefix) in _ENUM_CLASSES.items():
        lines.append("")
        lines.append(f"class {cls}(IntEnum):")
        if enum in _ANON_ENUMS.values():
            lines.append(
                f'    """The uapi\'s unnamed enum of {enum.removeprefix("bpf_").replace("_", " ")}."""'
            )
        elif prefix:
            lines.append(f'    """enum {enum}: members are the uapi names without ``{prefix}``."""')
        else:
            lines.append(f'    """enum {enum}: members keep their uapi names."""')
        lines.append("")
        for n, v in enums[enum]:
            if n.startswith("__MAX") or not n.startswith(prefix):
                continue  # the "number of values" sentinel is not a value
            lines.append(f"    {n.removeprefix(prefix)} = {v}")
        lines.append("")
        if not prefix:  # the members by their uapi names too: `from bpfkit.uapi import XDP_PASS`
            lines.append("")
            lines += [f"{n} = {cls}.{n}" for n, _ in enums[enum] if not n.startswith("__")]
            lines.append("")
    lines.append("")
    lines.append("class TcAction(IntEnum):")
    lines.append('    """tc verdicts (linux/pkt_cls.h ``TC_ACT_*``): sched_cls and sched_act."""')
    lines.append("")
    lines += [f"    {n} = {v}" for n, v in enums["tc_act"]]
    lines.append("")
    lines.append("")
    lines += [f"{n} = TcAction.{n}" for n, _ in enums["tc_act"]]
    lines.append("")
    lines.append("")
    lines.append("# Context structs: struct name -> ((field, byte offset, size), ...).")
    lines.append("# fmt: off")
    lines.append("CTX_FIELDS: dict[str, tuple[tuple[str, int, int], ...]] = {")
    for sname, fields in structs.items():
        lines.append(f"    {sname!r}: (")
        lines += [f"        {f!r}," for f in fields]
        lines.append("    ),")
    lines.append("}")
    lines.append("# fmt: on")
    lines.append("")
    lines.append("# One helper per line: keep ruff format from exploding the rows.")
    lines.append("# fmt: off")
    lines.append("# enum bpf_func_id with libbpf prototypes:")
    lines.append("# (id, name, return type, ((arg name, C type), ...), variadic, prototype known)")
    lines.append(
        "HELPER_ROWS: tuple[tuple[int, str, str, tuple[tuple[str, str], ...], bool, bool], ...] = ("
    )
    for enum_name, hid in enums["bpf_func_id"]:
        if not enum_name.startswith("BPF_FUNC_") or enum_name == "__BPF_FUNC_MAX_ID":
            continue
        name = "bpf_" + enum_name.removeprefix("BPF_FUNC_")
        if hid in protos:
            pname, ret, args, variadic = protos[hid]
            if pname != name:
                raise SystemExit(f"helper {hid}: kernel says {name}, libbpf says {pname}")
            row = (hid, name, ret, tuple(args), variadic, True)
        else:
            # The kernel knows this id but the pinned libbpf has no prototype for it
            # (id 0, unspec, always; newer helpers with an older libbpf).
            row = (hid, name, "long", (), False, False)
        lines.append(f"    {row!r},")
    lines.append(")")
    lines.append("# fmt: on")
    lines.append("")
    return "\n".join(lines)


def _ruff_format(text: str) -> str:
    """The text as `ruff format` leaves it, so the committed file passes the style gate."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        raise SystemExit("ruff is needed to format the generated module (pip install ruff)")
    done = subprocess.run(
        [ruff, "format", "--stdin-filename", str(OUT), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return done.stdout


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="compare with the committed file")
    p.add_argument("--btf", type=Path, default=VMLINUX)
    p.add_argument("--helper-defs", type=Path, default=HELPER_DEFS)
    p.add_argument("--pkt-cls", type=Path, default=PKT_CLS)
    ns = p.parse_args()
    btf = ns.btf.read_bytes()
    defs = ns.helper_defs.read_text()
    types = btf_types(btf)
    enums = btf_enums(types, set(ENUMS))
    structs = {n: struct_fields(types, n) for n in CTX_STRUCTS}
    missing = set(ENUMS) - set(enums)
    if missing:
        raise SystemExit(f"enums not in {ns.btf}: {sorted(missing)}")
    pkt_cls = ns.pkt_cls.read_text()
    enums["tc_act"] = tc_actions(pkt_cls)
    if not enums["tc_act"]:
        raise SystemExit(f"no TC_ACT_* values in {ns.pkt_cls}")
    libbpf = re.search(r"LIBBPF_\w+", defs)
    pins = [
        f"{ns.btf} of Linux {os.uname().release} (sha256 {hashlib.sha256(btf).hexdigest()[:16]})",
        f"{ns.helper_defs} (sha256 {hashlib.sha256(defs.encode()).hexdigest()[:16]})"
        + (f" {libbpf[0]}" if libbpf else ""),
        f"{ns.pkt_cls} (sha256 {hashlib.sha256(pkt_cls.encode()).hexdigest()[:16]})",
    ]
    text = _ruff_format(render(enums, helper_protos(defs), pins, structs))
    if ns.check:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run scripts/gen_uapi.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
