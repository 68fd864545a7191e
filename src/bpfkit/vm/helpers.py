"""Emulated kernel helpers, by name; ids come from the helper table (:mod:`bpfkit.uapi.helpers`).

Each helper takes the machine and the five argument registers and returns r0.  Errors
are returned as the kernel returns them (a negative errno); arguments the kernel's
verifier would have refused (a pointer to no memory, a register that is no map) stop the
program with a VmError instead.  A helper missing here stops the program with an error
that names it (see :meth:`bpfkit.vm.interp.Interpreter.compile`).
"""

from __future__ import annotations

import errno

from bpfkit.uapi.helpers import by_name
from bpfkit.vm.cpu import MAX_TAIL_CALLS, Cpu, HelperFn, TailCall
from bpfkit.vm.maps import PerfEventArray, ProgArray, RingBuf, VmMap
from bpfkit.vm.memory import Fault
from bpfkit.vm.printk import PrintkError, format_printk

M32 = 0xFFFF_FFFF
BPF_F_CURRENT_CPU = 0xFFFF_FFFF
BPF_F_INDEX_MASK = 0xFFFF_FFFF


def _err(code: int) -> int:
    return -code


def _map(m: Cpu, address: int, want: type[VmMap] = VmMap) -> VmMap:
    mp = m.map_handles.get(address)
    if mp is None:
        raise Fault(f"{address:#x} is not a map (expected a map loaded with lddw)")
    if not isinstance(mp, want):
        raise Fault(f"map {mp.name} is a {mp.type_name} map, this helper needs another type")
    return mp


def map_lookup_elem(m: Cpu, mp: int, key: int, a3: int, a4: int, a5: int) -> int:
    """``void *bpf_map_lookup_elem(map, key)``: the value's address or NULL."""
    vmap = _map(m, mp)
    if isinstance(vmap, (ProgArray, RingBuf, PerfEventArray)):
        raise Fault(f"bpf_map_lookup_elem on {vmap.type_name} map {vmap.name}")
    region = vmap.lookup(m.memory.read(key, vmap.key_size))
    return 0 if region is None else region.base


def map_update_elem(m: Cpu, mp: int, key: int, value: int, flags: int, a5: int) -> int:
    """``long bpf_map_update_elem(map, key, value, flags)``."""
    vmap = _map(m, mp)
    _writable(vmap, "bpf_map_update_elem")
    k = m.memory.read(key, vmap.key_size)
    return vmap.update(k, m.memory.read(value, vmap.value_size), flags)


def map_delete_elem(m: Cpu, mp: int, key: int, a3: int, a4: int, a5: int) -> int:
    """``long bpf_map_delete_elem(map, key)``."""
    vmap = _map(m, mp)
    _writable(vmap, "bpf_map_delete_elem")
    return vmap.delete(m.memory.read(key, vmap.key_size))


def _writable(vmap: VmMap, helper: str) -> None:
    """Programs may not change a read-only map (.rodata, BPF_F_RDONLY_PROG): the kernel's
    verifier refuses the program ("write into map forbidden"); the VM stops it."""
    if vmap.readonly:
        raise Fault(
            f"{helper} on read-only map {vmap.name}: the kernel refuses this program "
            "(write into map forbidden); programs cannot change .rodata or BPF_F_RDONLY_PROG maps"
        )


def _probe(m: Cpu, dst: int, size: int, src: int, user: bool) -> int:
    size &= M32
    if size:
        m.memory.check(dst, size, True)  # before anything of that size is made
    r = m.memory.find(src, size)
    data = None
    if r is not None and size:
        o = src - r.base
        data = bytes(r.buf[o : o + size])
    elif size == 0:
        data = b""
    else:
        data = m.env.probe(src, size, user)
    if data is None:
        m.memory.write(dst, bytes(size))  # the kernel zeroes the buffer on a fault
        return _err(errno.EFAULT)
    m.memory.write(dst, data)
    return 0


def probe_read_kernel(m: Cpu, dst: int, size: int, src: int, a4: int, a5: int) -> int:
    """``long bpf_probe_read_kernel(dst, size, unsafe_ptr)`` (and the legacy probe_read)."""
    return _probe(m, dst, size, src, False)


def probe_read_user(m: Cpu, dst: int, size: int, src: int, a4: int, a5: int) -> int:
    """``long bpf_probe_read_user(dst, size, unsafe_ptr)``."""
    return _probe(m, dst, size, src, True)


def _probe_str(m: Cpu, dst: int, size: int, src: int, user: bool) -> int:
    size &= M32
    if size == 0:
        return 0
    m.memory.check(dst, size, True)
    s = m.memory.read_cstr(src, size - 1)
    if s is None:
        s = m.env.probe_str(src, size - 1, user)
    if s is None:
        m.memory.write(dst, bytes(size))
        return _err(errno.EFAULT)
    m.memory.write(dst, s + b"\0")
    return len(s) + 1


