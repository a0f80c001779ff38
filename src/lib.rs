//! sparsity-explorer: train small networks on MNIST-like digits and watch them being pruned.
//!
//! Layers, each knowing only the ones below it:
//! - [`prune`]: pure pruning math on host slices (masks, granularities, schedules);
//! - [`data`]: IDX files, the built-in digits, batches;
//! - [`kernels`]: CPU training kernels plugged into burn's flex backend;
//! - [`model`]: the burn models and their prunable layers;
//! - [`train`]: the session that trains and the worker thread that runs it;
//! - [`app`]: the window;
//! - [`cli`]: the headless front end.
//!
//! [`plan::ExperimentPlan`] is the one description of an experiment that all of them share.

pub mod app;
pub mod cli;
pub mod data;
pub mod export;
pub mod infer;
pub mod kernels;
pub mod masks_file;
pub mod model;
pub mod plan;
pub mod prune;
pub mod train;

use std::io::Write;

/// Every tensor op allocates its output; the system allocator returns large blocks to the
/// kernel when they are freed, so each training step page-faults its activations back in
/// (half the time of a small CNN's step). mimalloc keeps freed pages for reuse. Declared
/// here so the binary, the tests and the benchmarks all run with it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tells the allocator to keep freed memory instead of returning it to the kernel after
/// 10 ms (its default): a training step frees and reallocates the same activations, and
/// each return costs page faults and zeroing on the next step. Called by sessions; once.
pub fn keep_freed_memory() {
    /// `mi_option_purge_delay` in mimalloc 3's `mi_option_t` (include/mimalloc.h).
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: setting an option is thread-safe in mimalloc; -1 means "never purge".
    ONCE.call_once(|| unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) });
}
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, then a rename,
/// so a crash never leaves a half-written file under the final name.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
