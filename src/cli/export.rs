//! `export`: the compact sparse files of a pruned model, with their sizes.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::driving::{await_event, obtain_model};
use super::plan_args::PlanArgs;
use crate::train::{Command, Event, Worker};

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Export this checkpoint instead of training the plan first.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Folder for model.safetensors, model-f32.spx and model-int8.spx.
    #[arg(long, value_name = "DIR", default_value = "export")]
    pub out: PathBuf,
    /// JSON lines on stdout; the last one is the report.
    #[arg(long)]
    pub json: bool,
}

pub fn export(args: &ExportArgs) -> Result<()> {
    crate::check_folder_destination(&args.out)
        .with_context(|| format!("--out: cannot write into {}", args.out.display()))?;
    let worker = Worker::spawn(None);
    let mut out = std::io::stdout().lock();
    let plan = || {
        let plan = args.plan.build()?;
        if !args.json {
            eprintln!(
                "training {} with {} first",
                plan.model, plan.pruning.granularity
            );
        }
        Ok(plan)
    };
    let echo: Option<&mut dyn Write> = if args.json { Some(&mut out) } else { None };
    obtain_model(&worker, args.checkpoint.as_deref(), plan, echo)?;
    worker.send(Command::Export {
        dir: args.out.clone(),
    });
    let echo: Option<&mut dyn Write> = if args.json { Some(&mut out) } else { None };
    let Event::Exported(r) =
        await_event(&worker, echo, |_| {}, |e| matches!(e, Event::Exported(_)))?
    else {
        unreachable!("waited for an export")
    };
    let s = &r.sizes;
    if args.json {
        let line = json!({
            "event": "export",
            "dense_f32_bytes": s.dense_f32_bytes,
            "dense_gzip_bytes": s.dense_gzip_bytes,
            "sparse_f32_bytes": s.sparse_f32_bytes,
            "sparse_int8_bytes": s.sparse_int8_bytes,
            "floor_f32_bytes": s.floor_f32_bytes,
            "floor_int8_bytes": s.floor_int8_bytes,
            "sparsity": s.sparsity,
            "accuracy": r.accuracy,
            "accuracy_f32_reloaded": r.accuracy_f32_reloaded,
            "accuracy_int8_reloaded": r.accuracy_int8_reloaded,
            "files": [r.stripped, r.sparse_f32, r.sparse_int8],
            "compact": r.compact,
            "onnx": r.onnx,
            "onnx_bytes": r.onnx_bytes,
        });
        writeln!(out, "{line}")?;
        return Ok(());
    }
    writeln!(
        out,
        "sparsity {:.4}, accuracy {:.4}",
        s.sparsity, r.accuracy
    )?;
    let rows = s.rows();
    for (name, bytes) in rows {
        let ratio = bytes as f64 / s.dense_f32_bytes.max(1) as f64;
        let bar = "#".repeat((ratio * 40.0).round() as usize);
        writeln!(out, "{name:<12} {bytes:>10} B  {ratio:>6.3}x  {bar}")?;
    }
    writeln!(
        out,
        "reloaded: f32 {:.4} (same model: {}), int8 {:.4} ({:+.2} points)",
        r.accuracy_f32_reloaded,
        if r.accuracy_f32_reloaded == r.accuracy {
            "exact"
        } else {
            "differs"
        },
        r.accuracy_int8_reloaded,
        100.0 * (r.accuracy_int8_reloaded - r.accuracy)
    )?;
    writeln!(
        out,
        "files: {}, {}, {}",
        r.stripped.display(),
        r.sparse_f32.display(),
        r.sparse_int8.display()
    )?;
    writeln!(
        out,
        "ONNX: {} ({} B){}",
        r.onnx.display(),
        r.onnx_bytes,
        match r.compact {
            Some(_) => ", the smaller network",
            None => "",
        }
    )?;
    if let Some(c) = &r.compact {
        writeln!(
            out,
            "smaller network without the pruned channel groups and heads: {} -> {} multiply-adds per example ({:.2}x), {} -> {} parameters, accuracy {:.4}; {} narrower layers; files: {}, {}",
            c.macs_before,
            c.macs_after,
            c.macs_before as f64 / c.macs_after.max(1) as f64,
            c.params_before,
            c.params_after,
            c.accuracy,
            c.widths.len(),
            c.weights.display(),
            c.description.display()
        )?;
    }
    Ok(())
}
