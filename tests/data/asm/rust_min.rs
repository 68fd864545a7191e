// A minimal #![no_core] crate for rustc's BPF backend: its --emit=asm output is rust_min.rustc.s:
//   RUSTC_BOOTSTRAP=1 rustc --target bpfel-unknown-none --emit=asm -C opt-level=3 \
//     -C panic=abort --crate-type=lib rust_min.rs -o rust_min.rustc.s
#![no_core]
#![feature(no_core, lang_items)]
#![allow(internal_features)]

#[lang = "pointee_sized"]
pub trait PointeeSized {}
#[lang = "meta_sized"]
pub trait MetaSized: PointeeSized {}
#[lang = "sized"]
pub trait Sized: MetaSized {}
#[lang = "copy"]
pub trait Copy {}
#[lang = "sync"]
pub unsafe trait Sync {}
unsafe impl Sync for [u8; 4] {}
unsafe impl Sync for [u8; 17] {}
impl Copy for u64 {}
impl Copy for u32 {}
impl Copy for u8 {}
impl<T: Copy, const N: usize> Copy for [T; N] {}

extern "C" {
    fn bpf_trace_printk(fmt: *const u8, size: u32) -> i64;
}

#[no_mangle]
#[link_section = "license"]
pub static LICENSE: [u8; 4] = *b"GPL\0";

static MSG: [u8; 17] = *b"hello from rust\n\0";

#[inline(never)]
#[no_mangle]
pub extern "C" fn helper_fn(p: *const u8) -> i64 {
    unsafe { bpf_trace_printk(p, 17) }
}

#[no_mangle]
#[link_section = "kprobe/sys_clone"]
pub extern "C" fn hello(_ctx: *const u64) -> u32 {
    helper_fn(&MSG as *const [u8; 17] as *const u8);
    0
}
#[lang = "drop_in_place"]
#[allow(unconditional_recursion)]
pub unsafe fn drop_in_place<T: PointeeSized>(to_drop: *mut T) {
    unsafe { drop_in_place(to_drop) }
}
