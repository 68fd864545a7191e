//! Atomic adds on a map value (inline BPF assembly in the prelude): each run adds 3, then
//! fetch-adds 5 and returns the value before that plus 100.
#![feature(no_core)]
#![no_core]

use bpfkit::*;

license!("GPL");

map! {
    static COUNTER: Array<u32, u64> = Array::new(2);
}

program! {
    "socket",
    fn atomics(_skb: *mut c_void) -> i32 {
        let key: u32 = 0;
        match COUNTER.get_ptr_mut(&key) {
            Some(p) => unsafe {
                atomic_add_u64(p, 3);
                (atomic_fetch_add_u64(p, 5) + 100) as i32
            },
            None => -1,
        }
    }
}
