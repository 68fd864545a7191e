"""A Python module with decorated programs -> BPF assembly -> an ELF object, no LLVM involved.

::

    compile_file("prog.py") -> Compiled        # imports the module under another name
    compile_module(module)  -> Compiled
    Compiled.obj (ELF bytes), .asm (the assembly text), .spec (ObjectSpec), .programs

The module is imported (so its maps, structs, constants and annotations are real objects;
a ``if __name__ == "__main__":`` block does not run) and its source parsed; each decorated
function is lowered (:mod:`bpfkit.lang.lower`), register-allocated and emitted
(:mod:`bpfkit.lang.emit`), and the whole assembled by bpfkit's assembler with ``.maps``,
``.data``/``.bss``/``.rodata``, ``license``, ``.BTF`` and ``.BTF.ext``
(:mod:`bpfkit.lang.btfgen`).
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass, field
from types import ModuleType

from bpfkit.errors import AsmError, CompileError
from bpfkit.lang.decl import MapDecl, Section, section_of
from bpfkit.lang.types import ArrayType, IntType, StructType, Type, bpf_type, i32, pack
from bpfkit.uapi import MapType

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

    from bpfkit.lang.emit import Emitted
    from bpfkit.lang.lower import Globals
    from bpfkit.obj.spec import ObjectSpec

LICENSE = "GPL"
# Map types described by key_size/value_size rather than key/value types (as libbpf does).
_SIZED = {MapType.PERF_EVENT_ARRAY, MapType.PROG_ARRAY}


@dataclass
class Compiled:
    """The result of compiling a module."""

    obj: bytes
    asm: str
    path: str
    programs: dict[str, Section] = field(default_factory=dict)
    maps: dict[str, MapDecl] = field(default_factory=dict)
    data: dict[str, tuple[str, Type, bool]] = field(default_factory=dict)
    stack: dict[str, int] = field(default_factory=dict)
    _spec: ObjectSpec | None = None
    key: bytes | None = None  # the compile cache's key (bpfkit.lang.cache), when cached
    _stored_spec: bytes | None = field(default=None, repr=False)  # the cache's pickled spec

    @property
    def spec(self) -> ObjectSpec:
        """The object read back (bpfkit's ObjectSpec, for the VM and the loader): from the
        cache entry when there is one (read only now: a load of a prepared object from
        the cache does not need it), else read from :attr:`obj`."""
        if self._spec is None and self._stored_spec is not None:
            from bpfkit.lang import cache

            self._spec = cache.load_spec(self._stored_spec)
            self._stored_spec = None
        if self._spec is None:
            from bpfkit.obj.reader import read_object

            self._spec = read_object(self.obj, name=self.path)
        return self._spec


def import_file(path: str) -> ModuleType:
    """Import the program file at ``path`` without running its ``__main__`` block."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise CompileError(f"{path}: no such file", file=path)
    modname = "_bpfkit_prog_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise CompileError(f"{path}: cannot import", file=path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except CompileError:
        raise
    except SyntaxError as e:
        raise CompileError(
            f"Python syntax error: {e.msg}",
            file=path,
            line=e.lineno or 0,
            column=e.offset or 0,
            text=(e.text or "").rstrip("\n"),
        ) from None
    except Exception as e:  # noqa: BLE001 - any failure of the user's module
        raise CompileError(
            f"importing the program file failed: {type(e).__name__}: {e}", file=path
        ) from None
    return module


def compile_file(path: str) -> Compiled:
    """Compile the program file at ``path``."""
    return compile_module(import_file(path))


def compile_module(module: ModuleType | str) -> Compiled:
    """Compile every decorated program of ``module`` (a module, or its name)."""
    if isinstance(module, str):
        module = sys.modules[module] if module in sys.modules else importlib.import_module(module)
    file = inspect.getsourcefile(module) or getattr(module, "__file__", None) or "<module>"
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        raise CompileError(f"{file}: cannot read the module's source", file=file) from None
    return compile_cached(source, vars(module), file)


def compile_cached(source: str, namespace: dict[str, Any], file: str) -> Compiled:
    """:func:`compile_source` through the on-disk cache (:mod:`bpfkit.lang.cache`): the
    same source, values, bpfkit and kernel give the stored object without compiling."""
    from bpfkit.lang import cache

    key = cache.key(source, namespace, file)
    entry = cache.load(key, file)
    if entry is not None:
        hit = _from_entry(entry, namespace, file)
        if hit is not None:
            hit.key = key
            return hit
    compiled = compile_source(source, namespace, file)
    compiled.key = key
    cache.store(
        key,
        file,
        {
            "obj": compiled.obj,
            "asm": compiled.asm,
            "programs": list(compiled.programs),
            "data": [(name, const) for name, (_, _, const) in compiled.data.items()],
            "stack": dict(compiled.stack),
            "spec": cache.dump_spec(compiled.spec),
        },
    )
    return compiled


def _from_entry(entry: dict[str, Any], ns: dict[str, Any], file: str) -> Compiled | None:
    """The Compiled a cache entry stands for, its declarations taken from ``ns`` (None if
    they no longer match it)."""

    try:
        programs = {name: section_of(ns.get(name)) for name in entry["programs"]}
        annotations = ns.get("__annotations__", {})
        data: dict[str, tuple[str, Type, bool]] = {}
        for name, const in entry["data"]:
            ann = annotations[name]
            if isinstance(ann, str):
                ann = eval(ann, dict(ns))  # noqa: S307 - the user's own annotation
            t = bpf_type(ann[1] if const else ann)
            if t is None:
                return None
            data[name] = (name, t, const)
        stack = {str(k): int(v) for k, v in entry["stack"].items()}
    except Exception:  # noqa: BLE001 - an entry that does not fit: compile instead
        return None
    if any(s is None for s in programs.values()):
        return None
    maps = {name: obj for name, obj in ns.items() if isinstance(obj, MapDecl)}
    sections = {name: s for name, s in programs.items() if s is not None}
    stored = entry.get("spec")
    return Compiled(
        entry["obj"],
        entry["asm"],
        file,
        sections,
        maps,
        data,
        stack,
        _stored_spec=stored if isinstance(stored, bytes) else None,
    )


def compile_source(source: str, namespace: dict[str, Any], file: str) -> Compiled:
    """Compile ``source`` whose module-level objects are ``namespace``."""
    # The code generator is imported here, not above: a program found in the cache
    # (compile_module) runs without it.
    from bpfkit.asm.assemble import assemble
    from bpfkit.lang.ctx import context
    from bpfkit.lang.emit import emit_function
    from bpfkit.lang.lower import Globals, Lowerer

    tree = ast.parse(source, file)
    lines = source.splitlines()
    g = Globals(namespace=namespace)
    for name, obj in namespace.items():
        if isinstance(obj, MapDecl):
            g.maps[name] = obj
    _globals(tree, namespace, g, file, lines)
    for name, obj in namespace.items():
        if name in g.maps or name in g.data or name.startswith("__"):
            continue
        if isinstance(obj, (bool, int)):
            g.consts[name] = int(obj)
    try:
        from bpfkit.lang.core import Core

        g.core = Core()
    except ImportError:  # pragma: no cover
        g.core = None
    funcs: list[tuple[ast.FunctionDef, Section]] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            sec = section_of(namespace.get(node.name))
            if sec is not None:
                funcs.append((node, sec))
    if not funcs:
        raise CompileError(
            f"{file}: no BPF program: decorate a function with @tracepoint(...), @xdp, ...",
            file=file,
        )
    subs = _functions(tree, namespace, funcs, g, file, lines)
    emitted: list[Emitted] = []
    for node, sec in funcs:
        ctx = context(sec.kind, sec.target)
        if sec.kind == "tracepoint" and not ctx.fields:
            raise CompileError(
                f"tracepoint {sec.target!r} not found in tracefs (events/{sec.target}/format): "
                "check the category/name (ls /sys/kernel/tracing/events)",
                file=file,
                line=node.lineno,
                column=node.col_offset + 1,
                text=lines[node.lineno - 1] if node.lineno <= len(lines) else "",
            )
        ret = i32
        if node.returns is not None:
            t = bpf_type(_eval(node.returns, namespace))
            if not isinstance(t, IntType):
                raise CompileError("a program returns an integer type", file=file, line=node.lineno)
            ret = t
        lw = Lowerer(node, node.name, sec.section, ctx, g, file, lines, ret)
        fn = lw.lower()
        emitted.append(emit_function(fn, f"{file}:{node.lineno}"))
    programs = list(emitted)
    for node in subs:
        lw = Lowerer(node, node.name, ".text", context(""), g, file, lines, g.funcs[node.name][1])
        emitted.append(emit_function(lw.lower(), f"{file}:{node.lineno}"))
    asm = _assembly(emitted, g, file, lines)
    try:
        obj = assemble(asm, f"{file} (generated assembly)")
    except AsmError as e:  # a compiler bug: show where in the generated text
        raise CompileError(
            f"internal error: the generated assembly does not assemble: {e}", file=file
        ) from e
    return Compiled(
        obj,
        asm,
        file,
        {e.name: s for e, (_, s) in zip(programs, funcs, strict=True)},
        dict(g.maps),
        dict(g.data),
        {e.name: e.stack for e in emitted},
    )


def _functions(
    tree: ast.Module,
    ns: dict[str, Any],
    progs: list[tuple[ast.FunctionDef, Section]],
    g: Globals,
    file: str,
    lines: list[str],
) -> list[ast.FunctionDef]:
    """The module's plain functions the programs call (directly or not): BPF functions,
    with integer parameters and result (``def log2(v: u64) -> u32``), put in ``.text``."""
    defs = {
        n.name: n
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and section_of(ns.get(n.name)) is None
    }
    wanted: list[ast.FunctionDef] = []
    todo = [node for node, _ in progs]
    while todo:
        body = todo.pop()
        for sub in ast.walk(body):
            if not isinstance(sub, ast.Name) or sub.id not in defs:
                continue
            node = defs.pop(sub.id)
            where = {"file": file, "line": node.lineno, "column": node.col_offset + 1,
                     "text": lines[node.lineno - 1]}  # fmt: skip
            a = node.args
            if a.vararg or a.kwarg or a.kwonlyargs or a.defaults or len(a.args) > 5:
                raise CompileError(
                    f"BPF function {node.name}: up to 5 plain parameters",
                    **where,  # type: ignore[arg-type]
                )
            ptypes: list[IntType] = []
            for p in a.posonlyargs + a.args:
                t = bpf_type(_eval(p.annotation, ns)) if p.annotation is not None else None
                if not isinstance(t, IntType):
                    raise CompileError(
                        f"BPF function {node.name}: annotate parameter {p.arg} with an "
                        "integer type (u8..u64, i8..i64)",
                        **where,  # type: ignore[arg-type]
                    )
                ptypes.append(t)
            ret = None
            if node.returns is not None and not (
                isinstance(node.returns, ast.Constant) and node.returns.value is None
            ):
                rt = bpf_type(_eval(node.returns, ns))
                if not isinstance(rt, IntType):
                    raise CompileError(
                        f"BPF function {node.name} returns an integer type or None",
                        **where,  # type: ignore[arg-type]
                    )
                ret = rt
            g.funcs[node.name] = (ptypes, ret)
            wanted.append(node)
            todo.append(node)
    return wanted


def _eval(node: ast.expr, namespace: dict[str, Any]) -> Any:
    return eval(compile(ast.Expression(node), "<annotation>", "eval"), dict(namespace))  # noqa: S307


def _globals(tree: ast.Module, ns: dict[str, Any], g: Globals, file: str, lines: list[str]) -> None:
    """Module-level ``name: T = value``: globals in .data, .bss or .rodata (Const[T])."""
    for node in tree.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        try:
            ann = _eval(node.annotation, ns)
        except Exception:  # noqa: BLE001 - not a BPF global: left to Python
            continue
        const = isinstance(ann, tuple) and len(ann) == 2 and ann[0] == "const"
        t = bpf_type(ann[1] if const else ann)
        if t is None:
            continue
        name = node.target.id
        value = ns.get(name, 0)
        try:
            data = pack(t, value if value is not None else 0)
        except (TypeError, ValueError) as e:
            raise CompileError(
                f"global {name}: {e}", file=file, line=node.lineno, column=node.col_offset + 1
            ) from None
        if isinstance(t, IntType) and isinstance(value, int) and not t.min <= value <= t.max:
            raise CompileError(
                f"global {name} = {value} does not fit in {t.name}",
                file=file,
                line=node.lineno,
                column=node.col_offset + 1,
                text=lines[node.lineno - 1],
            )
        section = ".rodata" if const else (".data" if any(data) else ".bss")
        g.data[name] = (name, t, const)
        g.data_init[name] = (section, data, t)


def _assembly(funcs: list[Emitted], g: Globals, file: str, lines: list[str]) -> str:
    from bpfkit.lang import btfgen
    from bpfkit.lang.emit import function_text

    out: list[str] = [f'\t.file\t"{os.path.basename(file)}"']
    for i, e in enumerate(funcs):
        out.append(function_text(e, i))
    btf = btfgen.BtfBuilder()
    int_t = btf.int_type("int", 4, True)
    # .maps
    map_entries = []
    if g.maps:
        out.append('\t.section\t".maps","aw",@progbits')
        off = 0
        for name, m in g.maps.items():
            members: list[tuple[str, int, int]] = []

            def num(mname: str, value: int, members: list[tuple[str, int, int]] = members) -> None:
                members.append((mname, btf.ptr(btf.array(int_t, value)), len(members) * 64))

            num("type", int(m.map_type))
            if m.max_entries:
                num("max_entries", m.max_entries)
            if m.map_type in _SIZED:
                num("key_size", 4)
                num("value_size", 4)
            elif m.key is not None and m.value is not None:
                members.append(("key", btf.ptr(btf.of(m.key)), len(members) * 64))
                members.append(("value", btf.ptr(btf.of(m.value)), len(members) * 64))
            if m.flags:
                num("map_flags", m.flags)
            size = 8 * len(members)
            st = btf.struct_type("", members, size)
            var = btf.var(name, st)
            map_entries.append((var, off, size))
            out += [
                f"\t.globl\t{name}",
                "\t.p2align\t3",
                f"\t.type\t{name},@object",
                f"{name}:",
                f"\t.zero\t{size}",
                f"\t.size\t{name}, {size}",
            ]
            off += size
        btf.datasec(".maps", map_entries, off)
    # .data / .bss / .rodata
    data = g.data_init
    for section in (".data", ".bss", ".rodata"):
        items = [(n, d, t) for n, (s, d, t) in data.items() if s == section]
        strings = list(g.strings.items()) if section == ".rodata" else []
        if not items and not strings:
            continue
        out.append(
            f'\t.section\t"{section}","a{"" if section == ".rodata" else "w"}",'
            f"{'@nobits' if section == '.bss' else '@progbits'}"
        )
        for n, d, t in items:
            out += [
                f"\t.globl\t{n}",
                f"\t.p2align\t{max(t.align, 1).bit_length() - 1}",
                f"\t.type\t{n},@object",
                f"{n}:",
            ]
            if section == ".bss":
                out.append(f"\t.zero\t{len(d)}")
            else:
                out.append("\t.byte\t" + ",".join(str(b) for b in d))
            out.append(f"\t.size\t{n}, {len(d)}")
        for text, sym in strings:
            out += [f"{sym}:", "\t.byte\t" + ",".join(str(b) for b in text + b"\0")]
    out += ['\t.section\t"license","aw",@progbits', "\t.globl\t_license", "_license:",
            f'\t.asciz\t"{LICENSE}"', "\t.size\t_license, 4"]  # fmt: skip
    # Functions, line info, CO-RE.
    void_ptr = btf.ptr(0)
    func_info: dict[str, list[tuple[int, int]]] = {}
    line_info: dict[str, list[tuple[int, int, int, int]]] = {}
    core: dict[str, list[tuple[int, int, int, int]]] = {}
    fname = btf.name(os.path.abspath(file))
    base: dict[str, int] = {}  # bytes already in each section (programs sharing one)
    for e in funcs:
        at = base.get(e.section, 0)
        base[e.section] = at + e.size
        if e.static:
            ptypes, ret = g.funcs[e.name]
            pnames = e.param_names or [f"a{i}" for i in range(len(ptypes))]
            params = [(n, btf.of(t)) for n, t in zip(pnames, ptypes, strict=True)]
            proto = btf.func_proto(btf.of(ret) if ret is not None else 0, params)
            fid = btf.func(e.name, proto, linkage=0)
        else:
            proto = btf.func_proto(int_t, [("ctx", void_ptr)])
            fid = btf.func(e.name, proto)
        func_info.setdefault(e.section, []).append((at, fid))
        rows = line_info.setdefault(e.section, [])
        for off, line, col in e.line_info:
            src = lines[line - 1].strip() if 0 < line <= len(lines) else ""
            rows.append((at + off, fname, btf.name(src), line << 10 | min(col, 1023)))
        if e.core and g.core is not None:
            core.setdefault(e.section, []).extend(
                (at + off, g.core.local_id(btf, tid), btf.name(acc), kind)
                for off, tid, acc, kind in e.core
            )
    for sec in func_info:
        btf.name(sec)
    ext = btfgen.ext_blob(func_info, line_info, core, btf)
    out.append(btfgen.directives(".BTF", btf.blob()))
    out.append(btfgen.directives(".BTF.ext", ext))
    return "\n".join(out) + "\n"


__all__ = [
    "Compiled",
    "compile_cached",
    "compile_file",
    "compile_module",
    "compile_source",
    "import_file",
]
_ = (ArrayType, StructType)
