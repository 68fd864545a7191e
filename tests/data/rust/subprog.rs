//! A bpf-to-bpf call: a function rustc keeps out of line (in .text) called from two
//! programs.
#![feature(no_core)]
#![no_core]

use bpfkit::*;

license!("GPL");

#[inline(never)]
fn weigh(len: u32, factor: u32) -> u32 {
    if len > 60 { len * factor + 1 } else { len * factor }
}

program! {
    "socket",
    fn light(skb: *mut c_void) -> i32 {
        weigh(unsafe { *(skb as *const u32) }, 2) as i32
    }
}

program! {
    "socket",
    fn heavy(skb: *mut c_void) -> i32 {
        weigh(unsafe { *(skb as *const u32) }, 1000) as i32
    }
}
