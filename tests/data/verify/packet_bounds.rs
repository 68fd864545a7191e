//! A packet read one byte past what the comparison with data_end proved.
#![feature(no_core)]
#![no_core]

use bpfkit::*;

license!("GPL");

program! {
    "xdp",
    fn read_proto_rs(ctx: *mut c_void) -> i32 {
        let md = ctx as *const u32;
        let data = unsafe { *md } as usize as *const u8;
        let end = unsafe { *md.add(1) } as usize as *const u8;
        unsafe {
            if data.byte_add(12) > end {
                return 2;
            }
            if read_volatile(data.add(12)) == 8 { 1 } else { 2 }
        }
    }
}
