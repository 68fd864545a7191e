//! printk! with arguments, on the getppid() tracepoint.
#![feature(no_core)]
#![no_core]

use bpfkit::*;

license!("GPL");

program! {
    "tracepoint/syscalls/sys_enter_getppid",
    fn printk_getppid(_ctx: *mut c_void) -> i32 {
        let pid = (unsafe { bpf_get_current_pid_tgid() } >> 32) as u32;
        printk!("bpfkit printk pid=%d x=%d y=%x\n", pid, 42, 0xbeef);
        0
    }
}
