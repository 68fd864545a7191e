//! Operators: the traits behind `+ - * / % & | ^ << >> ! -`, their `op=` forms, `==` and
//! `<`, implemented for every integer type (rustc lowers them to plain BPF ALU
//! instructions; the trait and its impl are only there for type checking).

use crate::lang::*;

macro_rules! binop_trait {
    ($($Trait:ident $lang:literal $method:ident, $TraitAssign:ident $lang_assign:literal $method_assign:ident;)*) => {
        $(
            #[doc = "The operator trait of the same name."]
            #[lang = $lang]
            pub trait $Trait<Rhs = Self> {
                /// The result type.
                type Output;
                /// Applies the operator.
                fn $method(self, rhs: Rhs) -> Self::Output;
            }
            #[doc = "The compound-assignment operator trait of the same name."]
            #[lang = $lang_assign]
            pub trait $TraitAssign<Rhs = Self> {
                /// Applies the operator in place.
                fn $method_assign(&mut self, rhs: Rhs);
            }
        )*
    };
}

binop_trait! {
    Add "add" add, AddAssign "add_assign" add_assign;
    Sub "sub" sub, SubAssign "sub_assign" sub_assign;
    Mul "mul" mul, MulAssign "mul_assign" mul_assign;
    Div "div" div, DivAssign "div_assign" div_assign;
    Rem "rem" rem, RemAssign "rem_assign" rem_assign;
    BitAnd "bitand" bitand, BitAndAssign "bitand_assign" bitand_assign;
    BitOr "bitor" bitor, BitOrAssign "bitor_assign" bitor_assign;
    BitXor "bitxor" bitxor, BitXorAssign "bitxor_assign" bitxor_assign;
    Shl "shl" shl, ShlAssign "shl_assign" shl_assign;
    Shr "shr" shr, ShrAssign "shr_assign" shr_assign;
}

/// Unary `-`.
#[lang = "neg"]
pub trait Neg {
    /// The result type.
    type Output;
    /// Negates.
    fn neg(self) -> Self::Output;
}

/// Unary `!`.
#[lang = "not"]
pub trait Not {
    /// The result type.
    type Output;
    /// Complements.
    fn not(self) -> Self::Output;
}

/// `==` and `!=`.
#[lang = "eq"]
pub trait PartialEq<Rhs: ?Sized = Self> {
    /// `self == other`.
    fn eq(&self, other: &Rhs) -> bool;
    /// `self != other`.
    #[inline(always)]
    fn ne(&self, other: &Rhs) -> bool {
        !self.eq(other)
    }
}

/// `<`, `<=`, `>`, `>=`.
#[lang = "partial_ord"]
pub trait PartialOrd<Rhs: ?Sized = Self>: PartialEq<Rhs> {
    /// `self < other`.
    fn lt(&self, other: &Rhs) -> bool;
    /// `self <= other`.
    fn le(&self, other: &Rhs) -> bool;
    /// `self > other`.
    fn gt(&self, other: &Rhs) -> bool;
    /// `self >= other`.
    fn ge(&self, other: &Rhs) -> bool;
}

