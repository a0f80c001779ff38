//! Counting panics on this thread, including those some code catches itself: a loader
//! that recovers from a panic in a library it calls still panicked.

use std::cell::Cell;
use std::sync::Once;

thread_local! {
    static PANICS: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` and returns its result with the number of panics raised on this thread meanwhile.
pub fn count<R>(f: impl FnOnce() -> R) -> (R, usize) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| p.set(p.get() + 1));
            report(info);
        }));
    });
    let before = PANICS.with(Cell::get);
    let result = f();
    (result, PANICS.with(Cell::get) - before)
}
