//! A record through a ring buffer from Rust: the packet's length and a marker, per run.
#![feature(no_core)]
#![no_core]

use bpfkit::*;

license!("GPL");

#[repr(C)]
struct Event {
    len: u32,
    marker: u32,
    stamp: u64,
}

map! {
    static EVENTS: RingBuf = RingBuf::new(4096);
    static SEEN: HashMap<u32, u32> = HashMap::new(8);
}

program! {
    "socket",
    fn send_event(skb: *mut c_void) -> i32 {
        // __sk_buff starts with `__u32 len`.
        let len = unsafe { *(skb as *const u32) };
        let event = Event { len, marker: 0xabcd, stamp: 0x1122_3344_5566_7788 };
        if let Some(n) = unsafe { SEEN.get(&len) } {
            *n += 1;
        } else {
            SEEN.insert(&len, &1, BPF_ANY);
        }
        EVENTS.output(&event, 0) as i32
    }
}
