//! sparsity-explorer: train small networks on MNIST-like digits and watch them being pruned.
//!
//! Layers, each knowing only the ones below it:
//! - [`prune`]: pure pruning math on host slices (masks, granularities, schedules);
//! - [`data`]: IDX files, the built-in digits, image folders, CIFAR binaries, batches;
//! - [`kernels`]: CPU training kernels plugged into burn's flex backend (and carried to a
//!   served device as custom operations);
//! - [`model`]: the burn models and their prunable layers;
//! - [`plan`]: the experiment plan, and [`plan_code`] its one-line form;
//! - [`masks_file`]: masks saved as safetensors;
//! - [`export`]: the sparse file format and the size report; [`infer`]: dense and sparse
//!   CPU inference on exported weights;
//! - [`train`]: the session that trains, the worker thread that runs it, the analyses;
//! - [`lessons`]: the course; [`i18n`]: English and Chinese;
//! - [`app`]: the window;
//! - [`cli`]: the headless front end.
//!
//! `fuzz` (private) holds the loaders' fuzz tests and the allocator that measures them.
//!
//! [`plan::ExperimentPlan`] is the one description of an experiment that all of them share.

pub mod app;
pub mod cli;
pub mod data;
pub mod export;
pub mod host;
pub mod i18n;
pub mod infer;
pub mod kernels;
pub mod layers;
pub mod lessons;
pub mod masks_file;
pub mod model;
pub mod onnx;
pub mod plan;
pub mod plan_code;
pub mod prune;
pub mod train;

use std::io::Write;

/// Every tensor op allocates its output; the system allocator returns large blocks to the
/// kernel when they are freed, so each training step page-faults its activations back in
/// (half the time of a small CNN's step). mimalloc keeps freed pages for reuse. Declared
/// here so the binary, the tests and the benchmarks all run with it.
#[cfg(not(test))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The library's own tests run on the same allocator, measuring each allocation's size
/// for the loaders' fuzz tests.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: fuzz::TrackingAllocator = fuzz::TrackingAllocator;

#[cfg(test)]
mod fuzz;

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

/// Writes `bytes` to `path` atomically: a uniquely named temporary file in the same folder,
/// flushed to disk, then renamed over `path`. A crash never leaves a half-written file
/// under the final name, and two saves to the same path at once never share a temporary
/// file (the last rename wins, each file whole).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = folder_of(path);
    if path.file_name().is_none() {
        return Err(std::io::Error::other(format!(
            "{} is not a file path",
            path.display()
        )));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".spx-save-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // On failure the temporary file is removed when `tmp` (inside the error) drops.
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

/// The folder a save to `path` writes its temporary file in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Checks, before any work, that [`atomic_write`] could save to `path`: its folder exists
/// and takes new files, and `path` is not a folder. Leaves nothing behind.
pub fn check_destination(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        return Err(std::io::Error::other("it is a folder, not a file"));
    }
    let dir = folder_of(path);
    if !dir.is_dir() {
        return Err(std::io::Error::other(format!(
            "the folder {} does not exist",
            dir.display()
        )));
    }
    tempfile::Builder::new()
        .prefix(".spx-check-")
        .tempfile_in(dir)
        .map(drop)
}

/// Checks, before any work, that files can be written into the folder `dir`, creating it
/// (and its parents) when it does not exist yet.
pub fn check_folder_destination(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    tempfile::Builder::new()
        .prefix(".spx-check-")
        .tempfile_in(dir)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_checked_without_leaving_files() {
        let dir = std::env::temp_dir().join(format!("spx-dest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(check_destination(&dir.join("m.safetensors")).is_ok());
        let missing = check_destination(&dir.join("no/such/m.safetensors")).unwrap_err();
        assert!(missing.to_string().contains("does not exist"), "{missing}");
        assert!(
            check_destination(&dir)
                .unwrap_err()
                .to_string()
                .contains("folder")
        );
        assert!(check_folder_destination(&dir.join("out/deeper")).is_ok());
        assert!(dir.join("out/deeper").is_dir());
        let file = dir.join("plain.txt");
        std::fs::write(&file, b"x").unwrap();
        assert!(
            check_folder_destination(&file).is_err(),
            "a file is no folder"
        );
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec!["out", "plain.txt"], "nothing else left behind");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("spx-lib-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn concurrent_saves_to_one_path_leave_one_whole_file_and_no_temporaries() {
        let dir = temp_dir("concurrent");
        let path = dir.join("model.bin");
        let contents: Vec<Vec<u8>> = (0..8u8).map(|t| vec![t; 200_000 + t as usize]).collect();
        std::thread::scope(|scope| {
            for bytes in &contents {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..10 {
                        atomic_write(path, bytes).unwrap();
                    }
                });
            }
        });
        let saved = std::fs::read(&path).unwrap();
        assert!(contents.contains(&saved), "the file is one save, whole");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("model.bin")]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_save_that_cannot_happen_is_an_error_and_leaves_the_old_file() {
        let dir = temp_dir("failing");
        let missing = dir.join("no-such-folder").join("plan.toml");
        assert!(atomic_write(&missing, b"x").is_err());
        assert!(atomic_write(&dir, b"x").is_err(), "a folder is not a file");
        let path = dir.join("plan.toml");
        atomic_write(&path, b"first").unwrap();
        atomic_write(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
