//! `for` loops over integer ranges (`for i in 0..16`): the lang items the desugaring uses.
//!
//! The verifier accepts bounded loops (kernel 5.3+); with constant bounds rustc usually
//! unrolls them.

use crate::lang::*;
use crate::ops::PartialOrd;

/// `start..end`.
#[lang = "Range"]
pub struct Range<Idx> {
    /// The first value.
    pub start: Idx,
    /// One past the last value.
    pub end: Idx,
}

/// Something `for` can walk.
#[lang = "iterator"]
pub trait Iterator {
    /// What it yields.
    type Item;
    /// The next item, or `None` at the end.
    #[lang = "next"]
    fn next(&mut self) -> Option<Self::Item>;
}

/// What a `for` loop's expression is turned into an iterator with.
pub trait IntoIterator {
    /// What it yields.
    type Item;
    /// The iterator.
    type IntoIter: Iterator<Item = Self::Item>;
    /// Turns `self` into the iterator.
    #[lang = "into_iter"]
    fn into_iter(self) -> Self::IntoIter;
}

impl<I: Iterator> IntoIterator for I {
    type Item = I::Item;
    type IntoIter = I;
    #[inline(always)]
    fn into_iter(self) -> I {
        self
    }
}

/// Integers a range can count through.
pub trait Step: Copy + PartialOrd {
    /// `self + 1`.
    fn successor(self) -> Self;
}

impl<A: Step> Iterator for Range<A> {
    type Item = A;
    #[inline(always)]
    fn next(&mut self) -> Option<A> {
        if self.start < self.end {
            let n = self.start;
            self.start = n.successor();
            Some(n)
        } else {
            None
        }
    }
}

macro_rules! step {
    ($($t:ty)*) => {
        $(
            impl Step for $t {
                #[inline(always)]
                fn successor(self) -> $t {
                    self + 1
                }
            }
        )*
    };
}
step!(u8 u16 u32 u64 usize i8 i16 i32 i64 isize);
