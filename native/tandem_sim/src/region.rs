//! A global allocator that serves one seed's allocations from a region it
//! hands out by bumping an offset, and takes the whole region back at once
//! when the seed is over.
//!
//! Why: a simulated session is tens of thousands of small, short-lived
//! blocks (frames, diffs, values, queue entries), and every one of them is
//! dead when the seed's world is dropped. Served by mimalloc, allocating and
//! freeing them was about 7 % of the fuzzer's instructions, and reusing
//! freed blocks scattered each seed over the heap. From a region, an
//! allocation is an aligned bump, a free is a count, and a seed's data lies
//! in the order it was made: over 20 seeds, 3 % fewer instructions and 22 %
//! fewer first-level data cache misses (BENCHMARKS.md, Fuzzer).
//!
//! Why by hand: `blink-alloc`'s global allocator (the arena crate that comes
//! closest) sends each free to the arena or to the system allocator by the
//! mode it is switched to at that moment, not by where the block came from,
//! so a block that crosses the switch (the report a seed returns, a buffer
//! std makes lazily) goes to the wrong allocator; and its unlocked variant
//! may not be called from two threads at once, which `net` mode's runtime
//! does. Here a block is recognised by its address, so a free always goes
//! where the block came from, from any thread.
//!
//! Safety rests on one rule, checked rather than assumed: the region is
//! reused only when every block the seed took from it has been freed (the
//! live count is zero). A block that outlives its seed (a lazily made static,
//! a block freed on another thread, a panic's payload) keeps the region from
//! being reused: it is retired, later seeds bump past it until it is full,
//! and then everything is served by the inner allocator. Nothing is ever
//! overwritten while a block in it may still be read.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// The region's size: address space reserved once, backed by pages only as
/// seeds touch them. A seed of 4 clients x 100 operations peaks at a few
/// megabytes; a larger one that fills it continues on the inner allocator.
const CAPACITY: usize = 256 << 20;

/// A thread's view of the region. The live count is kept per thread: a
/// region block freed on another thread is counted there, so the scope's
/// own count never reaches zero and the region is retired, as it must be.
struct Local {
    /// Whether this thread's allocations come from the region: only inside
    /// a scope's work, not while its result is copied out (frees of region
    /// blocks are counted whenever they happen).
    allocating: Cell<bool>,
    /// Blocks this thread took from the region and has not freed (less
    /// those it freed that other threads took).
    live: Cell<usize>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            allocating: Cell::new(false),
            live: Cell::new(0),
        }
    };
}

/// The region's bounds, readable from any thread (both 0 until it exists).
static START: AtomicUsize = AtomicUsize::new(0);
static END: AtomicUsize = AtomicUsize::new(0);
/// The address of the region's next free byte: read and written only by
/// the thread holding [`CLAIMED`].
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Held by the one thread in a scope.
static CLAIMED: AtomicBool = AtomicBool::new(false);
static RESETS: AtomicU64 = AtomicU64::new(0);
static RETIRED: AtomicBool = AtomicBool::new(false);

fn local<R>(f: impl FnOnce(&Local) -> R) -> R {
    LOCAL.with(f)
}

fn inside(ptr: *mut u8) -> bool {
    let at = ptr as usize;
    at >= START.load(Ordering::Relaxed) && at < END.load(Ordering::Relaxed)
}

/// The allocator: the region inside [`scoped`], `A` everywhere else.
pub struct Region<A> {
    inner: A,
}

impl<A> Region<A> {
    pub const fn new(inner: A) -> Self {
        Region { inner }
    }
}

/// A block from the region, if this thread is allocating from it and it
/// has room.
#[inline]
fn take(layout: Layout) -> Option<*mut u8> {
    local(|l| {
        if !l.allocating.get() {
            return None;
        }
        let at = NEXT
            .load(Ordering::Relaxed)
            .next_multiple_of(layout.align());
        let end = at.checked_add(layout.size())?;
        if end > END.load(Ordering::Relaxed) {
            return None;
        }
        NEXT.store(end, Ordering::Relaxed);
        l.live.set(l.live.get() + 1);
        Some(at as *mut u8)
    })
}

