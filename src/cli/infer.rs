//! `bench-infer`: dense against sparse inference of the run's model on the CPU.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::driving::{await_event, obtain_model};
use super::plan_args::PlanArgs;
use crate::data::Dataset;
use crate::export::read_sparse;
use crate::infer::bench::measure;
use crate::model::ModelKind;
use crate::model::stack::weight_key;
use crate::plan::ExperimentPlan;
use crate::train::{Command, Event, Worker};

#[derive(Debug, Args)]
pub struct BenchInferArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Use this checkpoint instead of training the plan first.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// PyTorch timing script (bench/torch_infer.py) to run on the same weights.
    #[arg(long, value_name = "SCRIPT")]
    pub reference: Option<PathBuf>,
    /// Python interpreter with torch installed.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Seconds spent timing each measurement.
    #[arg(long, default_value_t = 1.0)]
    pub seconds: f64,
    #[arg(long)]
    pub json: bool,
}

fn trained_model(args: &BenchInferArgs, dir: &std::path::Path) -> Result<()> {
    let worker = Worker::spawn(None);
    obtain_model(
        &worker,
        args.checkpoint.as_deref(),
        || args.plan.build(),
        None,
    )?;
    worker.send(Command::Export {
        dir: dir.to_path_buf(),
    });
    await_event(&worker, None, |_| {}, |e| matches!(e, Event::Exported(_)))?;
    Ok(())
}

/// The model `bench/torch_infer.py` builds for `model`.
fn reference_model(model: ModelKind) -> Result<&'static str> {
    Ok(match model {
        ModelKind::Mlp => "mlp",
        ModelKind::Resnet20 => "resnet20",
        ModelKind::VitTiny => "vit_tiny",
        other => anyhow::bail!(
            "PyTorch's inference reference has mlp, resnet20 and vit-tiny, not {other}"
        ),
    })
}

pub fn bench_infer(args: &BenchInferArgs) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("sparsity-explorer-infer-{}", std::process::id()));
    trained_model(args, &dir)?;
    let decoded = read_sparse(&dir.join("model-f32.spx"))?;
    let plan = ExperimentPlan::from_toml(&decoded.header.plan, "exported plan")?;
    let names: Vec<String> = plan.layer_specs()?.into_iter().map(|s| s.name).collect();
    let masks: Vec<Option<Vec<u8>>> = names
        .iter()
        .map(|n| {
            let w = weight_key(n);
            decoded
                .masks
                .iter()
                .find(|(m, _)| *m == w)
                .map(|(_, m)| m.clone())
        })
        .collect();
    let data = Dataset::load_for(&plan.dataset, plan.stack()?.input)?;
    let r = measure(
        &plan.stack()?,
        &decoded.params,
        &masks,
        &data.test,
        args.seconds,
    )?;
    let torch = match &args.reference {
        Some(script) => Some(super::reference::run_reference(
            &args.python,
            script,
            &[
                dir.join("model.safetensors").display().to_string(),
                "--model".into(),
                reference_model(plan.model)?.into(),
                "--seconds".into(),
                args.seconds.to_string(),
            ],
        )?),
        None => None,
    };
    let _ = std::fs::remove_dir_all(&dir);
    let mut line = serde_json::to_value(&r)?;
    line["event"] = json!("bench-infer");
    if let Some(t) = &torch {
        line["torch"] = t.clone();
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{line}")?;
        return Ok(());
    }
    writeln!(
        out,
        "{} at sparsity {:.3}: outputs differ by at most {:.2e}",
        plan.model, r.sparsity, r.max_abs_diff
    )?;
    writeln!(
        out,
        "stored weights: dense {}, sparse {}",
        r.dense_macs, r.sparse_macs
    )?;
    writeln!(
        out,
        "batch 1:   dense {:8.1} us   sparse {:8.1} us   {:.2}x",
        r.dense_batch1_us, r.sparse_batch1_us, r.batch1_speedup
    )?;
    writeln!(
        out,
        "batch 128: dense {:8.0} /s   sparse {:8.0} /s   {:.2}x",
        r.dense_batch128_samples_per_s, r.sparse_batch128_samples_per_s, r.batch128_speedup
    )?;
    if let Some(t) = torch {
        writeln!(
            out,
            "{} dense, same weights: batch 1 {:.1} us, batch 128 {:.0} /s",
            t["framework"].as_str().unwrap_or("pytorch"),
            t["batch1_us"].as_f64().unwrap_or(f64::NAN),
            t["batch128_samples_per_s"].as_f64().unwrap_or(f64::NAN)
        )?;
    }
    Ok(())
}
