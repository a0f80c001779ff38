//! `export`: the compact sparse files of a pruned model, with their sizes.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::driving::{await_event, obtain_model};
use super::plan_args::PlanArgs;
use crate::train::exporting::CompactReport;
use crate::train::{Command, Event, ExportReport, Worker};

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

/// Trains the plan (or loads `--checkpoint`), exports it into `--out` and prints the
/// sizes and reloaded accuracies, as text or as one JSON line.
pub fn export(args: &ExportArgs) -> Result<()> {
    crate::check_folder_destination(&args.out)
        .with_context(|| format!("--out: cannot write into {}", args.out.display()))?;
    let worker = Worker::spawn(None);
    let mut out = std::io::stdout().lock();
    let report = export_model(&worker, args, &mut out)?;
    if args.json {
        write_json(&mut out, &report)
    } else {
        write_text(&mut out, &report)
    }
}

/// Puts the model in the worker and has it write the files into `--out`; with `--json`
/// the worker's events go to `out` as they come, so a long training shows its progress.
fn export_model(worker: &Worker, args: &ExportArgs, out: &mut impl Write) -> Result<ExportReport> {
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
    let echo: Option<&mut dyn Write> = if args.json { Some(&mut *out) } else { None };
    obtain_model(worker, args.checkpoint.as_deref(), plan, echo)?;
    worker.send(Command::Export {
        dir: args.out.clone(),
    });
    let echo: Option<&mut dyn Write> = if args.json { Some(&mut *out) } else { None };
    let Event::Exported(r) =
        await_event(worker, echo, |_| {}, |e| matches!(e, Event::Exported(_)))?
    else {
        unreachable!("waited for an export")
    };
    Ok(r)
}

/// The report as the last JSON line of `--json`: every size, accuracy and file.
fn write_json(out: &mut impl Write, r: &ExportReport) -> Result<()> {
    let s = &r.sizes;
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
    Ok(())
}

/// The report for a reader: the sizes as bars against the dense file, the reloaded
/// accuracies, the files written and the smaller network if there is one.
fn write_text(out: &mut impl Write, r: &ExportReport) -> Result<()> {
    write_sizes(out, r)?;
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
        write_compact(out, c)?;
    }
    Ok(())
}

/// Sparsity and accuracy, then one row per file size with its ratio to the dense f32
/// file and a bar of 40 characters for 1x.
fn write_sizes(out: &mut impl Write, r: &ExportReport) -> Result<()> {
    let s = &r.sizes;
    writeln!(
        out,
        "sparsity {:.4}, accuracy {:.4}",
        s.sparsity, r.accuracy
    )?;
    for (name, bytes) in s.rows() {
        let ratio = bytes as f64 / s.dense_f32_bytes.max(1) as f64;
        let bar = "#".repeat((ratio * 40.0).round() as usize);
        writeln!(out, "{name:<12} {bytes:>10} B  {ratio:>6.3}x  {bar}")?;
    }
    Ok(())
}

/// The smaller network without the pruned channel groups and heads: its cost, size and
/// accuracy against the pruned one, and its files.
fn write_compact(out: &mut impl Write, c: &CompactReport) -> Result<()> {
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
    Ok(())
}
