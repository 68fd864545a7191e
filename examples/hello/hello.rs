//! The seed's program in Rust: on every clone(), print "hello from rust" to trace_pipe.
//!
//! Build with `bpfkit build examples/hello/hello.rs` (rustc's own BPF backend and
//! bpfkit's assembler; no nightly, no crates), run with `bpfkit run hello.o`.
#![feature(no_core)]
#![no_core]

use bpfkit::*;

license!("GPL");
version!(0xFFFFFFFE);

program! {
    "kprobe/SyS_clone",
    fn kprobe__sys_clone(_ctx: *mut c_void) -> i32 {
        let msg: [u8; 17] = *b"hello from rust\n\0";
        unsafe { bpf_trace_printk(&msg, 17) };
        0
    }
}
