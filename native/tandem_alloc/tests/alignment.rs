//! Every layout gets a block with its alignment, whole and writable, and a
//! resized block keeps its contents: over the sizes and alignments where the
//! plain and the aligned entry points meet.

use std::alloc::{GlobalAlloc, Layout};
use tandem_alloc::Allocator;

const SIZES: std::ops::RangeInclusive<usize> = 1..=600;
const ALIGNS: [usize; 8] = [1, 2, 4, 8, 16, 32, 64, 4096];

fn check(block: *mut u8, layout: Layout) {
    assert!(!block.is_null(), "{layout:?}");
    assert_eq!(block as usize % layout.align(), 0, "{layout:?}");
}

#[test]
fn blocks_have_the_alignment_asked_for() {
    let mut live = Vec::new();
    for size in SIZES {
        for align in ALIGNS {
            let layout = Layout::from_size_align(size, align).unwrap();
            // Several blocks of each class, so not only a page's first one.
            for _ in 0..3 {
                unsafe {
                    let block = Allocator.alloc(layout);
                    check(block, layout);
                    block.write_bytes(0xa5, size);
                    live.push((block, layout));
                }
            }
        }
    }
    for (block, layout) in live {
        unsafe { Allocator.dealloc(block, layout) };
    }
}

#[test]
fn zeroed_blocks_are_zero() {
    for size in SIZES.step_by(7) {
        for align in ALIGNS {
            let layout = Layout::from_size_align(size, align).unwrap();
            unsafe {
                let block = Allocator.alloc_zeroed(layout);
                check(block, layout);
                assert!(std::slice::from_raw_parts(block, size)
                    .iter()
                    .all(|&b| b == 0));
                Allocator.dealloc(block, layout);
            }
        }
    }
}

#[test]
fn resized_blocks_keep_their_bytes_and_alignment() {
    for align in ALIGNS {
        let mut layout = Layout::from_size_align(align, align).unwrap();
        let mut block = unsafe { Allocator.alloc(layout) };
        let pattern = |i: usize| (i * 31 % 251) as u8;
        unsafe { block.write(pattern(0)) };
        for new_size in [3, 24, 40, 48, 100, 1000, 70_000, 17, 5000] {
            let kept = layout.size().min(new_size);
            unsafe {
                for i in 0..layout.size() {
                    block.add(i).write(pattern(i));
                }
                block = Allocator.realloc(block, layout, new_size);
                layout = Layout::from_size_align(new_size, align).unwrap();
                check(block, layout);
                for i in 0..kept {
                    assert_eq!(block.add(i).read(), pattern(i), "{layout:?} byte {i}");
                }
            }
        }
        unsafe { Allocator.dealloc(block, layout) };
    }
}