unsafe impl<A: GlobalAlloc> GlobalAlloc for Region<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match take(layout) {
            Some(block) => block,
            None => self.inner.alloc(layout),
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match take(layout) {
            Some(block) => {
                // A reused region holds the last seed's bytes.
                block.write_bytes(0, layout.size());
                block
            }
            None => self.inner.alloc_zeroed(layout),
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if inside(ptr) {
            // Counted only; the room comes back when the region is reset.
            local(|l| l.live.set(l.live.get().wrapping_sub(1)));
        } else {
            self.inner.dealloc(ptr, layout);
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !inside(ptr) {
            return self.inner.realloc(ptr, layout, new_size);
        }
        if new_size <= layout.size() {
            // A region block shrinks where it is.
            return ptr;
        }
        // The last block taken grows where it is.
        let grown = local(|l| {
            let last = ptr as usize + layout.size() == NEXT.load(Ordering::Relaxed);
            let end = ptr as usize + new_size;
            let fits = l.allocating.get() && end <= END.load(Ordering::Relaxed);
            if last && fits {
                NEXT.store(end, Ordering::Relaxed);
            }
            last && fits
        });
        if grown {
            return ptr;
        }
        let moved = Layout::from_size_align_unchecked(new_size, layout.align());
        let block = self.alloc(moved);
        if !block.is_null() {
            block.copy_from_nonoverlapping(ptr, layout.size());
            self.dealloc(ptr, layout);
        }
        block
    }
}

/// Gives up the claim however the scope ends; on a panic the region is
/// retired, since the payload may be a block from it.
struct Claim;

impl Drop for Claim {
    fn drop(&mut self) {
        if std::thread::panicking() {
            RETIRED.store(true, Ordering::Relaxed);
        }
        local(|l| l.allocating.set(false));
        CLAIMED.store(false, Ordering::Release);
    }
}

/// Runs `work` with its allocations served from the region, returns a copy
/// of its result made outside the region, and makes the region's room
/// reusable if nothing from it is still alive. Only in effect when
/// [`Region`] is the global allocator. A nested call runs `work` as part of
/// the scope around it, and a call while another thread is in a scope runs
/// it on the inner allocator; after the region is retired, scopes use what
/// room it has left.
pub fn scoped<T: Clone>(work: impl FnOnce() -> T) -> T {
    // A nested call finds the claim held, as another thread's call does.
    if CLAIMED.swap(true, Ordering::Acquire) {
        return work();
    }
    let claim = Claim;
    if END.load(Ordering::Relaxed) == 0 && !reserve() {
        drop(claim);
        return work();
    }
    local(|l| l.allocating.set(true));
    let made = work();
    local(|l| l.allocating.set(false));
    let copy = made.clone();
    drop(made);
    let empty = local(|l| l.live.get() == 0);
    if empty && !RETIRED.load(Ordering::Relaxed) {
        let start = START.load(Ordering::Relaxed);
        if cfg!(debug_assertions) {
            // A debug build overwrites what the seed left, so that a block
            // wrongly thought dead reads garbage at once instead of
            // stale data that happens to look right.
            let used = NEXT.load(Ordering::Relaxed) - start;
            // Safety: the region's first `used` bytes are ours and no
            // live block is among them (the count is zero).
            unsafe { (start as *mut u8).write_bytes(0xa5, used) };
        }
        NEXT.store(start, Ordering::Relaxed);
        RESETS.fetch_add(1, Ordering::Relaxed);
    } else {
        RETIRED.store(true, Ordering::Relaxed);
    }
    drop(claim);
    copy
}

/// Reserves the region's address space from the system allocator.
fn reserve() -> bool {
    // Safety: the layout is non-zero; the block is never freed.
    let block = unsafe { System.alloc(Layout::from_size_align_unchecked(CAPACITY, 4096)) };
    if block.is_null() {
        return false;
    }
    START.store(block as usize, Ordering::Relaxed);
    END.store(block as usize + CAPACITY, Ordering::Relaxed);
    NEXT.store(block as usize, Ordering::Relaxed);
    true
}

/// How many times a scope ended with its region empty and made it reusable.
pub fn resets() -> u64 {
    RESETS.load(Ordering::Relaxed)
}

/// Whether `ptr` points into the region.
pub fn contains(ptr: *const u8) -> bool {
    inside(ptr.cast_mut())
}

/// Whether a block outlived its scope, so that the region is never reused.
pub fn retired() -> bool {
    RETIRED.load(Ordering::Relaxed)
}
