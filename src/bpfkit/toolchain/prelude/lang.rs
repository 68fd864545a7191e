//! Lang items: the traits and functions rustc itself refers to.
//!
//! The set and the names are those of rustc 1.95 (`pointee_sized` and `meta_sized` arrived
//! in 1.89/1.90, `legacy_receiver` replaced `receiver` in 1.84, `sync` is a lang item since
//! static items check it).

/// Marker of types whose pointers may point to them (every type).
#[lang = "pointee_sized"]
pub trait PointeeSized {}

/// Marker of types whose size is known from a pointer's metadata.
#[lang = "meta_sized"]
pub trait MetaSized: PointeeSized {}

/// Marker of types with a size known at compile time.
#[lang = "sized"]
pub trait Sized: MetaSized {}

/// Marker of types copied bit for bit.
#[lang = "copy"]
pub trait Copy {}

/// Marker of types shareable between threads (statics must be `Sync`).
#[lang = "sync"]
pub unsafe auto trait Sync {}

/// Marker of types with no interior mutability.
#[lang = "freeze"]
pub unsafe auto trait Freeze {}

/// Marker of types usable as `self` receivers.
#[lang = "legacy_receiver"]
pub trait LegacyReceiver {}
impl<T: ?Sized> LegacyReceiver for &T {}
impl<T: ?Sized> LegacyReceiver for &mut T {}

/// Marker of tuples (for the `Fn*` traits).
#[lang = "tuple_trait"]
pub trait Tuple {}

/// Types that may be dropped in `const` contexts.
#[lang = "destruct"]
pub trait Destruct {}

/// Implemented by types with a destructor.
#[lang = "drop"]
pub trait Drop {
    /// Runs the destructor.
    fn drop(&mut self);
}

macro_rules! copy_impls {
    ($($t:ty)*) => { $( impl Copy for $t {} )* };
}
copy_impls!(bool char u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize);
impl<T: ?Sized> Copy for *const T {}
impl<T: ?Sized> Copy for *mut T {}
impl<T: ?Sized> Copy for &T {}
impl<T: Copy, const N: usize> Copy for [T; N] {}

/// A zero-sized marker "owning" a `T` (for typed maps).
#[lang = "phantom_data"]
pub struct PhantomData<T: ?Sized>;
impl<T: ?Sized> Copy for PhantomData<T> {}

/// Interior mutability: the one way to mutate through a shared reference.
#[lang = "unsafe_cell"]
#[repr(transparent)]
pub struct UnsafeCell<T: ?Sized> {
    value: T,
}
impl<T: ?Sized> !Freeze for UnsafeCell<T> {}

/// C's `void`, for pointers to memory of no particular type.
#[repr(u8)]
pub enum c_void {
    #[doc(hidden)]
    __variant1,
    #[doc(hidden)]
    __variant2,
}

/// An optional value (what `map.get(&key)` returns; what `for` loops stop on).
#[lang = "Option"]
pub enum Option<T> {
    /// No value.
    #[lang = "None"]
    None,
    /// Some value.
    #[lang = "Some"]
    Some(T),
}
impl<T: Copy> Copy for Option<T> {}
pub use Option::{None, Some};

/// A result: success or error.
pub enum Result<T, E> {
    /// Success.
    Ok(T),
    /// Error.
    Err(E),
}
impl<T: Copy, E: Copy> Copy for Result<T, E> {}
pub use Result::{Err, Ok};

#[lang = "drop_in_place"]
#[allow(unconditional_recursion)]
#[inline(always)]
unsafe fn drop_in_place<T: ?Sized>(to_drop: *mut T) {
    // Never called for the types of a BPF program (nothing has a destructor).
    unsafe { drop_in_place(to_drop) }
}

// A panic can only be an endless loop on BPF: there is no trap instruction.  The verifier
// rejects a program that can reach one ("infinite loop detected"), which is what a
// possibly-failing bounds or division check deserves; use `get`/checks that the
// optimizer can see through instead.
/// Where a panic happened: rustc builds one for every bounds or arithmetic check.
#[lang = "panic_location"]
pub struct Location<'a> {
    file: &'a str,
    line: u32,
    col: u32,
}

#[lang = "panic_bounds_check"]
#[inline(always)]
fn panic_bounds_check(_index: usize, _len: usize) -> ! {
    loop {}
}

#[lang = "panic"]
#[inline(always)]
pub const fn panic(_expr: &'static str) -> ! {
    loop {}
}

macro_rules! panic_const {
    ($($item:ident $lang:literal)*) => {
        $(
            #[lang = $lang]
            #[inline(always)]
            pub const fn $item() -> ! {
                loop {}
            }
        )*
    };
}
panic_const!(
    panic_const_add_overflow "panic_const_add_overflow"
    panic_const_sub_overflow "panic_const_sub_overflow"
    panic_const_mul_overflow "panic_const_mul_overflow"
    panic_const_div_overflow "panic_const_div_overflow"
    panic_const_rem_overflow "panic_const_rem_overflow"
    panic_const_neg_overflow "panic_const_neg_overflow"
    panic_const_shr_overflow "panic_const_shr_overflow"
    panic_const_shl_overflow "panic_const_shl_overflow"
    panic_const_div_by_zero "panic_const_div_by_zero"
    panic_const_rem_by_zero "panic_const_rem_by_zero"
);

/// Built-in macros of the compiler, declared because there is no `core` to declare them.
#[rustc_builtin_macro]
#[macro_export]
macro_rules! concat {
    ($($e:expr),* $(,)?) => {{ /* compiler built-in */ }};
}

#[rustc_builtin_macro]
#[macro_export]
macro_rules! stringify {
    ($($t:tt)*) => {{ /* compiler built-in */ }};
}

#[rustc_builtin_macro]
#[doc(hidden)]
pub macro asm("assembly template", $(operands,)* $(options($(option),*))?) {
    /* compiler built-in */
}
