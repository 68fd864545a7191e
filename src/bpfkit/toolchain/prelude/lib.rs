//! bpfkit's Rust prelude: what a `#![no_core]` crate needs to become a BPF program.
//!
//! `bpfkit build` compiles this crate once per rustc version (with the generated
//! `helpers.rs`) and passes it to the program with `--extern bpfkit=...`; a program says
//! `use bpfkit::*;`.  Nothing here is from `core`: rustc ships no `core` for the
//! `bpfel-unknown-none` target and nothing can be downloaded, so the lang items rustc needs
//! are declared here.  They change between rustc releases; `bpfkit build` checks the
//! version (see `bpfkit/toolchain/rust.py`).
#![feature(
    no_core,
    lang_items,
    rustc_attrs,
    intrinsics,
    auto_traits,
    negative_impls,
    freeze_impls,
    decl_macro,
    asm_experimental_arch,
    unboxed_closures
)]
#![no_core]
#![allow(internal_features, non_camel_case_types, non_upper_case_globals, dead_code)]
#![allow(clippy::all)]

pub mod lang;
pub mod ops;
pub mod iter;
pub mod mem;
pub mod maps;
pub mod macros;
pub mod helpers;

pub use lang::*;
pub use ops::*;
pub use iter::*;
pub use mem::*;
pub use maps::*;
pub use helpers::*;
