//! mimalloc as the global allocator, called through its plain entry points
//! whenever they already give the alignment asked for.
//!
//! Documents, diffs and frames are many small allocations, and mimalloc
//! serves them markedly cheaper than the system allocator (BENCHMARKS.md,
//! Core). The `mimalloc` crate's `GlobalAlloc`, however, passes every
//! request to `mi_malloc_aligned`, whose dispatch on the alignment costs
//! about twice the plain `mi_malloc` fast path: 3.5 % of all the fuzzer's
//! instructions (BENCHMARKS.md, Fuzzer). No published version of that crate
//! avoids it yet, so these few lines do, on `libmimalloc-sys` (the same C
//! library, built the same way).
//!
//! When the plain path is enough: mimalloc's size classes are multiples of
//! 8 bytes, of 16 above 16, and each page's first block is 16-aligned. A
//! request whose alignment is at most 16 and divides its size lands in a
//! class that is a multiple of that alignment, so every block of it is
//! aligned. Anything else (over-aligned types, odd custom layouts) takes the
//! aligned entry points as before. `mi_free` frees blocks of either kind.

#![no_std]

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use libmimalloc_sys as mi;

/// The allocator. Install it with
/// `#[global_allocator] static ALLOCATOR: tandem_alloc::Allocator = tandem_alloc::Allocator;`.
pub struct Allocator;

/// The largest alignment a plain mimalloc block guarantees (its
/// `MI_MAX_ALIGN_SIZE` on 64-bit targets).
const PLAIN_ALIGN: usize = 16;

#[inline(always)]
fn plain(layout: &Layout) -> bool {
    layout.align() <= PLAIN_ALIGN && layout.size() % layout.align() == 0
}

/// A fresh block for `layout` from the plain or the aligned entry point.
#[inline(always)]
unsafe fn fresh(
    layout: Layout,
    plain_entry: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned_entry: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    let block = if plain(&layout) {
        plain_entry(layout.size())
    } else {
        aligned_entry(layout.size(), layout.align())
    };
    block.cast()
}

unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        fresh(layout, mi::mi_malloc, mi::mi_malloc_aligned)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        fresh(layout, mi::mi_zalloc, mi::mi_zalloc_aligned)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr.cast::<c_void>());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let ptr = ptr.cast::<c_void>();
        // The block keeps the old alignment; the new size must keep the
        // plain path's condition too.
        let grown = Layout::from_size_align_unchecked(new_size, layout.align());
        let block = if plain(&grown) {
            mi::mi_realloc(ptr, new_size)
        } else {
            mi::mi_realloc_aligned(ptr, new_size, layout.align())
        };
        block.cast()
    }
}
