//! `inspect`: what a sparse model file holds, without training anything.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::export::{Inspection, inspect_file};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A sparse model file written by `export` (model-f32.spx or model-int8.spx).
    #[arg(value_name = "FILE.spx")]
    pub file: PathBuf,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn inspect(args: &InspectArgs) -> Result<()> {
    let report = inspect_file(&args.file)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        write_text(&mut out, &report)?;
    }
    Ok(())
}

fn write_text(out: &mut impl Write, r: &Inspection) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: sparse model, format version {}, {} bytes, {} values",
        r.path, r.format_version, r.bytes, r.values
    )?;
    writeln!(out, "model {}, plan {:?}", r.model, r.plan_name)?;
    writeln!(
        out,
        "{:<14} {:<16} {:<9} {:<14} {:>19} {:>8}",
        "parameter", "shape", "storage", "granularity", "kept / size", "sparsity"
    )?;
    for p in &r.parameters {
        writeln!(
            out,
            "{:<14} {:<16} {:<9} {:<14} {:>19} {:>8.4}",
            p.name,
            format!("{:?}", p.dims),
            p.storage,
            p.granularity.as_deref().unwrap_or("-"),
            format!("{} / {}", p.kept, p.size),
            p.sparsity
        )?;
    }
    writeln!(out, "sparsity of the pruned weights {:.4}", r.sparsity)
}
