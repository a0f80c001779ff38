//! The test build's global allocator: mimalloc, as in the binary, recording the largest
//! single allocation each thread makes so the fuzzer can bound what a loader asks for.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    // `try_with`: during thread teardown the slot may be gone; nothing to record then.
    let _ = LARGEST.try_with(|largest| {
        if size > largest.get() {
            largest.set(size);
        }
    });
}

/// Runs `f` and returns its result with the largest allocation it made on this thread.
pub fn largest_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = LARGEST.with(|l| l.replace(0));
    let result = f();
    let largest = LARGEST.with(|l| l.replace(before.max(l.get())));
    (result, largest)
}

pub struct TrackingAllocator;

// SAFETY: every call is forwarded unchanged to mimalloc; recording touches only a
// thread-local `Cell` that needs no allocation.
unsafe impl GlobalAlloc for TrackingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_allocation_is_measured_per_call() {
        let (_, small) = largest_during(|| std::hint::black_box(vec![0u8; 1_000]));
        let (_, big) = largest_during(|| std::hint::black_box(vec![0u8; 5_000_000]));
        assert!((1_000..5_000_000).contains(&small), "{small}");
        assert!(big >= 5_000_000, "{big}");
    }
}