def probe_read_kernel_str(m: Cpu, dst: int, size: int, src: int, a4: int, a5: int) -> int:
    """``long bpf_probe_read_kernel_str(dst, size, unsafe_ptr)``: length with the NUL."""
    return _probe_str(m, dst, size, src, False)


def probe_read_user_str(m: Cpu, dst: int, size: int, src: int, a4: int, a5: int) -> int:
    """``long bpf_probe_read_user_str(dst, size, unsafe_ptr)``: length with the NUL."""
    return _probe_str(m, dst, size, src, True)


def skb_load_bytes(m: Cpu, skb: int, offset: int, to: int, size: int, a5: int) -> int:
    """``long bpf_skb_load_bytes(skb, offset, to, len)``: packet bytes from skb->data on."""
    size &= M32
    offset &= M32
    if size:
        m.memory.check(to, size, True)
    p = m.ld_packet
    start = m.ld_offset + offset
    if p is None or offset > 0x7FFF_FFFF or start + size > p.size:
        m.memory.write(to, bytes(size))
        return _err(errno.EFAULT)
    m.memory.write(to, bytes(p.buf[start : start + size]))
    return 0


def ktime_get_ns(m: Cpu, a1: int, a2: int, a3: int, a4: int, a5: int) -> int:
    """``u64 bpf_ktime_get_ns(void)``: the caller's clock."""
    return m.env.now()


def trace_printk(m: Cpu, fmt: int, size: int, a3: int, a4: int, a5: int) -> int:
    """``long bpf_trace_printk(fmt, fmt_size, ...)``: formats and collects one message."""
    size &= M32
    raw = m.memory.read(fmt, size) if size else b""
    nul = raw.find(b"\0")
    if nul < 0:
        return _err(errno.EINVAL)  # the format must be NUL-terminated within fmt_size

    def read_string(address: int, limit: int) -> bytes | None:
        s = m.memory.read_cstr(address, limit)
        return s if s is not None else m.env.probe_str(address, limit, False)

    def read_memory(address: int, size: int) -> bytes | None:
        r = m.memory.find(address, 1)
        if r is None:
            return m.env.probe(address, size, False)
        o = address - r.base
        return bytes(r.buf[o : o + size])

    try:
        text = format_printk(raw[:nul], (a3, a4, a5), read_string, read_memory)
    except PrintkError as e:
        return _err(e.errno)
    m.output.append(text)
    return len(text)


def get_prandom_u32(m: Cpu, a1: int, a2: int, a3: int, a4: int, a5: int) -> int:
    """``u32 bpf_get_prandom_u32(void)``: from the caller's seed."""
    return m.env.prandom_u32()


def get_smp_processor_id(m: Cpu, a1: int, a2: int, a3: int, a4: int, a5: int) -> int:
    """``u32 bpf_get_smp_processor_id(void)``."""
    return m.env.cpu


def get_numa_node_id(m: Cpu, a1: int, a2: int, a3: int, a4: int, a5: int) -> int:
    """``long bpf_get_numa_node_id(void)``."""
    return m.env.numa_node


def tail_call(m: Cpu, ctx: int, mp: int, index: int, a4: int, a5: int) -> int:
    """``long bpf_tail_call(ctx, prog_array, index)``: does not return when it succeeds."""
    vmap = _map(m, mp, ProgArray)
    assert isinstance(vmap, ProgArray)
    index &= M32
    target = vmap.slots.get(index)
    if target is None or m.tail_calls >= MAX_TAIL_CALLS or m.load_program is None:
        return _err(errno.ENOENT)  # the program goes on after a failed tail call
    m.tail_calls += 1
    code = m.load_program(target)
    m.regs[1] = ctx
    raise TailCall(code)


def get_current_pid_tgid(m: Cpu, a1: int, a2: int, a3: int, a4: int, a5: int) -> int:
    """``u64 bpf_get_current_pid_tgid(void)``: tgid << 32 | pid."""
    return (m.env.tgid & M32) << 32 | (m.env.pid & M32)


def get_current_uid_gid(m: Cpu, a1: int, a2: int, a3: int, a4: int, a5: int) -> int:
    """``u64 bpf_get_current_uid_gid(void)``: gid << 32 | uid."""
    return (m.env.gid & M32) << 32 | (m.env.uid & M32)


def get_current_comm(m: Cpu, buf: int, size: int, a3: int, a4: int, a5: int) -> int:
    """``long bpf_get_current_comm(buf, size_of_buf)``: the name, NUL-padded (strscpy_pad)."""
    size &= M32
    if size == 0:
        return _err(errno.EINVAL)
    m.memory.check(buf, size, True)
    comm = m.env.comm[:15][: size - 1]
    m.memory.write(buf, comm + bytes(size - len(comm)))
    return 0


