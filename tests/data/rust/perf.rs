//! A sample through a perf event array from Rust (`bpf_perf_event_output`).
#![feature(no_core)]
#![no_core]

use bpfkit::*;

license!("GPL");

#[repr(C)]
struct Sample {
    len: u32,
    marker: u32,
}

map! {
    static SAMPLES: PerfEventArray = PerfEventArray::new(0);
}

program! {
    "socket",
    fn send_sample(skb: *mut c_void) -> i32 {
        let len = unsafe { *(skb as *const u32) };
        SAMPLES.output(skb, &Sample { len, marker: 0x5eed }) as i32
    }
}
