//! Export of a session: files written, reloaded and evaluated, with the size report.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::session::Session;
use crate::export::{
    ExportError, ExportInputs, SizeReport, ValueFormat, read_sparse, write_sparse,
};

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
    Ok(ExportReport {
        accuracy: session.evaluate_network(session.network()).accuracy,
        accuracy_f32_reloaded: reload_accuracy(session, &sparse_f32)?,
        accuracy_int8_reloaded: reload_accuracy(session, &sparse_int8)?,
        stripped,
        sparse_f32,
        sparse_int8,
        sizes,
    })
}
