//! Maps.  Declare one with [`map!`](crate::map), which places it in the `.maps` section
//! that libbpf 1.x and bpfkit load (bpfkit build writes the BTF describing it):
//!
//! ```ignore
//! map! { static COUNTS: HashMap<u32, u64> = HashMap::new(10240); }
//! ```
//!
//! or with [`legacy_map!`](crate::legacy_map), a `struct bpf_map_def` in the `maps` section
//! (the seed's era, the kernel's samples/bpf and bpfkit's loader; libbpf 1.0 dropped it):
//!
//! ```ignore
//! legacy_map! { static COUNTS: HashMap<u32, u64, MapDef> = HashMap::legacy(10240); }
//! ```
//!
//! The typed wrappers pass the static's address to the map helpers: rustc emits
//! `r1 = COUNTS ll`, a relocation the loader replaces with the map's fd.

use crate::helpers::{
    bpf_map_delete_elem, bpf_map_lookup_elem, bpf_map_update_elem, bpf_perf_event_output,
    bpf_ringbuf_output,
};
use crate::lang::*;
use crate::mem::{size_of, Ptr};

/// `struct bpf_map_def` of the legacy `maps` section (five `u32`, as in samples/bpf).
#[repr(C)]
pub struct MapDef {
    /// The map type (`BPF_MAP_TYPE_*`).
    pub type_: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub map_flags: u32,
}

/// `BPF_MAP_TYPE_HASH`.
pub const BPF_MAP_TYPE_HASH: u32 = 1;
/// `BPF_MAP_TYPE_ARRAY`.
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
pub const BPF_MAP_TYPE_PERF_EVENT_ARRAY: u32 = 4;
/// `BPF_MAP_TYPE_PERCPU_HASH`.
pub const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
/// `BPF_MAP_TYPE_PERCPU_ARRAY`.
pub const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
/// `BPF_MAP_TYPE_LRU_HASH`.
pub const BPF_MAP_TYPE_LRU_HASH: u32 = 9;
/// `BPF_MAP_TYPE_RINGBUF`.
pub const BPF_MAP_TYPE_RINGBUF: u32 = 27;

/// `BPF_ANY`: create or update.
pub const BPF_ANY: u64 = 0;
/// `BPF_NOEXIST`: create only.
pub const BPF_NOEXIST: u64 = 1;
/// `BPF_EXIST`: update only.
pub const BPF_EXIST: u64 = 2;
/// `BPF_F_CURRENT_CPU` for perf event output.
pub const BPF_F_CURRENT_CPU: u64 = 0xffff_ffff;

/// A `.maps` definition: the same five numbers as `u64`s.  bpfkit build reads them from
/// the object and writes the `.BTF` that describes the map the libbpf way (a struct of
/// `int (*)[N]` members named `type`, `key`, `value`, `max_entries`, `map_flags`).
#[repr(C)]
pub struct BtfMapDef {
    /// The map type (`BPF_MAP_TYPE_*`).
    pub type_: u64,
    /// Key size in bytes.
    pub key_size: u64,
    /// Value size in bytes.
    pub value_size: u64,
    /// Maximum number of entries.
    pub max_entries: u64,
    /// `BPF_F_*` flags.
    pub map_flags: u64,
}

impl MapDef {
    /// A legacy definition of any type.
    pub const fn new(type_: u32, key_size: u32, value_size: u32, max_entries: u32, map_flags: u32) -> MapDef {
        MapDef { type_, key_size, value_size, max_entries, map_flags }
    }
}

impl BtfMapDef {
    /// A `.maps` definition of any type.
    pub const fn new(type_: u32, key_size: u32, value_size: u32, max_entries: u32, map_flags: u32) -> BtfMapDef {
        BtfMapDef {
            type_: type_ as u64,
            key_size: key_size as u64,
            value_size: value_size as u64,
            max_entries: max_entries as u64,
            map_flags: map_flags as u64,
        }
    }
}

