//! Export of a session: files written, reloaded and evaluated, with the size report.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::session::Session;
use crate::export::{
    Compact, ExportError, ExportInputs, SizeReport, ValueFormat, Width, compact, read_sparse,
    write_sparse,
};
use crate::model::DeviceMask;

/// What an export wrote and measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExportReport {
    pub stripped: PathBuf,
    pub sparse_f32: PathBuf,
    pub sparse_int8: PathBuf,
    #[serde(flatten)]
    pub sizes: SizeReport,
    /// Test accuracy of the session's model.
    pub accuracy: f64,
    /// Test accuracy after reloading each sparse file into a fresh copy of the model.
    pub accuracy_f32_reloaded: f64,
    pub accuracy_int8_reloaded: f64,
    /// The physically smaller network, when pruning removed channel groups or heads.
    pub compact: Option<CompactReport>,
    /// `model.onnx`: the network for any runtime, the smaller one when there is one
    /// (unstructured and N:M zeros stored as they are).
    pub onnx: PathBuf,
    pub onnx_bytes: u64,
}

/// The smaller network an export writes when channel groups or heads were removed whole.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompactReport {
    /// Its parameters (`model-compact.safetensors`) and its description
    /// (`model-compact.json`: widths, multiply-adds, the network as a plan's layers).
    pub weights: PathBuf,
    pub description: PathBuf,
    pub widths: Vec<Width>,
    pub macs_before: u64,
    pub macs_after: u64,
    pub params_before: usize,
    pub params_after: usize,
    /// Test accuracy of the smaller network, built afresh from its files' contents.
    pub accuracy: f64,
}

fn reload_accuracy(session: &Session, path: &Path) -> Result<f64, ExportError> {
    let decoded = read_sparse(path)?;
    let mut model = session.network().clone();
    model
        .write_params(&decoded.params)
        .map_err(|e| ExportError::Mismatch {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    Ok(session.evaluate_network(&model).accuracy)
}

/// Writes `model.safetensors`, `model-f32.spx` and `model-int8.spx` into `dir`, then
/// reloads both sparse files and evaluates them.
pub fn export_session(session: &Session, dir: &Path) -> Result<ExportReport, ExportError> {
    std::fs::create_dir_all(dir).map_err(|cause| ExportError::Write {
        path: dir.display().to_string(),
        cause,
    })?;
    let params = session.network().read_params();
    let plan = session.plan().to_toml();
    let (rules, masks) = (session.rules(), session.masks());
    let inputs = ExportInputs {
        model: session.plan().model.name(),
        plan_toml: &plan,
        rules: &rules,
        masks: &masks,
        params: &params,
    };
    let stripped = dir.join("model.safetensors");
    let sparse_f32 = dir.join("model-f32.spx");
    let sparse_int8 = dir.join("model-int8.spx");
    inputs.write_stripped(&stripped)?;
    write_sparse(&sparse_f32, &inputs.sparse_file(ValueFormat::F32)?)?;
    write_sparse(&sparse_int8, &inputs.sparse_file(ValueFormat::Int8)?)?;
    let sizes = inputs.size_report()?;
    // the network without what the masks removed whole: both the compact files and the
    // ONNX file are written from it
    let compact_weights = dir.join("model-compact.safetensors");
    let stack = session
        .plan()
        .stack()
        .map_err(|e| mismatch(&compact_weights, e))?;
    let narrower = compact(&stack, &params, &masks).map_err(|e| mismatch(&compact_weights, e))?;
    let compact = export_compact(session, dir, &params, &narrower, &plan)?;
    let onnx = dir.join("model.onnx");
    let onnx_bytes = write_onnx(&onnx, &stack, &params, &narrower)?;
    Ok(ExportReport {
        accuracy: session.evaluate_network(session.network()).accuracy,
        accuracy_f32_reloaded: reload_accuracy(session, &sparse_f32)?,
        accuracy_int8_reloaded: reload_accuracy(session, &sparse_int8)?,
        stripped,
        sparse_f32,
        sparse_int8,
        sizes,
        compact,
        onnx,
        onnx_bytes,
    })
}

/// Writes `model.onnx` from the smaller network `c` when channel groups or heads were
/// removed, otherwise from `stack` with `params` as they are; returns its size in bytes.
fn write_onnx(
    path: &Path,
    stack: &crate::model::StackConfig,
    params: &[crate::model::HostTensor],
    c: &Compact,
) -> Result<u64, ExportError> {
    let bytes = match c.widths.is_empty() {
        true => crate::onnx::to_onnx(stack, params),
        false => crate::onnx::to_onnx(&c.stack, &c.params),
    }
    .map_err(|e| mismatch(path, e))?;
    crate::atomic_write(path, &bytes).map_err(|cause| ExportError::Write {
        path: path.display().to_string(),
        cause,
    })?;
    Ok(bytes.len() as u64)
}

fn mismatch(path: &Path, reason: impl ToString) -> ExportError {
    ExportError::Mismatch {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Writes the smaller network `c` (`model-compact.safetensors`, `model-compact.json`) when
/// the masks removed channel groups or heads whole, and evaluates it.
fn export_compact(
    session: &Session,
    dir: &Path,
    params: &[crate::model::HostTensor],
    c: &Compact,
    plan_toml: &str,
) -> Result<Option<CompactReport>, ExportError> {
    let weights = dir.join("model-compact.safetensors");
    let description = dir.join("model-compact.json");
    if c.widths.is_empty() {
        return Ok(None);
    }
    let mut model = session
        .network_for(&c.stack)
        .map_err(|e| mismatch(&weights, e))?;
    model
        .write_params(&c.params)
        .map_err(|e| mismatch(&weights, e))?;
    let specs = model.layer_specs();
    let device = session.mask_device();
    let uploaded: Vec<Option<DeviceMask>> = c
        .masks
        .iter()
        .zip(&specs)
        .map(|(m, s)| m.as_ref().map(|m| DeviceMask::upload(m, &s.shape, &device)))
        .collect();
    model.apply_masks(uploaded.iter().map(Option::as_ref));
    let rules = crate::prune::PruningPolicy::default()
        .rules(&specs)
        .map_err(|e| mismatch(&weights, e))?;
    ExportInputs {
        model: session.plan().model.name(),
        plan_toml,
        rules: &rules,
        masks: &c.masks,
        params: &c.params,
    }
    .write_stripped(&weights)?;
    let count = |p: &[crate::model::HostTensor]| p.iter().map(|t| t.values.len()).sum();
    let report = CompactReport {
        weights,
        widths: c.widths.clone(),
        macs_before: c.macs_before,
        macs_after: c.macs_after,
        params_before: count(params),
        params_after: count(&c.params),
        accuracy: session.evaluate_network(&model).accuracy,
        description,
    };
    let json = serde_json::json!({
        "widths": report.widths,
        "macs_before": report.macs_before,
        "macs_after": report.macs_after,
        "params_before": report.params_before,
        "params_after": report.params_after,
        "accuracy": report.accuracy,
        "network": toml::to_string(&c.stack).map_err(|e| mismatch(&report.description, e))?,
    });
    crate::atomic_write(&report.description, json.to_string().as_bytes()).map_err(|cause| {
        ExportError::Write {
            path: report.description.display().to_string(),
            cause,
        }
    })?;
    Ok(Some(report))
}