def perf_event_output(m: Cpu, ctx: int, mp: int, flags: int, data: int, size: int) -> int:
    """``long bpf_perf_event_output(ctx, map, flags, data, size)``: one sample."""
    vmap = _map(m, mp, PerfEventArray)
    assert isinstance(vmap, PerfEventArray)
    index = flags & BPF_F_INDEX_MASK
    cpu = m.env.cpu if index == BPF_F_CURRENT_CPU else index
    if cpu >= vmap.max_entries or flags >> 32:
        return _err(errno.E2BIG if cpu >= vmap.max_entries else errno.EINVAL)
    vmap.output(cpu, m.memory.read(data, size & M32))
    return 0


def ringbuf_output(m: Cpu, mp: int, data: int, size: int, flags: int, a5: int) -> int:
    """``long bpf_ringbuf_output(ringbuf, data, size, flags)``."""
    vmap = _map(m, mp, RingBuf)
    assert isinstance(vmap, RingBuf)
    return vmap.output(m.memory.read(data, size & M32))


def ringbuf_reserve(m: Cpu, mp: int, size: int, flags: int, a4: int, a5: int) -> int:
    """``void *bpf_ringbuf_reserve(ringbuf, size, flags)``: a record's address or NULL."""
    vmap = _map(m, mp, RingBuf)
    assert isinstance(vmap, RingBuf)
    if flags:
        return 0
    region = vmap.reserve(size & M32)
    return 0 if region is None else region.base


def _finish(m: Cpu, data: int, submit: bool) -> int:
    for vmap in m.map_handles.values():
        if isinstance(vmap, RingBuf) and vmap.finish(data, submit):
            return 0
    raise Fault(f"{data:#x} is not a ring buffer record reserved by this program")


def ringbuf_submit(m: Cpu, data: int, flags: int, a3: int, a4: int, a5: int) -> int:
    """``void bpf_ringbuf_submit(data, flags)``."""
    return _finish(m, data, True)


def ringbuf_discard(m: Cpu, data: int, flags: int, a3: int, a4: int, a5: int) -> int:
    """``void bpf_ringbuf_discard(data, flags)``."""
    return _finish(m, data, False)


EMULATED: dict[str, HelperFn] = {
    "bpf_map_lookup_elem": map_lookup_elem,
    "bpf_map_update_elem": map_update_elem,
    "bpf_map_delete_elem": map_delete_elem,
    "bpf_probe_read": probe_read_kernel,
    "bpf_probe_read_kernel": probe_read_kernel,
    "bpf_probe_read_user": probe_read_user,
    "bpf_probe_read_str": probe_read_kernel_str,
    "bpf_probe_read_kernel_str": probe_read_kernel_str,
    "bpf_probe_read_user_str": probe_read_user_str,
    "bpf_skb_load_bytes": skb_load_bytes,
    "bpf_ktime_get_ns": ktime_get_ns,
    "bpf_ktime_get_boot_ns": ktime_get_ns,
    "bpf_trace_printk": trace_printk,
    "bpf_get_prandom_u32": get_prandom_u32,
    "bpf_get_smp_processor_id": get_smp_processor_id,
    "bpf_get_numa_node_id": get_numa_node_id,
    "bpf_tail_call": tail_call,
    "bpf_get_current_pid_tgid": get_current_pid_tgid,
    "bpf_get_current_uid_gid": get_current_uid_gid,
    "bpf_get_current_comm": get_current_comm,
    "bpf_perf_event_output": perf_event_output,
    "bpf_ringbuf_output": ringbuf_output,
    "bpf_ringbuf_reserve": ringbuf_reserve,
    "bpf_ringbuf_submit": ringbuf_submit,
    "bpf_ringbuf_discard": ringbuf_discard,
}
"""Emulated helpers by their name in the helper table."""


def helpers_by_id(extra: dict[str, HelperFn] | None = None) -> dict[int, HelperFn]:
    """Emulated helpers (plus ``extra``, by name) keyed by helper id, via the helper table."""
    table: dict[int, HelperFn] = {}
    for name, fn in {**EMULATED, **(extra or {})}.items():
        helper = by_name(name)
        if helper is None:
            raise ValueError(f"{name} is not in the helper table")
        table[helper.id] = fn
    return table


def helper_names() -> dict[int, str]:
    """Every helper id of the table with its name (for 'not emulated' errors)."""
    from bpfkit.uapi.helpers import HELPERS

    return {h.id: h.name for h in HELPERS}


__all__ = ["EMULATED", "helper_names", "helpers_by_id"]
