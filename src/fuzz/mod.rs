//! Seeded mutation fuzzing of every loader: starting from valid files, inputs with bits
//! flipped, bytes overwritten, truncated, spliced, grown or carrying huge length fields
//! must come back as errors or values, never as panics, and no loader may make an
//! allocation larger than its input justifies.
//!
//! `cargo test --release --lib fuzz` runs [`QUICK`] inputs per loader;
//! `cargo test --release --lib fuzz -- --ignored` runs [`THOROUGH`] per loader.

mod allocation;
mod loaders;
mod mutate;
mod panics;

pub(crate) use allocation::TrackingAllocator;

use std::panic::{AssertUnwindSafe, catch_unwind};

use mutate::Mutator;

/// Inputs per loader in the default test run.
const QUICK: usize = 1_000;
/// Inputs per loader in the ignored, thorough run.
const THOROUGH: usize = 100_000;

/// A loader under test: parses one input, returning whether it was accepted. The largest
/// allocation it may make for an input of `len` bytes is `allowed(len)`.
struct Loader {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    parse: fn(&[u8]) -> bool,
    allowed: fn(usize) -> usize,
}

/// What a fuzzing run saw.
#[derive(Debug, Default)]
struct Tally {
    accepted: usize,
    rejected: usize,
}

/// Runs `count` mutated inputs (and every seed unchanged) through `loader`; fails on the
/// first panic or oversized allocation, naming the input's seed and index.
fn fuzz(loader: &Loader, count: usize, seed: u64) -> Tally {
    let mut mutator = Mutator::new(seed, loader.seeds.clone());
    let mut tally = Tally::default();
    let inputs = loader
        .seeds
        .clone()
        .into_iter()
        .chain((0..count).map(|_| mutator.next()));
    for (index, input) in inputs.enumerate() {
        let (outcome, largest) = allocation::largest_during(|| {
            panics::count(|| catch_unwind(AssertUnwindSafe(|| (loader.parse)(&input))))
        });
        let (outcome, panics) = outcome;
        assert_eq!(
            panics,
            0,
            "{}: input {index} (fuzz seed {seed}, {} bytes) panicked inside the loader \
             (caught there, but a panic all the same)",
            loader.name,
            input.len()
        );
        let accepted = outcome.unwrap_or_else(|_| {
            panic!(
                "{}: input {index} (fuzz seed {seed}, {} bytes) panicked the loader",
                loader.name,
                input.len()
            )
        });
        let allowed = (loader.allowed)(input.len());
        assert!(
            largest <= allowed,
            "{}: input {index} (fuzz seed {seed}, {} bytes, saved as {}) allocated {largest} \
             bytes at once, more than the {allowed} its size justifies",
            loader.name,
            input.len(),
            save_failing(&input)
        );
        if accepted {
            tally.accepted += 1;
        } else {
            tally.rejected += 1;
        }
    }
    tally
}

/// Keeps a failing input for whoever reads the failure: its path, or why it was not kept.
fn save_failing(input: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("fuzz-failing-{}.bin", std::process::id()));
    match std::fs::write(&path, input) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("nowhere ({e})"),
    }
}

/// Fuzzes one loader and checks the run exercised both outcomes: every seed is accepted,
/// and mutations are mostly rejected.
fn check(loader: Loader, count: usize) {
    let tally = fuzz(&loader, count, 0x5eed ^ count as u64);
    eprintln!("{}: {count} mutated inputs, {tally:?}", loader.name);
    assert!(
        tally.accepted >= loader.seeds.len(),
        "{}: {tally:?}",
        loader.name
    );
    assert!(
        tally.rejected > 0,
        "{}: no mutation was rejected",
        loader.name
    );
}

macro_rules! fuzz_tests {
    ($($quick:ident, $thorough:ident => $loader:path;)*) => {$(
        #[test]
        fn $quick() {
            check($loader(), QUICK);
        }

        #[test]
        #[ignore = "thorough: 100,000 inputs (cargo test --release --lib fuzz -- --ignored)"]
        fn $thorough() {
            check($loader(), THOROUGH);
        }
    )*};
}

fuzz_tests! {
    idx_images, idx_images_thorough => loaders::idx_images;
    idx_labels, idx_labels_thorough => loaders::idx_labels;
    cifar, cifar_thorough => loaders::cifar;
    image_file, image_file_thorough => loaders::image_file;
    checkpoint, checkpoint_thorough => loaders::checkpoint;
    sparse_model, sparse_model_thorough => loaders::sparse_model;
    masks, masks_thorough => loaders::masks;
    weights, weights_thorough => loaders::weights;
    onnx_model, onnx_model_thorough => loaders::onnx_model;
    plan_toml, plan_toml_thorough => loaders::plan_toml;
    plan_string, plan_string_thorough => loaders::plan_string;
}
