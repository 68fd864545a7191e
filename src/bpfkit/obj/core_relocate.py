"""CO-RE: rewrite field offsets, sizes and existence checks for the running kernel's types.

A CO-RE relocation (``.BTF.ext``) names an instruction, a local BTF type and an access
path (``"0:1:2"``: index into the root, then member or array indices).  As libbpf does
(``relo_core.c``), the path is turned into names (``task.real_parent.tgid``), the kernel
types with the same name (``___flavor`` suffixes ignored) are searched for the same
names, and the instruction gets the target's value: a byte offset, a size, an existence
flag, a type id or an enumerator's value.  A field missing in the kernel "poisons" the
instruction (a call to a helper that does not exist, ``0xbad2310`` as libbpf uses) so
the verifier complains only if that code can run.

Supported kinds: FIELD_BYTE_OFFSET, FIELD_BYTE_SIZE, FIELD_EXISTS, FIELD_SIGNED,
FIELD_LSHIFT_U64, FIELD_RSHIFT_U64 (bitfields, little-endian), TYPE_ID_LOCAL,
TYPE_ID_TARGET, TYPE_EXISTS, TYPE_MATCHES (by name and compatibility, as libbpf's
TYPE_EXISTS; libbpf's matching is stricter), TYPE_SIZE, ENUMVAL_EXISTS, ENUMVAL_VALUE.
Type-based kinds look the root up as written (a typedef as a typedef) and give 0 for a
type the kernel lacks; a relocation on an anonymous type is an error, as in libbpf.
Pure: both BTFs are given; nothing here reads the kernel.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, replace

from bpfkit.btf import types as T
from bpfkit.btf.btf import Btf
from bpfkit.btf.ext import BtfExt, CoreRelo, CoreReloKind
from bpfkit.btf.lazy import LazyBtf
from bpfkit.errors import BpfkitError, ObjectError
from bpfkit.isa.insn import Insn
from bpfkit.obj.spec import ObjectSpec, ProgramSpec

K = CoreReloKind
POISON_HELPER = 0xBAD2310
LDDW, CALL = 0x18, 0x85
_CLASS_ALU, _CLASS_ALU64, _CLASS_LDX, _CLASS_ST, _CLASS_STX = 0x04, 0x07, 0x01, 0x02, 0x03
_FIELD_KINDS = {
    K.FIELD_BYTE_OFFSET,
    K.FIELD_BYTE_SIZE,
    K.FIELD_EXISTS,
    K.FIELD_SIGNED,
    K.FIELD_LSHIFT_U64,
    K.FIELD_RSHIFT_U64,
}


@dataclass(frozen=True, slots=True)
class CoreResult:
    """What one relocation resolved to: ``value`` (None: poison the instruction)."""

    relo: CoreRelo
    value: int | None
    why: str  # "task_struct.real_parent.tgid -> offset 2440" or the reason for failing
    field_size: int = 0  # FIELD_BYTE_OFFSET: the kernel field's size (loads are resized)
    signed: bool = False
    local_size: int = 0  # the field's size as compiled


def essential_name(name: str) -> str:
    """``task_struct`` for ``task_struct___v2`` (libbpf's flavor convention)."""
    i = name.rfind("___")
    while i > 0:
        if name[i - 1] != "_" and i + 3 < len(name) and name[i + 3] != "_":
            return name[:i]
        i = name.rfind("___", 0, i)
    return name


class _Targets:
    """Kernel types indexed by essential name, built once per target BTF (name by name
    for the kernel's, whose types are decoded on demand: bpfkit.btf.lazy)."""

    def __init__(self, target: Btf) -> None:
        self.btf = target
        self.by_name: dict[str, list[T.Type]] = {}
        self.lazy = isinstance(target, LazyBtf)
        if not self.lazy:
            for t in target.types:
                if t.name:
                    self.by_name.setdefault(essential_name(t.name), []).append(t)

    def candidates(self, local: T.Type) -> list[T.Type]:
        name = essential_name(local.name)
        want = _kind_group(local.kind)
        if self.lazy and name not in self.by_name:
            assert isinstance(self.btf, LazyBtf)
            named = self.btf.named_like(name)
            self.by_name[name] = [self.btf.types[i] for n, i in named if essential_name(n) == name]
        return [t for t in self.by_name.get(name, []) if _kind_group(t.kind) == want]


@functools.lru_cache(maxsize=4)
def _targets_for(target: Btf) -> _Targets:
    # Indexing the kernel's ~100k types takes tens of milliseconds: once per target BTF
    # (the kernel's is parsed once per process), not once per object.
    return _Targets(target)


def _kind_group(kind: T.Kind) -> str:
    if kind in (T.Kind.STRUCT, T.Kind.UNION, T.Kind.FWD):
        return "composite"
    if kind in (T.Kind.ENUM, T.Kind.ENUM64):
        return "enum"
    return kind.name


def _strip(btf: Btf, type_id: int) -> T.Type:
    return btf.resolve(type_id)


_MODS = (T.Const, T.Volatile, T.Restrict, T.TypeTag)


def _as_written(btf: Btf, relo: CoreRelo) -> T.Type:
    """The relocation's root type without const/volatile but with its typedef: libbpf
    looks a ``typedef foo_t`` up as the kernel's typedefs called foo_t, not as the type
    it stands for (which may be anonymous)."""
    t = btf.type(relo.type_id)
    for _ in range(32):
        if not isinstance(t, _MODS):
            break
        t = btf.type(t.type)
    if not t.name:
        raise ObjectError(
            f"CO-RE relocation on an anonymous {t.kind.name.lower()} (type {relo.type_id}): "
            "libbpf does not support it either; give the type a name"
        )
    return t


def _compatible(local: Btf, lid: int, target: Btf, tid: int, depth: int = 32) -> bool:
    """libbpf's ``bpf_core_types_are_compat``: same kind once typedefs and modifiers are
    skipped; pointers, arrays and function prototypes compared recursively."""
    lt, tt = _strip(local, lid), _strip(target, tid)
    if _kind_group(lt.kind) != _kind_group(tt.kind) or depth <= 0:
        return False
    if isinstance(lt, T.Int) and isinstance(tt, T.Int):
        return lt.bit_offset == 0 and tt.bit_offset == 0
    if isinstance(lt, T.Ptr) and isinstance(tt, T.Ptr):
        return _compatible(local, lt.type, target, tt.type, depth - 1)
    if isinstance(lt, T.Array) and isinstance(tt, T.Array):
        return _compatible(local, lt.type, target, tt.type, depth - 1)
    if isinstance(lt, T.FuncProto) and isinstance(tt, T.FuncProto):
        if len(lt.params) != len(tt.params):
            return False
        pairs = [(lp.type, tp.type) for lp, tp in zip(lt.params, tt.params, strict=True)]
        return all(
            _compatible(local, a, target, b, depth - 1)
            for a, b in [(lt.return_type, tt.return_type), *pairs]
        )
    return True


def _find_member(btf: Btf, st: T.Struct, name: str, base_bits: int) -> tuple[T.Member, int] | None:
    """The member called ``name`` of ``st``, looking into anonymous members, with its bit
    offset from the start of the outermost struct."""
    for m in st.members:
        if m.name == name:
            return m, base_bits + m.bit_offset
        if not m.name:
            inner = _strip(btf, m.type)
            if isinstance(inner, T.Struct):
                found = _find_member(btf, inner, name, base_bits + m.bit_offset)
                if found is not None:
                    return found
    return None


@dataclass(frozen=True, slots=True)
class _Access:
    name: str | None  # member name, or None for an array index
    index: int


def _local_path(local: Btf, relo: CoreRelo) -> tuple[T.Type, list[_Access], str]:
    """The root type, the named accesses (anonymous members skipped), and text."""
    try:
        idx = [int(x) for x in relo.access.split(":")]
    except ValueError:
        raise ObjectError(f"CO-RE relocation: bad access string {relo.access!r}") from None
    root = _strip(local, relo.type_id)
    path = [_Access(None, idx[0])]
    text = root.name or "(anon)"
    t: T.Type = root
    for i in idx[1:]:
        if isinstance(t, T.Struct):
            if i >= len(t.members):
                raise ObjectError(f"CO-RE relocation: member {i} of {t.name!r} does not exist")
            m = t.members[i]
            if m.name:
                path.append(_Access(m.name, i))
                text += f".{m.name}"
            t = _strip(local, m.type)
        elif isinstance(t, T.Array):
            path.append(_Access(None, i))
            text += f"[{i}]"
            t = _strip(local, t.type)
        else:
            raise ObjectError(f"CO-RE relocation: cannot index into {t.kind.name} {t.name!r}")
    return root, path, text


@dataclass(frozen=True, slots=True)
class _Field:
    """Where a field is, computed as libbpf's ``bpf_core_calc_field_relo`` does."""

    byte_off: int  # of the load that reads it (aligned down for a bitfield)
    byte_sz: int  # of that load
    signed: bool
    lshift: int  # FIELD_LSHIFT_U64 / FIELD_RSHIFT_U64: extract the field from the load
    rshift: int


def _match_field(target: Btf, cand: T.Type, path: list[_Access]) -> _Field | None:
    """The field the path names in candidate root ``cand``, or None."""
    t = _strip(target, cand.id)
    bits = path[0].index * 8 * _size(target, t)
    member: T.Member | None = None
    for acc in path[1:]:
        if acc.name is None:
            if not isinstance(t, T.Array):
                return None
            elem = _strip(target, t.type)
            bits += acc.index * 8 * _size(target, elem)
            t, member = elem, None
        else:
            if not isinstance(t, T.Struct):
                return None
            found = _find_member(target, t, acc.name, 0)
            if found is None:
                return None
            member, off = found
            bits += off
            t = _strip(target, member.type)
    byte_sz = _size(target, t)
    signed = (isinstance(t, T.Int) and t.signed) or (isinstance(t, T.Enum) and t.signed)
    bit_sz = member.bitfield_size if member is not None else 0
    if not bit_sz:
        byte_off = bits // 8
        bit_sz = byte_sz * 8
    else:
        # The smallest naturally aligned load (from the underlying type's size up) that
        # holds the whole bitfield.
        byte_sz = max(byte_sz, 1)
        byte_off = bits // 8 // byte_sz * byte_sz
        while bits + bit_sz - byte_off * 8 > byte_sz * 8:
            if byte_sz >= 8:
                return None  # no single load reads it
            byte_sz *= 2
            byte_off = bits // 8 // byte_sz * byte_sz
    lshift = 64 - (bits + bit_sz - byte_off * 8)  # little-endian targets
    return _Field(byte_off, byte_sz, signed, lshift, 64 - bit_sz)


def _size(btf: Btf, t: T.Type) -> int:
    try:
        return btf.size_of(t.id)
    except BpfkitError:
        return 0


def resolve(local: Btf, targets: _Targets, relo: CoreRelo) -> CoreResult:
    """Resolve one relocation against the kernel's types."""
    kind = relo.kind
    if kind == K.TYPE_ID_LOCAL:
        return CoreResult(relo, relo.type_id, f"local type id {relo.type_id}")
    written = _as_written(local, relo)
    root = _strip(local, relo.type_id)
    cands = targets.candidates(written)
    if kind in (K.TYPE_EXISTS, K.TYPE_MATCHES, K.TYPE_ID_TARGET, K.TYPE_SIZE):
        cands = [c for c in cands if _compatible(local, written.id, targets.btf, c.id)]
    if kind in (K.TYPE_EXISTS, K.TYPE_MATCHES):
        found = "found" if cands else "absent"
        return CoreResult(relo, int(bool(cands)), f"{written.name}: {found}")
    if kind in (K.TYPE_ID_TARGET, K.TYPE_SIZE):
        if not cands:  # libbpf: type-based relocations give 0 for a missing type
            return CoreResult(relo, 0, f"{written.name}: absent -> 0")
        c = cands[0]
        value = c.id if kind == K.TYPE_ID_TARGET else _size(targets.btf, c)
        return CoreResult(relo, value, f"{root.name} -> {value}")
    if kind in (K.ENUMVAL_EXISTS, K.ENUMVAL_VALUE):
        if not isinstance(root, T.Enum):
            raise ObjectError(f"CO-RE enum relocation on {root.kind.name} {root.name!r}")
        try:
            index = int(relo.access)
            enumerator = root.values[index].name
        except (ValueError, IndexError):
            raise ObjectError(f"CO-RE relocation: bad enumerator access {relo.access!r}") from None
        want = essential_name(enumerator)
        for c in cands:
            t = _strip(targets.btf, c.id)
            if not isinstance(t, T.Enum):
                continue
            for ev in t.values:
                if essential_name(ev.name) == want:
                    v = ev.value
                    return CoreResult(
                        relo, 1 if kind == K.ENUMVAL_EXISTS else v, f"{root.name}::{ev.name}={v}"
                    )
        if kind == K.ENUMVAL_EXISTS:
            return CoreResult(relo, 0, f"{root.name}::{enumerator} absent")
        return CoreResult(relo, None, f"no enumerator {enumerator!r} in the kernel")
    if kind in _FIELD_KINDS:
        _, path, text = _local_path(local, relo)
        results = {m for c in cands if (m := _match_field(targets.btf, c, path)) is not None}
        if kind == K.FIELD_EXISTS:
            return CoreResult(
                relo, int(bool(results)), f"{text}: {'exists' if results else 'absent'}"
            )
        if not results:
            return CoreResult(relo, None, f"{text}: not in the kernel's types")
        if len(results) > 1:
            offsets = sorted(r.byte_off for r in results)
            raise ObjectError(f"CO-RE relocation {text}: kernel types disagree ({offsets})")
        f = results.pop()
        if kind == K.FIELD_BYTE_OFFSET:
            root, _, _ = _local_path(local, relo)
            mine = _match_field(local, root, path)
            local_size = mine.byte_sz if mine else 0
            return CoreResult(
                relo, f.byte_off, f"{text} -> {f.byte_off}", f.byte_sz, f.signed, local_size
            )
        by_kind: dict[int, int] = {
            K.FIELD_BYTE_SIZE: f.byte_sz,
            K.FIELD_SIGNED: int(f.signed),
            K.FIELD_LSHIFT_U64: f.lshift,
            K.FIELD_RSHIFT_U64: f.rshift,
        }
        value = by_kind[kind]
        return CoreResult(relo, value, f"{text} -> {value}")
    raise ObjectError(f"CO-RE relocation kind {kind} is not supported")


_SIZE_BITS = {4: 0x00, 2: 0x08, 1: 0x10, 8: 0x18}


def _resize(insn: Insn, res: CoreResult) -> Insn:
    """A load of a field whose size differs in the kernel reads the kernel's size, as
    libbpf does for unsigned fields (a load zero-extends, so signed ones cannot be)."""
    if (
        res.relo.kind != K.FIELD_BYTE_OFFSET
        or insn.opcode & 0x07 != _CLASS_LDX
        or res.field_size not in _SIZE_BITS
        or res.signed
        or res.field_size == res.local_size
        or _SIZE_BITS.get(res.local_size) != insn.opcode & 0x18  # a partial read: keep it
    ):
        return insn
    return replace(insn, opcode=(insn.opcode & ~0x18) | _SIZE_BITS[res.field_size])


_POISON = Insn(
    CALL, 0, 0, 0, POISON_HELPER - (1 << 32) if POISON_HELPER >= 1 << 31 else POISON_HELPER
)


def _patch(insn: Insn, value: int | None) -> Insn:
    if value is None:
        return _POISON
    cls = insn.opcode & 0x07
    if insn.opcode == LDDW:
        return Insn.lddw(insn.dst, value, insn.src)
    if cls in (_CLASS_ALU, _CLASS_ALU64) and not insn.opcode & 0x08:
        return replace(insn, imm=value)
    if cls in (_CLASS_LDX, _CLASS_ST, _CLASS_STX):
        return replace(insn, off=value)
    raise ObjectError(f"CO-RE relocation on instruction opcode {insn.opcode:#04x}")


def apply_core(
    obj: ObjectSpec,
    local: Btf,
    ext: BtfExt,
    target: Btf,
    programs: Iterable[str] | None = None,
) -> tuple[ObjectSpec, list[CoreResult]]:
    """``obj`` with the CO-RE relocations of ``ext`` applied for ``target``: in the
    programs named (default all) and in every sub-program."""
    names = None if programs is None else set(programs)
    if not any(ext.core_relos.values()):
        return obj, []
    targets = _targets_for(target)
    results: list[CoreResult] = []
    out: list[ProgramSpec] = []
    for p in obj.programs:
        relos = [
            r
            for r in ext.core_relos.get(p.section, ())
            if p.offset <= r.insn_off < p.offset + p.size
        ]
        if not relos or (names is not None and not p.is_subprog and p.name not in names):
            out.append(p)
            continue
        out.append(_apply(p, local, targets, relos, results))
    return replace(obj, programs=tuple(out)), results


def _apply(
    p: ProgramSpec, local: Btf, targets: _Targets, relos: Iterable[CoreRelo], out: list[CoreResult]
) -> ProgramSpec:
    index: dict[int, int] = {}
    slot = 0
    for i, insn in enumerate(p.insns):
        index[slot] = i
        slot += insn.width
    insns: list[Insn | tuple[Insn, Insn]] = list(p.insns)
    for r in relos:
        res = resolve(local, targets, r)
        out.append(res)
        at = index.get((r.insn_off - p.offset) // 8)
        if at is None:
            raise ObjectError(f"CO-RE relocation at {p.section}+{r.insn_off}: not an instruction")
        old = insns[at]
        if isinstance(old, tuple):
            continue  # already poisoned
        if res.value is None and old.opcode == LDDW:
            # Both slots of an lddw become the poison call, as libbpf does, so that the
            # verifier refuses the program if they can run (and the slots do not move).
            insns[at] = (_POISON, _POISON)
        else:
            insns[at] = _resize(_patch(old, res.value), res)
    flat = [x for i in insns for x in (i if isinstance(i, tuple) else (i,))]
    return replace(p, insns=tuple(flat))