// The bodies use the operator on the primitive itself: rustc compiles an operator whose
// operands are both primitives directly, without calling the trait method.
macro_rules! int_ops {
    ($($t:ty)*) => {
        $(
            impl Add for $t { type Output = $t; #[inline(always)] fn add(self, r: $t) -> $t { self + r } }
            impl Sub for $t { type Output = $t; #[inline(always)] fn sub(self, r: $t) -> $t { self - r } }
            impl Mul for $t { type Output = $t; #[inline(always)] fn mul(self, r: $t) -> $t { self * r } }
            impl Div for $t { type Output = $t; #[inline(always)] fn div(self, r: $t) -> $t { self / r } }
            impl Rem for $t { type Output = $t; #[inline(always)] fn rem(self, r: $t) -> $t { self % r } }
            impl BitAnd for $t { type Output = $t; #[inline(always)] fn bitand(self, r: $t) -> $t { self & r } }
            impl BitOr for $t { type Output = $t; #[inline(always)] fn bitor(self, r: $t) -> $t { self | r } }
            impl BitXor for $t { type Output = $t; #[inline(always)] fn bitxor(self, r: $t) -> $t { self ^ r } }
            impl AddAssign for $t { #[inline(always)] fn add_assign(&mut self, r: $t) { *self = *self + r } }
            impl SubAssign for $t { #[inline(always)] fn sub_assign(&mut self, r: $t) { *self = *self - r } }
            impl MulAssign for $t { #[inline(always)] fn mul_assign(&mut self, r: $t) { *self = *self * r } }
            impl DivAssign for $t { #[inline(always)] fn div_assign(&mut self, r: $t) { *self = *self / r } }
            impl RemAssign for $t { #[inline(always)] fn rem_assign(&mut self, r: $t) { *self = *self % r } }
            impl BitAndAssign for $t { #[inline(always)] fn bitand_assign(&mut self, r: $t) { *self = *self & r } }
            impl BitOrAssign for $t { #[inline(always)] fn bitor_assign(&mut self, r: $t) { *self = *self | r } }
            impl BitXorAssign for $t { #[inline(always)] fn bitxor_assign(&mut self, r: $t) { *self = *self ^ r } }
            impl Not for $t { type Output = $t; #[inline(always)] fn not(self) -> $t { !self } }
            impl PartialEq for $t {
                #[inline(always)] fn eq(&self, o: &$t) -> bool { *self == *o }
                #[inline(always)] fn ne(&self, o: &$t) -> bool { *self != *o }
            }
            impl PartialOrd for $t {
                #[inline(always)] fn lt(&self, o: &$t) -> bool { *self < *o }
                #[inline(always)] fn le(&self, o: &$t) -> bool { *self <= *o }
                #[inline(always)] fn gt(&self, o: &$t) -> bool { *self > *o }
                #[inline(always)] fn ge(&self, o: &$t) -> bool { *self >= *o }
            }
            shift_ops!($t; u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize);
        )*
    };
}

macro_rules! shift_ops {
    ($t:ty; $($r:ty)*) => {
        $(
            impl Shl<$r> for $t { type Output = $t; #[inline(always)] fn shl(self, r: $r) -> $t { self << r } }
            impl Shr<$r> for $t { type Output = $t; #[inline(always)] fn shr(self, r: $r) -> $t { self >> r } }
            impl ShlAssign<$r> for $t { #[inline(always)] fn shl_assign(&mut self, r: $r) { *self = *self << r } }
            impl ShrAssign<$r> for $t { #[inline(always)] fn shr_assign(&mut self, r: $r) { *self = *self >> r } }
        )*
    };
}

macro_rules! signed_ops {
    ($($t:ty)*) => {
        $( impl Neg for $t { type Output = $t; #[inline(always)] fn neg(self) -> $t { -self } } )*
    };
}

int_ops!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize);
signed_ops!(i8 i16 i32 i64 i128 isize);

impl Not for bool {
    type Output = bool;
    #[inline(always)]
    fn not(self) -> bool {
        !self
    }
}
impl BitAnd for bool {
    type Output = bool;
    #[inline(always)]
    fn bitand(self, r: bool) -> bool {
        self & r
    }
}
impl BitOr for bool {
    type Output = bool;
    #[inline(always)]
    fn bitor(self, r: bool) -> bool {
        self | r
    }
}
impl PartialEq for bool {
    #[inline(always)]
    fn eq(&self, o: &bool) -> bool {
        *self == *o
    }
}
impl<T> PartialEq for *const T {
    #[inline(always)]
    fn eq(&self, o: &*const T) -> bool {
        *self == *o
    }
}
impl<T> PartialEq for *mut T {
    #[inline(always)]
    fn eq(&self, o: &*mut T) -> bool {
        *self == *o
    }
}

/// `container[index]` (arrays and slices index by `usize`, with a bounds check).
#[lang = "index"]
pub trait Index<Idx: ?Sized> {
    /// The element type.
    type Output: ?Sized;
    /// `&container[index]`.
    fn index(&self, index: Idx) -> &Self::Output;
}

/// `container[index] = value`.
#[lang = "index_mut"]
pub trait IndexMut<Idx: ?Sized>: Index<Idx> {
    /// `&mut container[index]`.
    fn index_mut(&mut self, index: Idx) -> &mut Self::Output;
}

// rustc indexes arrays and slices by `usize` itself (a bounds check and an address); the
// impls only make the expression type-check.
impl<T, const N: usize> Index<usize> for [T; N] {
    type Output = T;
    #[inline(always)]
    fn index(&self, index: usize) -> &T {
        &self[index]
    }
}
impl<T, const N: usize> IndexMut<usize> for [T; N] {
    #[inline(always)]
    fn index_mut(&mut self, index: usize) -> &mut T {
        &mut self[index]
    }
}
impl<T> Index<usize> for [T] {
    type Output = T;
    #[inline(always)]
    fn index(&self, index: usize) -> &T {
        &self[index]
    }
}
impl<T> IndexMut<usize> for [T] {
    #[inline(always)]
    fn index_mut(&mut self, index: usize) -> &mut T {
        &mut self[index]
    }
}

// Pointers compare by address (packet bounds checks: `if p.byte_add(14) > end { ... }`).
macro_rules! ptr_ord {
    ($($ptr:ty)*) => {
        $(
            impl<T> PartialOrd for $ptr {
                #[inline(always)] fn lt(&self, o: &$ptr) -> bool { *self < *o }
                #[inline(always)] fn le(&self, o: &$ptr) -> bool { *self <= *o }
                #[inline(always)] fn gt(&self, o: &$ptr) -> bool { *self > *o }
                #[inline(always)] fn ge(&self, o: &$ptr) -> bool { *self >= *o }
            }
        )*
    };
}
ptr_ord!(*const T *mut T);
