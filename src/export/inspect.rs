//! What a sparse model file holds, read back without training anything: its header, the
//! plan that produced it, and each parameter's shape, storage, granularity and sparsity.
//! `sparsity-explorer inspect` prints it, so exports can be checked headless.

use std::path::Path;

use serde::Serialize;

use super::spx::{Decoded, MaskEncoding, Storage, VERSION, ValueFormat};
use super::{ExportError, read_sparse};
use crate::model::stack::weight_key;
use crate::plan::ExperimentPlan;

/// One parameter of the file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParameterReport {
    pub name: String,
    pub dims: Vec<usize>,
    /// `dense`, `bitmask`, `indices` or `n:m`.
    pub storage: String,
    /// The plan's granularity for a pruned weight; `None` for a parameter the plan keeps
    /// dense (biases, batch-norm parameters, skipped layers).
    pub granularity: Option<String>,
    /// Weights kept (non-pruned) and in all.
    pub kept: usize,
    pub size: usize,
    pub sparsity: f64,
}

/// Everything `inspect` reports about one file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Inspection {
    pub path: String,
    pub bytes: u64,
    pub format_version: u32,
    /// `f32` or `int8`.
    pub values: String,
    pub model: String,
    pub plan_name: String,
    /// The plan as stored in the file (TOML).
    pub plan: String,
    pub parameters: Vec<ParameterReport>,
    /// Sparsity over the pruned weights together.
    pub sparsity: f64,
}

/// Reads, checks and describes the sparse file at `path`. A damaged file, or one whose
/// plan does not fit its model, is an error naming the file.
pub fn inspect_file(path: &Path) -> Result<Inspection, ExportError> {
    let decoded = read_sparse(path)?;
    let bytes = std::fs::metadata(path)
        .map_err(|cause| ExportError::Read {
            path: path.display().to_string(),
            cause,
        })?
        .len();
    describe(&decoded, &path.display().to_string(), bytes)
}

/// Describes decoded contents; `path` and `bytes` are only reported.
pub fn describe(decoded: &Decoded, path: &str, bytes: u64) -> Result<Inspection, ExportError> {
    let invalid = |reason: String| ExportError::Mismatch {
        path: path.to_string(),
        reason,
    };
    let header = &decoded.header;
    let plan = ExperimentPlan::from_toml(&header.plan, path).map_err(|e| invalid(e.to_string()))?;
    if plan.model.to_string() != header.model {
        return Err(invalid(format!(
            "the header says model {} but its plan trains {}",
            header.model, plan.model
        )));
    }
    let rules = plan
        .pruning
        .rules(&plan.layer_specs().map_err(|e| invalid(e.to_string()))?)
        .map_err(|e| invalid(e.to_string()))?;
    let mut parameters = Vec::with_capacity(header.entries.len());
    let (mut kept_all, mut size_all) = (0usize, 0usize);
    for entry in &header.entries {
        let size: usize = entry.dims.iter().product();
        let storage = match &entry.storage {
            Storage::Dense => "dense".to_string(),
            Storage::Sparse { encoding, .. } => match encoding {
                MaskEncoding::Bitmask => "bitmask".to_string(),
                MaskEncoding::Indices => "indices".to_string(),
                MaskEncoding::Nm { n, m } => format!("{n}:{m}"),
            },
        };
        let kept = match &entry.storage {
            Storage::Dense => size,
            Storage::Sparse { .. } => decoded
                .masks
                .iter()
                .find(|(name, _)| *name == entry.name)
                .map(|(_, mask)| mask.iter().filter(|&&k| k != 0).count())
                .ok_or_else(|| invalid(format!("{}: sparse entry without a mask", entry.name)))?,
        };
        let granularity = rules
            .iter()
            .find(|r| weight_key(&r.name) == entry.name)
            .and_then(|r| r.granularity)
            .map(|g| g.to_string());
        if granularity.is_some() {
            kept_all += kept;
            size_all += size;
        }
        parameters.push(ParameterReport {
            name: entry.name.clone(),
            dims: entry.dims.clone(),
            storage,
            granularity,
            kept,
            size,
            sparsity: fraction_pruned(kept, size),
        });
    }
    Ok(Inspection {
        path: path.to_string(),
        bytes,
        format_version: VERSION,
        values: match header.values {
            ValueFormat::F32 => "f32",
            ValueFormat::Int8 => "int8",
        }
        .to_string(),
        model: header.model.clone(),
        plan_name: plan.name.clone(),
        plan: header.plan.clone(),
        parameters,
        sparsity: fraction_pruned(kept_all, size_all),
    })
}

fn fraction_pruned(kept: usize, size: usize) -> f64 {
    if size == 0 {
        0.0
    } else {
        1.0 - kept as f64 / size as f64
    }
}
