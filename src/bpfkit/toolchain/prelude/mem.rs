//! Memory and pointers: sizes, volatile access, pointer arithmetic, and calling a helper by
//! its id.

use crate::lang::*;

mod intrinsics {
    #[rustc_intrinsic]
    #[rustc_nounwind]
    pub const fn size_of<T>() -> usize;
}

/// The size of `T` in bytes.
#[inline(always)]
pub const fn size_of<T>() -> usize {
    // rustc 1.95 only evaluates this nullary intrinsic at compile time (as core does).
    const { intrinsics::size_of::<T>() }
}

#[rustc_intrinsic]
#[rustc_nounwind]
const unsafe fn offset<Ptr, Delta>(dst: Ptr, offset: Delta) -> Ptr;

#[rustc_intrinsic]
#[rustc_nounwind]
unsafe fn volatile_load<T>(src: *const T) -> T;

#[rustc_intrinsic]
#[rustc_nounwind]
unsafe fn volatile_store<T>(dst: *mut T, val: T);

/// Reads `*src` with a load the optimizer keeps (for memory the kernel changes).
#[inline(always)]
pub unsafe fn read_volatile<T>(src: *const T) -> T {
    unsafe { volatile_load(src) }
}

/// Writes `*dst` with a store the optimizer keeps.
#[inline(always)]
pub unsafe fn write_volatile<T>(dst: *mut T, val: T) {
    unsafe { volatile_store(dst, val) }
}

/// A null pointer (for helpers' optional arguments).
#[inline(always)]
pub const fn null<T>() -> *const T {
    0usize as *const T
}

/// A null mutable pointer.
#[inline(always)]
pub const fn null_mut<T>() -> *mut T {
    0usize as *mut T
}

/// Pointer arithmetic and access for `*const T` and `*mut T` (core's inherent methods,
/// as a trait since only `core` may add methods to primitive types).
pub trait Ptr: Copy {
    /// The pointee type.
    type Target;
    /// `self` moved by `count` elements (pointer arithmetic in units of `T`).
    unsafe fn add(self, count: usize) -> Self;
    /// `self` moved by `bytes` bytes, keeping its type.
    unsafe fn byte_add(self, bytes: usize) -> Self;
    /// Whether the pointer is null.
    fn is_null(self) -> bool;
    /// The address as an integer.
    fn addr(self) -> usize;
}

impl<T> Ptr for *const T {
    type Target = T;
    #[inline(always)]
    unsafe fn add(self, count: usize) -> Self {
        unsafe { offset(self, count) }
    }
    #[inline(always)]
    unsafe fn byte_add(self, bytes: usize) -> Self {
        unsafe { offset(self as *const u8, bytes) as *const T }
    }
    #[inline(always)]
    fn is_null(self) -> bool {
        self as usize == 0
    }
    #[inline(always)]
    fn addr(self) -> usize {
        self as usize
    }
}

impl<T> Ptr for *mut T {
    type Target = T;
    #[inline(always)]
    unsafe fn add(self, count: usize) -> Self {
        unsafe { offset(self as *const T, count) as *mut T }
    }
    #[inline(always)]
    unsafe fn byte_add(self, bytes: usize) -> Self {
        unsafe { offset(self as *const u8, bytes) as *mut T }
    }
    #[inline(always)]
    fn is_null(self) -> bool {
        self as usize == 0
    }
    #[inline(always)]
    fn addr(self) -> usize {
        self as usize
    }
}

/// Reinterprets a helper id as a function pointer of type `F` (an `unsafe extern "C" fn`).
///
/// rustc's BPF backend compiles a call through the constant pointer `id` into `call id`,
/// the encoding of a kernel helper call.  A union rather than `transmute` keeps this free
/// of intrinsics whose form changes between rustc releases.
#[inline(always)]
pub const unsafe fn helper_fn<F: Copy>(id: usize) -> F {
    #[repr(C)]
    union Cast<F: Copy> {
        id: usize,
        f: F,
    }
    unsafe { Cast::<F> { id }.f }
}

/// The bytes of a NUL-terminated copy of `s`, as an array of `N` bytes (`N` must be the
/// length of `s` plus one); used by [`license!`](crate::license).
pub const fn cstr<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let p = s as *const str as *const u8;
    let mut i = 0;
    while i + 1 < N {
        out[i] = unsafe { *offset(p, i) };
        i += 1;
    }
    out
}

/// The length of `s` in bytes (a `const fn`, for sizing arrays in macros).
pub const fn str_len(s: &str) -> usize {
    #[repr(C)]
    struct Parts {
        ptr: *const u8,
        len: usize,
    }
    impl Copy for Parts {}
    #[repr(C)]
    union Repr<'a> {
        s: &'a str,
        parts: Parts,
    }
    unsafe { Repr { s }.parts.len }
}

/// Atomically adds `value` to `*dst` (BPF's `lock *(u64 *)(dst + 0) += value`), for
/// counters shared between CPUs, such as map values.
#[inline(always)]
pub unsafe fn atomic_add_u64(dst: *mut u64, value: u64) {
    unsafe {
        crate::lang::asm!("lock *(u64 *)({0} + 0) += {1}", in(reg) dst, in(reg) value, options(nostack));
    }
}

/// Atomically adds `value` to `*dst` (32 bits).
#[inline(always)]
pub unsafe fn atomic_add_u32(dst: *mut u32, value: u32) {
    unsafe {
        crate::lang::asm!("lock *(u32 *)({0} + 0) += {1}", in(reg) dst, in(reg) value, options(nostack));
    }
}

/// Atomically adds `value` to `*dst` and returns the value before
/// (`r = atomic_fetch_add((u64 *)(dst + 0), r)`, BPF ISA v3).
#[inline(always)]
pub unsafe fn atomic_fetch_add_u64(dst: *mut u64, value: u64) -> u64 {
    let mut v = value;
    unsafe {
        crate::lang::asm!(
            "{1} = atomic_fetch_add((u64 *)({0} + 0), {1})",
            in(reg) dst,
            inout(reg) v,
            options(nostack)
        );
    }
    v
}
