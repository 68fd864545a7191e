//! A socket filter exercising the prelude: arithmetic of several widths, comparisons, a
//! bounded loop over an array, a helper writing to the stack, a legacy map and a .maps map.
//! tests/toolchain/test_build_rust.py runs it with BPF_PROG_TEST_RUN and compares with Python.
#![feature(no_core)]
#![no_core]

use bpfkit::*;

license!("GPL");

legacy_map! {
    static SEEN: HashMap<u32, u64, MapDef> = HashMap::legacy(16);
}

map! {
    static TOTALS: Array<u32, u64> = Array::new(4);
}

program! {
    "socket",
    fn mix(skb: *mut c_void) -> i32 {
        let mut buf = [0u8; 16];
        if unsafe { bpf_skb_load_bytes(skb, 0, &mut buf, 16) } != 0 {
            return -1;
        }
        let mut acc: u32 = 7;
        for i in 0..16 {
            acc = acc * 31 + buf[i] as u32;
        }
        acc ^= acc >> 7;
        let mut tri: u32 = 0;
        let mut j = 0;
        while j < (buf[4] & 31) as u32 {
            tri += j * j;
            j += 1;
        }
        acc = acc + tri;
        let wide = (acc as u64) << 20 | (buf[0] as u64);
        let signed = -((wide % 1000003) as i64) / 3;
        let small = (buf[1] as u16) * 3 + 1;
        let mut result = (signed as i32) & 0x7fff_ffff;
        if buf[2] > buf[3] {
            result = result | 1;
        } else if buf[2] == buf[3] {
            result = result - small as i32;
        }
        let key = acc & 15;
        let value = wide;
        SEEN.insert(&key, &value, BPF_ANY);
        let zero: u32 = 0;
        if let Some(total) = TOTALS.get_ptr_mut(&zero) {
            unsafe { *total += 1 };
        }
        result
    }
}
