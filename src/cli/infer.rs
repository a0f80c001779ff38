//! `bench-infer`: dense against sparse inference of the run's model on the CPU.

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command as Process;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde_json::{Value, json};

use super::args::PlanArgs;
use crate::data::{Dataset, IMAGE_PIXELS};
use crate::export::read_sparse;
use crate::infer::Mlp;
use crate::model::ModelKind;
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

/// Mean seconds per call of `f`, over at least `budget`.
fn time_per_call(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let t0 = Instant::now();
    let mut calls = 0u64;
    while t0.elapsed() < budget {
        f();
        calls += 1;
    }
    t0.elapsed().as_secs_f64() / calls as f64
}

fn trained_model(args: &BenchInferArgs, dir: &std::path::Path) -> Result<()> {
    let worker = Worker::spawn(None);
    let wait = |done: &dyn Fn(&Event) -> bool| -> Result<()> {
        loop {
            match worker.recv_timeout(Duration::from_secs(3600)) {
                Ok(Event::Error { message, .. }) => bail!(message),
                Ok(e) if done(&e) => return Ok(()),
                Ok(_) => {}
                Err(true) => bail!("the training worker stopped"),
                Err(false) => {}
            }
        }
    };
    match &args.checkpoint {
        Some(path) => {
            worker.send(Command::LoadCheckpoint { path: path.clone() });
            wait(&|e| matches!(e, Event::CheckpointLoaded { .. }))?;
        }
        None => {
            worker.send(Command::Start(Box::new(args.plan.build()?)));
            wait(&|e| matches!(e, Event::Finished { .. }))?;
        }
    }
    worker.send(Command::Export {
        dir: dir.to_path_buf(),
    });
    wait(&|e| matches!(e, Event::Exported(_)))
}

pub fn bench_infer(args: &BenchInferArgs) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("sparsity-explorer-infer-{}", std::process::id()));
    trained_model(args, &dir)?;
    let decoded = read_sparse(&dir.join("model-f32.spx"))?;
    let plan = ExperimentPlan::from_toml(&decoded.header.plan, "exported plan")?;
    let names: Vec<String> = plan
        .model
        .layer_specs()
        .into_iter()
        .map(|s| s.name)
        .collect();
    if plan.model != ModelKind::Mlp {
        bail!(crate::infer::InferError::NotDense(plan.model.to_string()));
    }
    let masks: Vec<Option<Vec<u8>>> = names
        .iter()
        .map(|n| {
            let w = format!("{n}.weight");
            decoded
                .masks
                .iter()
                .find(|(m, _)| *m == w)
                .map(|(_, m)| m.clone())
        })
        .collect();
    let dense = Mlp::dense(&names, &decoded.params, &masks)?;
    let sparse = Mlp::sparse(&names, &decoded.params, &masks)?;
    let data = Dataset::load(&plan.dataset)?;
    let test = &data.test;
    let all: Vec<usize> = (0..test.len()).collect();
    let mut max_abs_diff = 0.0f32;
    for chunk in all.chunks(128) {
        let (x, _) = test.gather(chunk);
        let (a, b) = (
            dense.forward(&x, chunk.len()),
            sparse.forward(&x, chunk.len()),
        );
        for (p, q) in a.iter().zip(&b) {
            max_abs_diff = max_abs_diff.max((p - q).abs());
        }
    }
    let budget = Duration::from_secs_f64(args.seconds.max(0.05));
    let (one, _) = test.gather(&[0]);
    let (batch, _) = test.gather(&all[..128.min(all.len())]);
    let n = batch.len() / IMAGE_PIXELS;
    let dense_1 = time_per_call(budget, || {
        black_box(dense.forward(black_box(&one), 1));
    });
    let sparse_1 = time_per_call(budget, || {
        black_box(sparse.forward(black_box(&one), 1));
    });
    let dense_128 = time_per_call(budget, || {
        black_box(dense.forward(black_box(&batch), n));
    });
    let sparse_128 = time_per_call(budget, || {
        black_box(sparse.forward(black_box(&batch), n));
    });
    let sparsity = decoded
        .masks
        .iter()
        .map(|(_, m)| m.iter().filter(|&&k| k == 0).count())
        .sum::<usize>() as f64
        / decoded
            .masks
            .iter()
            .map(|(_, m)| m.len())
            .sum::<usize>()
            .max(1) as f64;
    let torch = match &args.reference {
        Some(script) => {
            let output = Process::new(&args.python)
                .arg(script)
                .arg(dir.join("model.safetensors"))
                .args(["--seconds", &args.seconds.to_string()])
                .output()
                .with_context(|| format!("cannot run {} {}", args.python, script.display()))?;
            if !output.status.success() {
                bail!(
                    "the PyTorch reference failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&output.stdout).to_string();
            let v: Value = text
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str(l).ok())
                .ok_or_else(|| anyhow!("the PyTorch reference printed no JSON: {text}"))?;
            Some(v)
        }
        None => None,
    };
    let _ = std::fs::remove_dir_all(&dir);
    let mut line = json!({
        "event": "bench-infer",
        "sparsity": sparsity,
        "dense_batch1_us": dense_1 * 1e6,
        "sparse_batch1_us": sparse_1 * 1e6,
        "dense_batch128_samples_per_s": n as f64 / dense_128,
        "sparse_batch128_samples_per_s": n as f64 / sparse_128,
        "max_abs_diff": max_abs_diff,
        "batch1_speedup": dense_1 / sparse_1,
        "batch128_speedup": dense_128 / sparse_128,
        "dense_macs": dense.macs(),
        "sparse_macs": sparse.macs(),
    });
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
        "{} at sparsity {sparsity:.3}: outputs differ by at most {max_abs_diff:.2e}",
        plan.model
    )?;
    writeln!(
        out,
        "stored weights: dense {}, sparse {}",
        dense.macs(),
        sparse.macs()
    )?;
    writeln!(
        out,
        "batch 1:   dense {:8.1} us   sparse {:8.1} us   {:.2}x",
        dense_1 * 1e6,
        sparse_1 * 1e6,
        dense_1 / sparse_1
    )?;
    writeln!(
        out,
        "batch 128: dense {:8.0} /s   sparse {:8.0} /s   {:.2}x",
        n as f64 / dense_128,
        n as f64 / sparse_128,
        dense_128 / sparse_128
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
