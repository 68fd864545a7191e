//! The xdp_count example in Rust: packet pointers, bounds checks against data_end, and a
//! per-protocol counter (checked against the C version's results).
#![feature(no_core)]
#![no_core]

use bpfkit::*;

license!("GPL");

/// The start of `struct xdp_md`.
#[repr(C)]
struct XdpMd {
    data: u32,
    data_end: u32,
}

map! {
    static COUNTS: Array<u32, u64> = Array::new(256);
}

const ETH_HLEN: usize = 14;

program! {
    "xdp",
    fn xdp_count_rs(ctx: *mut c_void) -> i32 {
        let md = ctx as *const XdpMd;
        let data = unsafe { (*md).data } as usize as *const u8;
        let end = unsafe { (*md).data_end } as usize as *const u8;
        let mut proto: u32 = 0;
        unsafe {
            if data.byte_add(ETH_HLEN) <= end {
                // h_proto, big-endian, at bytes 12-13.
                let ethertype = (*data.add(12) as u16) << 8 | *data.add(13) as u16;
                if ethertype == 0x0800 && data.byte_add(ETH_HLEN + 20) <= end {
                    proto = *data.add(ETH_HLEN + 9) as u32;
                } else if ethertype == 0x86dd && data.byte_add(ETH_HLEN + 40) <= end {
                    proto = *data.add(ETH_HLEN + 6) as u32;
                }
            }
        }
        if let Some(count) = COUNTS.get_ptr_mut(&proto) {
            unsafe { atomic_add_u64(count, 1) };
        }
        2 // XDP_PASS
    }
}
