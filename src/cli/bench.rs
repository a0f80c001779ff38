//! `bench`: training throughput of a model, printed beside PyTorch's measured in the same run.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use serde_json::json;

use crate::data::Dataset;
use crate::model::ModelKind;
use crate::plan::{BackendChoice, ExperimentPlan};
use crate::prune::{At, Schedule};
use crate::train::Session;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, ignore_case = true, default_value_t = ModelKind::Mlp)]
    pub model: ModelKind,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Timed training steps (after 20 warm-up steps). Default: 10-20 seconds of training on
    /// a 2-core CPU, from 3000 steps for the mlp to 60 for ResNet-20.
    #[arg(long)]
    pub steps: Option<u64>,
    #[arg(long, value_enum, ignore_case = true, default_value_t = BackendChoice::Flex)]
    pub backend: BackendChoice,
    /// PyTorch's torch_reference.py, run in the same process tree for a ratio.
    #[arg(long, value_name = "SCRIPT")]
    pub reference: Option<PathBuf>,
    /// Python interpreter with torch installed.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Threads for PyTorch (match the cores flex uses).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// One JSON line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Warm-up steps before timing (allocator, caches, autotune).
const WARMUP: u64 = 20;

/// Samples per second over `steps` training steps with a 50% unstructured mask re-applied
/// after every step, as in a real pruning run.
pub fn measure(
    model: ModelKind,
    batch: usize,
    steps: u64,
    backend: BackendChoice,
) -> Result<(f64, String)> {
    let mut plan = ExperimentPlan::preset("quick-demo")?;
    plan.model = model;
    plan.training.batch = batch;
    plan.training.backend = backend;
    plan.pruning.layers.clear();
    plan.pruning.granularity = crate::prune::Granularity::Unstructured;
    plan.pruning.schedule = Schedule::Constant {
        target: 0.5,
        begin: At::Step(0),
        end: Some(At::Step(0)),
        frequency: 1,
    };
    let data = Arc::new(Dataset::builtin()?);
    let per_epoch = plan.steps_per_epoch(data.train.len());
    plan.training.epochs = ((steps + WARMUP).div_ceil(per_epoch) + 1) as u32;
    let (device, info) = crate::train::backend::select_for(&plan.training)?;
    let mut session = Session::new(plan, data, device, info.clone())?;
    for _ in 0..WARMUP {
        session.train_step()?;
    }
    // the steps' own time: an evaluation of what training won back after the cut may fall
    // among the timed steps, and it is not training (PyTorch's loop has none)
    let (samples_before, time_before) = (session.trained_samples(), session.train_time());
    for _ in 0..steps {
        session.train_step()?;
    }
    let samples = session.trained_samples() - samples_before;
    let seconds = (session.train_time() - time_before).as_secs_f64();
    Ok((
        samples as f64 / seconds,
        format!("{} ({})", info.backend, info.device),
    ))
}

/// Timed steps when `--steps` is not given: 10-20 seconds of training for each side on a
/// 2-core CPU. A run of a fraction of a second (the mlp's 300 steps) measures the
/// machine's moment more than either side.
pub fn default_steps(model: ModelKind) -> u64 {
    match model {
        ModelKind::Mlp => 3000,
        ModelKind::SmallCnn => 2000,
        ModelKind::Lenet5 => 600,
        ModelKind::SeedCnn | ModelKind::VitTiny | ModelKind::Custom => 100,
        ModelKind::Resnet20 => 60,
    }
}

/// Runs PyTorch's reference script for one model and returns its samples/s.
fn reference(args: &BenchArgs, model: ModelKind, steps: u64) -> Result<(f64, String)> {
    let script = args.reference.as_ref().expect("called with a reference");
    let name = match model {
        ModelKind::Mlp => "mlp",
        ModelKind::Lenet5 => "lenet5",
        ModelKind::SeedCnn => "seed_cnn",
        ModelKind::SmallCnn => "small_cnn",
        ModelKind::Resnet20 => "resnet20",
        ModelKind::VitTiny => "vit_tiny",
        ModelKind::Custom => bail!("PyTorch's reference has the built-in models only"),
    };
    let line = super::reference::run_reference(
        &args.python,
        script,
        &[
            "--models".into(),
            name.into(),
            "--batch".into(),
            args.batch.to_string(),
            "--steps".into(),
            steps.to_string(),
            "--threads".into(),
            args.threads.to_string(),
        ],
    )?;
    let sps = line["samples_per_s"]
        .as_f64()
        .ok_or_else(|| anyhow!("no samples_per_s in {line}"))?;
    Ok((
        sps,
        line["framework"].as_str().unwrap_or("pytorch").to_string(),
    ))
}

pub fn bench(args: &BenchArgs) -> Result<()> {
    let model = args.model;
    let steps = args.steps.unwrap_or_else(|| default_steps(model));
    let (ours, device) = measure(model, args.batch, steps, args.backend)?;
    let torch = args
        .reference
        .as_ref()
        .map(|_| reference(args, model, steps))
        .transpose()?;
    if args.json {
        let mut line = json!({
            "event": "bench",
            "model": model.name(),
            "batch": args.batch,
            "steps": steps,
            "backend": device,
            "samples_per_s": ours,
        });
        if let Some((t, framework)) = &torch {
            line["reference"] = json!(framework);
            line["reference_samples_per_s"] = json!(t);
            line["ratio"] = json!(ours / t);
        }
        println!("{line}");
    } else {
        println!(
            "{} batch {} on {device}: {ours:.0} training samples/s (masks re-applied every step)",
            model.name(),
            args.batch
        );
        if let Some((t, framework)) = torch {
            println!(
                "{framework} ({} threads), same model and batch: {t:.0} samples/s",
                args.threads
            );
            println!("ratio: {:.2}x PyTorch", ours / t);
        }
    }
    Ok(())
}