macro_rules! keyed_map {
    ($($(#[$doc:meta])* $Name:ident = $type_:expr;)*) => {
        $(
            $(#[$doc])*
            #[repr(C)]
            pub struct $Name<K, V, D = BtfMapDef> {
                def: D,
                _types: PhantomData<(K, V)>,
            }

            impl<K, V> $Name<K, V, BtfMapDef> {
                /// A `.maps` map of at most `max_entries` entries.
                pub const fn new(max_entries: u32) -> Self {
                    Self::with_flags(max_entries, 0)
                }

                /// A `.maps` map of at most `max_entries` entries with `BPF_F_*` `flags`.
                pub const fn with_flags(max_entries: u32, flags: u32) -> Self {
                    let (k, v) = (size_of::<K>() as u32, size_of::<V>() as u32);
                    $Name { def: BtfMapDef::new($type_, k, v, max_entries, flags), _types: PhantomData }
                }
            }

            impl<K, V> $Name<K, V, MapDef> {
                /// A legacy (`maps` section) map of at most `max_entries` entries.
                pub const fn legacy(max_entries: u32) -> Self {
                    Self::legacy_with_flags(max_entries, 0)
                }

                /// A legacy map of at most `max_entries` entries with `BPF_F_*` `flags`.
                pub const fn legacy_with_flags(max_entries: u32, flags: u32) -> Self {
                    let (k, v) = (size_of::<K>() as u32, size_of::<V>() as u32);
                    $Name { def: MapDef::new($type_, k, v, max_entries, flags), _types: PhantomData }
                }
            }

            impl<K, V, D> $Name<K, V, D> {
                /// A pointer to the value of `key`, if present (`bpf_map_lookup_elem`).
                #[inline(always)]
                pub fn get_ptr_mut(&self, key: &K) -> Option<*mut V> {
                    let p = unsafe { bpf_map_lookup_elem(self, key) } as *mut V;
                    if p.is_null() { None } else { Some(p) }
                }

                /// The value of `key`, if present.
                ///
                /// # Safety
                /// The kernel may change the value concurrently (another CPU).
                #[inline(always)]
                pub unsafe fn get(&self, key: &K) -> Option<&mut V> {
                    match self.get_ptr_mut(key) {
                        Some(p) => Some(unsafe { &mut *p }),
                        None => None,
                    }
                }

                /// Sets `key` to `value` (`bpf_map_update_elem`); `flags` is `BPF_ANY`,
                /// `BPF_NOEXIST` or `BPF_EXIST`.  Returns 0 or a negative errno.
                #[inline(always)]
                pub fn insert(&self, key: &K, value: &V, flags: u64) -> i64 {
                    unsafe { bpf_map_update_elem(self, key, value, flags) }
                }

                /// Removes `key` (`bpf_map_delete_elem`); 0 or a negative errno.
                #[inline(always)]
                pub fn remove(&self, key: &K) -> i64 {
                    unsafe { bpf_map_delete_elem(self, key) }
                }
            }
        )*
    };
}

keyed_map! {
    /// `BPF_MAP_TYPE_HASH`: a hash table from `K` to `V`.
    HashMap = BPF_MAP_TYPE_HASH;
    /// `BPF_MAP_TYPE_LRU_HASH`: a hash table evicting the least recently used entries.
    LruHashMap = BPF_MAP_TYPE_LRU_HASH;
    /// `BPF_MAP_TYPE_PERCPU_HASH`: one value per CPU for each key.
    PerCpuHashMap = BPF_MAP_TYPE_PERCPU_HASH;
    /// `BPF_MAP_TYPE_ARRAY`: `K` must be `u32`.
    Array = BPF_MAP_TYPE_ARRAY;
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`: `K` must be `u32`.
    PerCpuArray = BPF_MAP_TYPE_PERCPU_ARRAY;
}

/// `BPF_MAP_TYPE_RINGBUF`: a ring buffer of `size` bytes (a power of two multiple of the
/// page size) carrying records to user space.
#[repr(C)]
pub struct RingBuf<D = BtfMapDef> {
    def: D,
}

impl RingBuf<BtfMapDef> {
    /// A `.maps` ring buffer of `size` bytes.
    pub const fn new(size: u32) -> Self {
        RingBuf { def: BtfMapDef::new(BPF_MAP_TYPE_RINGBUF, 0, 0, size, 0) }
    }
}

impl RingBuf<MapDef> {
    /// A legacy ring buffer of `size` bytes.
    pub const fn legacy(size: u32) -> Self {
        RingBuf { def: MapDef::new(BPF_MAP_TYPE_RINGBUF, 0, 0, size, 0) }
    }
}

impl<D> RingBuf<D> {
    /// Copies `data` into the buffer as one record (`bpf_ringbuf_output`); 0 or -errno.
    #[inline(always)]
    pub fn output<T>(&self, data: &T, flags: u64) -> i64 {
        unsafe { bpf_ringbuf_output(self, data, size_of::<T>() as u64, flags) }
    }
}

/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`: per-CPU perf buffers.
#[repr(C)]
pub struct PerfEventArray<D = BtfMapDef> {
    def: D,
}

impl PerfEventArray<BtfMapDef> {
    /// A `.maps` perf event array of `max_entries` CPUs (0: the loader uses the CPU count).
    pub const fn new(max_entries: u32) -> Self {
        PerfEventArray { def: BtfMapDef::new(BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, max_entries, 0) }
    }
}

impl PerfEventArray<MapDef> {
    /// A legacy perf event array of `max_entries` CPUs.
    pub const fn legacy(max_entries: u32) -> Self {
        PerfEventArray { def: MapDef::new(BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, max_entries, 0) }
    }
}

impl<D> PerfEventArray<D> {
    /// Sends `data` to the current CPU's buffer (`bpf_perf_event_output`); 0 or -errno.
    #[inline(always)]
    pub fn output<T>(&self, ctx: *mut c_void, data: &T) -> i64 {
        unsafe {
            bpf_perf_event_output(ctx, self, BPF_F_CURRENT_CPU, data, size_of::<T>() as u64)
        }
    }
}
