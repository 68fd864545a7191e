//! Macros naming the object's sections: license, kernel version, programs and maps.

/// The program's license, as the `license` section (`license!("GPL")`): GPL-only helpers
/// such as `bpf_trace_printk` need a GPL-compatible license.
#[macro_export]
macro_rules! license {
    ($license:literal) => {
        #[unsafe(no_mangle)]
        #[unsafe(link_section = "license")]
        pub static _license: [u8; $crate::str_len($license) + 1] =
            $crate::cstr::<{ $crate::str_len($license) + 1 }>($license);
    };
}

/// The kernel version the program was built for, as the `version` section
/// (`version!(0xFFFFFFFE)`; kernels before 5.0 check it for kprobes).
#[macro_export]
macro_rules! version {
    ($version:expr) => {
        #[unsafe(no_mangle)]
        #[unsafe(link_section = "version")]
        pub static _version: u32 = $version;
    };
}

/// A BPF program in the section that says its type and attach point:
///
/// ```ignore
/// program! {
///     "kprobe/SyS_clone",
///     fn kprobe__sys_clone(ctx: *mut c_void) -> i32 { 0 }
/// }
/// ```
#[macro_export]
macro_rules! program {
    ($section:literal, $(#[$attr:meta])* fn $name:ident($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$attr])*
        #[unsafe(no_mangle)]
        #[unsafe(link_section = $section)]
        pub extern "C" fn $name($($arg: $ty),*) -> $ret $body
    };
}

/// Maps in the `.maps` section, named by their static; bpfkit build writes their BTF:
///
/// ```ignore
/// map! { static COUNTS: HashMap<u32, u64> = HashMap::new(10240); }
/// ```
#[macro_export]
macro_rules! map {
    ($($(#[$attr:meta])* $vis:vis static $name:ident : $ty:ty = $init:expr;)*) => {
        $(
            $(#[$attr])*
            #[unsafe(no_mangle)]
            #[unsafe(link_section = ".maps")]
            $vis static $name: $ty = $init;
        )*
    };
}

/// Maps in the legacy `maps` section (`struct bpf_map_def`), named by their static:
///
/// ```ignore
/// legacy_map! { static COUNTS: HashMap<u32, u64, MapDef> = HashMap::legacy(10240); }
/// ```
#[macro_export]
macro_rules! legacy_map {
    ($($(#[$attr:meta])* $vis:vis static $name:ident : $ty:ty = $init:expr;)*) => {
        $(
            $(#[$attr])*
            #[unsafe(no_mangle)]
            #[unsafe(link_section = "maps")]
            $vis static $name: $ty = $init;
        )*
    };
}

/// `bpf_trace_printk` with a format string literal and up to three integer arguments:
/// `printk!("pid %d opened %d files\n", pid, n)`.  The format, made a NUL-terminated array
/// at compile time, is copied to the stack (the helper wants it there, as in the seed);
/// returns the helper's result.
#[macro_export]
macro_rules! printk {
    ($fmt:literal $(,)?) => {{
        const FMT: [u8; $crate::str_len($fmt) + 1] = $crate::cstr($fmt);
        let fmt = FMT;
        unsafe { $crate::bpf_trace_printk(&fmt, ($crate::str_len($fmt) + 1) as u32) }
    }};
    ($fmt:literal, $a:expr $(,)?) => {{
        const FMT: [u8; $crate::str_len($fmt) + 1] = $crate::cstr($fmt);
        let fmt = FMT;
        unsafe { $crate::bpf_trace_printk1(&fmt, ($crate::str_len($fmt) + 1) as u32, $a as u64) }
    }};
    ($fmt:literal, $a:expr, $b:expr $(,)?) => {{
        const FMT: [u8; $crate::str_len($fmt) + 1] = $crate::cstr($fmt);
        let fmt = FMT;
        unsafe {
            $crate::bpf_trace_printk2(&fmt, ($crate::str_len($fmt) + 1) as u32, $a as u64, $b as u64)
        }
    }};
    ($fmt:literal, $a:expr, $b:expr, $c:expr $(,)?) => {{
        const FMT: [u8; $crate::str_len($fmt) + 1] = $crate::cstr($fmt);
        let fmt = FMT;
        unsafe {
            $crate::bpf_trace_printk3(
                &fmt,
                ($crate::str_len($fmt) + 1) as u32,
                $a as u64,
                $b as u64,
                $c as u64,
            )
        }
    }};
}
