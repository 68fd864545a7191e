"""bpftool's way of naming a kernel object on the command line: ``id N``, ``pinned PATH``
or ``name NAME`` (``prog``, ``map`` and ``link`` commands share it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from bpfkit.errors import KernelError

if TYPE_CHECKING:
    from bpfkit.syscalls import Fd

Kind = Literal["program", "map", "link"]
USAGE = "id N | pinned PATH | name NAME"
_FDINFO_KEY = {"program": "prog_type", "map": "map_type", "link": "link_type"}


def _by_id(kind: Kind, obj_id: int) -> Fd:
    from bpfkit.kernel import info

    if kind == "program":
        return info.prog_fd_by_id(obj_id)
    if kind == "map":
        return info.map_fd_by_id(obj_id)
    return info.link_fd_by_id(obj_id)


def _name_of(kind: Kind, fd: int) -> str:
    from bpfkit.kernel import info

    # Programs by the name bpftool matches: the full one from BTF past 15 characters.
    return info.prog_full_name(fd) if kind == "program" else info.map_info(fd).name


def _all_ids(kind: Kind) -> list[int]:
    from bpfkit.kernel import info

    if kind == "program":
        return list(info.prog_ids())
    if kind == "map":
        return list(info.map_ids())
    return list(info.link_ids())


def split_ref(words: list[str], kind: Kind) -> tuple[list[str], list[str]]:
    """``words`` as (the object reference, the words after it)."""
    if not words:
        return [], []
    if words[0] not in ("id", "pinned", "name") or (kind == "link" and words[0] == "name"):
        raise KernelError(f"expected {USAGE} to name a {kind}, got {words[0]!r}")
    if len(words) < 2:
        raise KernelError(f"{words[0]} needs a value: {USAGE}")
    return words[:2], words[2:]


def open_ref(ref: list[str], kind: Kind) -> list[Fd]:
    """Owned descriptors of the objects ``ref`` names (``name`` may match several; none
    is an error).  The caller closes them."""
    from bpfkit.kernel import info, pins

    how, value = ref
    if how == "id":
        try:
            obj_id = int(value, 0)
        except ValueError:
            raise KernelError(f"{kind} id {value!r} is not a number") from None
        return [_by_id(kind, obj_id)]
    if how == "pinned":
        fd = pins.get(value)
        # The info call answers for whatever the fd is: ask /proc which kind it is first.
        keys = info.fdinfo(fd.fd)
        if _FDINFO_KEY[kind] not in keys:
            fd.close()
            other = next((k for k, v in _FDINFO_KEY.items() if v in keys), "BPF object")
            raise KernelError(f"{value} is a pinned {other}, not a {kind}")
        return [fd]
    found: list[Fd] = []
    for obj_id in _all_ids(kind):
        try:
            fd = _by_id(kind, obj_id)
        except KernelError:
            continue  # gone since listed
        if _name_of(kind, fd.fd) == value:
            found.append(fd)
        else:
            fd.close()
    if not found:
        raise KernelError(f"no {kind} called {value!r} is loaded")
    return found


def open_one(ref: list[str], kind: Kind) -> Fd:
    """The one object ``ref`` names (a name matching several is an error)."""
    if not ref:
        raise KernelError(f"name the {kind}: {USAGE}")
    fds = open_ref(ref, kind)
    if len(fds) > 1:
        for fd in fds:
            fd.close()
        raise KernelError(f"{len(fds)} {kind}s are called {ref[1]!r}; name one by id")
    return fds[0]


def pin_ref(words: list[str], kind: Kind) -> str:
    """``bpftool <kind> pin id N PATH``: pin the object and say where."""
    from bpfkit.kernel import pins

    ref, rest = split_ref(words, kind)
    if len(rest) != 1:
        raise KernelError(f"usage: pin {USAGE} PATH")
    with open_one(ref, kind) as fd:
        pins.pin(fd.fd, rest[0])
    return rest[0]


def show_records(
    words: list[str], kind: Kind, record: Callable[[int], dict[str, Any]]
) -> tuple[list[dict[str, Any]], bool]:
    """``KIND show [REF]``: the records of the objects REF names, or of every one loaded
    (those freed while listed are skipped); and whether REF was given."""
    ref, rest = split_ref(words, kind)
    if rest:
        raise KernelError(f"unexpected {' '.join(rest)!r} after {' '.join(ref)}")
    records = []
    if ref:
        for fd in open_ref(ref, kind):
            with fd:
                records.append(record(fd.fd))
    else:
        for obj_id in _all_ids(kind):
            try:
                with _by_id(kind, obj_id) as fd:
                    records.append(record(fd.fd))
            except KernelError:
                continue  # gone since listed
    return records, bool(ref)


def print_records(
    records: list[dict[str, Any]],
    named: bool,
    as_json: bool,
    text: Callable[[dict[str, Any]], str],
) -> None:
    """Print what ``bpftool [-j] KIND show`` prints: with ``-j`` one object when a
    reference named exactly one, else a list; in text each record's lines."""
    if as_json:
        import json

        print(json.dumps(records[0] if named and len(records) == 1 else records, indent=2))
    else:
        for rec in records:
            print(text(rec))
