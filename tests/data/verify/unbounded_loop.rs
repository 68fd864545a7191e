//! A loop waiting for a value that never changes inside it.
#![feature(no_core)]
#![no_core]

use bpfkit::*;

license!("GPL");

program! {
    "xdp",
    fn wait_for_queue_rs(ctx: *mut c_void) -> i32 {
        let mut queue: u32 = unsafe { *(ctx as *const u32).add(4) };
        let q = &mut queue as *mut u32;
        unsafe { write_volatile(q, queue) };
        while unsafe { read_volatile(q) } != 0 {}
        2
    }
}
