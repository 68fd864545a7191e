//! Counts openat() calls per process: a hash map from pid (tgid) to count, in Rust.
//!
//! Build with `bpfkit build examples/counter/counter.rs`; run with
//! `bpfkit run counter.o --duration 5 --maps` and see the map's entries.
#![feature(no_core)]
#![no_core]

use bpfkit::*;

license!("GPL");

map! {
    static COUNTS: HashMap<u32, u64> = HashMap::new(10240);
}

program! {
    "tracepoint/syscalls/sys_enter_openat",
    fn count_openat(_ctx: *mut c_void) -> i32 {
        // The upper half of pid_tgid is the process id (the kernel's tgid).
        let pid = (unsafe { bpf_get_current_pid_tgid() } >> 32) as u32;
        match COUNTS.get_ptr_mut(&pid) {
            // Another CPU may count the same process at the same time: add atomically.
            Some(count) => unsafe { atomic_add_u64(count, 1) },
            None => {
                // A stack value rather than `&1`, which rustc would place in .rodata.
                let one: u64 = 1;
                COUNTS.insert(&pid, &one, BPF_NOEXIST);
            }
        }
        0
    }
}
