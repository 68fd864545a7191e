//! Maps, defined the legacy way: a `struct bpf_map_def` static in the `maps` section (what
//! the seed's era, the kernel's samples/bpf and bpfkit's loader understand; libbpf 1.0
//! dropped it).  Declare one with [`map!`](crate::map):
//!
//! ```ignore
//! map! { static COUNTS: HashMap<u32, u64> = HashMap::new(10240); }
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

impl MapDef {
    /// A definition of any type.
    pub const fn new(type_: u32, key_size: u32, value_size: u32, max_entries: u32) -> MapDef {
        MapDef { type_, key_size, value_size, max_entries, map_flags: 0 }
    }
}

macro_rules! keyed_map {
    ($($(#[$doc:meta])* $Name:ident = $type_:expr;)*) => {
        $(
            $(#[$doc])*
            #[repr(C)]
            pub struct $Name<K, V> {
                def: MapDef,
                _types: PhantomData<(K, V)>,
            }

            impl<K, V> $Name<K, V> {
                /// A map of at most `max_entries` entries.
                pub const fn new(max_entries: u32) -> Self {
                    Self::with_flags(max_entries, 0)
                }

                /// A map of at most `max_entries` entries created with `BPF_F_*` `flags`.
                pub const fn with_flags(max_entries: u32, flags: u32) -> Self {
                    $Name {
                        def: MapDef {
                            type_: $type_,
                            key_size: size_of::<K>() as u32,
                            value_size: size_of::<V>() as u32,
                            max_entries,
                            map_flags: flags,
                        },
                        _types: PhantomData,
                    }
                }

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
pub struct RingBuf {
    def: MapDef,
}

impl RingBuf {
    /// A ring buffer of `size` bytes.
    pub const fn new(size: u32) -> RingBuf {
        RingBuf { def: MapDef::new(BPF_MAP_TYPE_RINGBUF, 0, 0, size) }
    }

    /// Copies `data` into the buffer as one record (`bpf_ringbuf_output`); 0 or -errno.
    #[inline(always)]
    pub fn output<T>(&self, data: &T, flags: u64) -> i64 {
        unsafe { bpf_ringbuf_output(self, data, size_of::<T>() as u64, flags) }
    }
}

/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`: per-CPU perf buffers.
#[repr(C)]
pub struct PerfEventArray {
    def: MapDef,
}

impl PerfEventArray {
    /// A perf event array of `max_entries` CPUs (0 lets the loader use the CPU count).
    pub const fn new(max_entries: u32) -> PerfEventArray {
        PerfEventArray { def: MapDef::new(BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, max_entries) }
    }

    /// Sends `data` to the current CPU's buffer (`bpf_perf_event_output`); 0 or -errno.
    #[inline(always)]
    pub fn output<T>(&self, ctx: *mut c_void, data: &T) -> i64 {
        unsafe {
            bpf_perf_event_output(ctx, self, BPF_F_CURRENT_CPU, data, size_of::<T>() as u64)
        }
    }
}
