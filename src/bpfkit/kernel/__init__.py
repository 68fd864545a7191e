"""The kernel layer: load programs and maps, attach, read what they produce.

Everything here owns what it opens (``close()`` and ``with``).  Modules:
:mod:`.program` (load_program, Program, test_run), :mod:`.maps` (create_map, Map),
:mod:`.collection` (load_collection: a whole object), :mod:`.info` (program/map info,
program listing), :mod:`.pins` (bpffs), :mod:`.features` (what this kernel can do).
:mod:`.object_maps` (an object's maps and global data), :mod:`.btf_load` (BTF_LOAD),
:mod:`.target` (the running kernel as :mod:`bpfkit.obj.prepare` sees it: BTF, config,
kallsyms), :mod:`.symbols` (the one /proc/kallsyms reader), :mod:`.render` (text).
Importing this package has no side effects and imports none of its modules.
"""
