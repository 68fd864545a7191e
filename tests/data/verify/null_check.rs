//! A map lookup used without a NULL check (the raw helper, not the prelude's Option).
#![feature(no_core)]
#![no_core]

use bpfkit::*;

license!("GPL");

map! {
    static COUNTS: HashMap<u32, u64> = HashMap::new(64);
}

program! {
    "xdp",
    fn count_packets_rs(ctx: *mut c_void) -> i32 {
        let key: u32 = unsafe { *(ctx as *const u32).add(3) };
        let value = unsafe { bpf_map_lookup_elem(&COUNTS, &key) } as *mut u64;
        unsafe { *value += 1 };
        2
    }
}
