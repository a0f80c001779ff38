//! A session to and from files: checkpoints (everything, to resume), sparse models
//! (weights and masks, to inspect and evaluate) and starting weights (a PyTorch
//! `state_dict` or an ONNX model). Each part writes and restores its own state; this file
//! puts them together.

use std::sync::Arc;

use burn::tensor::Device;

use super::{Session, SessionError};
use crate::data::Dataset;
use crate::plan::{ExperimentPlan, read_weights_file};
use crate::train::backend::BackendInfo;
use crate::train::checkpoint::{CheckpointData, CheckpointError};

impl Session {
    /// Everything needed to resume this session later; `history_json` is the front end's.
    pub fn to_checkpoint(&self, history_json: String) -> Result<CheckpointData, SessionError> {
        let (model, optimizer) = self.training.encode()?;
        Ok(CheckpointData {
            plan_toml: self.plan.to_toml(),
            step: self.step(),
            dense_accuracy: self.dense_accuracy(),
            history_json,
            model,
            optimizer,
            masks: self.pruning.checkpoint_masks(),
        })
    }

    /// A session holding a model read from a sparse file: its plan, parameters and masks,
    /// at step 0 (to inspect the masks, evaluate, analyse or fine-tune further).
    pub fn from_sparse(
        decoded: &crate::export::Decoded,
        dataset: Arc<Dataset>,
        device: Device,
        backend: BackendInfo,
    ) -> Result<Self, SessionError> {
        let plan = ExperimentPlan::from_toml(&decoded.header.plan, "sparse model plan")?;
        let mut s = Session::new(plan, dataset, device, backend)?;
        s.training
            .write_params(&decoded.params)
            .map_err(|e| format_error("sparse model", e.to_string()))?;
        s.pruning.restore_named_masks(&decoded.masks);
        s.pruning.upload_masks(&mut s.training);
        Ok(s)
    }

    /// Rebuilds a session from a checkpoint: same plan, weights, Adam state, masks and step.
    pub fn from_checkpoint(
        data: &CheckpointData,
        dataset: Arc<Dataset>,
        device: Device,
        backend: BackendInfo,
    ) -> Result<Self, SessionError> {
        let plan = ExperimentPlan::from_toml(&data.plan_toml, "checkpoint plan")?;
        let mut s = Session::new(plan, dataset, device, backend)?;
        let bad = |reason: String| format_error("checkpoint", reason);
        s.training = s
            .training
            .restored(data.model.clone(), data.optimizer.clone())
            .map_err(bad)?;
        s.pruning
            .restore_checkpoint_masks(&data.masks)
            .map_err(bad)?;
        s.pruning.upload_masks(&mut s.training);
        s.training.resume_at(data.step);
        s.evaluations.set_dense_accuracy(data.dense_accuracy);
        Ok(s)
    }

    /// Replaces the weights with those of the file at `path`, a PyTorch `state_dict` or an
    /// ONNX model (see [`read_weights_file`]); masks and the step are untouched.
    pub fn load_weights(&mut self, path: &std::path::Path) -> Result<(), SessionError> {
        let params = read_weights_file(path, &self.plan.stack()?)?;
        self.training.write_params(&params)?;
        Ok(())
    }
}

/// A file of `kind` that does not fit the session, and why.
fn format_error(kind: &str, reason: String) -> SessionError {
    SessionError::Checkpoint(CheckpointError::Format {
        path: kind.into(),
        reason,
    })
}
