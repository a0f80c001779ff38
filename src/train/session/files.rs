//! A session to and from files: checkpoints (everything, to resume) and sparse models
//! (weights and masks, to inspect and evaluate).

use std::sync::Arc;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};

use super::{Session, SessionError};
use crate::data::Dataset;
use crate::model::read_state_dict;
use crate::model::stack::weight_key;
use crate::plan::ExperimentPlan;
use crate::train::backend::BackendInfo;
use crate::train::checkpoint::{CheckpointData, CheckpointError};

impl Session {
    /// Everything needed to resume this session later; `history_json` is the front end's.
    pub fn to_checkpoint(&self, history_json: String) -> Result<CheckpointData, SessionError> {
        let encode = |what: &'static str, e: &dyn std::fmt::Display| CheckpointError::Encode {
            what,
            reason: e.to_string(),
        };
        let model = self
            .network()
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| encode("model", &e))?;
        let optimizer = self
            .optim
            .into_bytes()
            .map_err(|e| encode("optimizer", &e))?;
        let masks = self
            .layers
            .iter()
            .filter_map(|l| {
                let r = &l.rule;
                l.mask
                    .as_ref()
                    .map(|m| (r.name.clone(), r.shape.dims(), m.clone()))
            })
            .collect();
        Ok(CheckpointData {
            plan_toml: self.plan.to_toml(),
            step: self.step,
            dense_accuracy: self.dense_accuracy,
            history_json,
            model: model.to_vec(),
            optimizer: optimizer.to_vec(),
            masks,
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
        let bad = |reason: String| {
            SessionError::Checkpoint(CheckpointError::Format {
                path: "sparse model".into(),
                reason,
            })
        };
        if let Some(model) = s.model.as_mut() {
            model
                .write_params(&decoded.params)
                .map_err(|e| bad(e.to_string()))?;
        }
        for layer in &mut s.layers {
            let name = weight_key(&layer.rule.name);
            layer.mask = decoded
                .masks
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, m)| m.clone());
        }
        s.upload_masks();
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
        let bad = |reason: String| {
            SessionError::Checkpoint(CheckpointError::Format {
                path: "checkpoint".into(),
                reason,
            })
        };
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(data.model.clone()))
            .map_err(|e| bad(format!("model: {e}")))?;
        let model = s.model.take().expect("the model is present between steps");
        s.model = Some(
            model
                .try_load_record(record)
                .map_err(|e| bad(format!("model does not match the plan: {e}")))?,
        );
        // burn materializes optimizer state on the process's default device before moving it
        // at the next step (the binary pins that default to flex with BURN_DEVICE); where no
        // default device can start, training resumes with fresh Adam moments instead.
        let optim = s.optim.clone();
        let bytes = Bytes::from_bytes_vec(data.optimizer.clone());
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| optim.from_bytes(bytes))) {
            Ok(Ok(restored)) => s.optim = restored,
            Ok(Err(e)) => return Err(bad(format!("optimizer: {e}"))),
            Err(_) => s.adam_restored = false,
        }
        for (name, dims, mask) in &data.masks {
            let layer = s
                .layers
                .iter_mut()
                .find(|l| &l.rule.name == name)
                .ok_or_else(|| bad(format!("mask for unknown layer {name}")))?;
            let shape = layer.rule.shape;
            if *dims != shape.dims() || mask.len() != shape.numel() {
                return Err(bad(format!("mask {name} has shape {dims:?}")));
            }
            layer.mask = Some(mask.clone());
        }
        s.upload_masks();
        s.step = data.step;
        s.dense_accuracy = data.dense_accuracy;
        let per_epoch = s.steps_per_epoch;
        s.epoch_order = s.order.epoch(s.step / per_epoch);
        Ok(s)
    }

    /// Trains one batch: recomputes masks first when the schedule says so (measuring the
    /// dense baseline right before the first time), then forward, loss, backward, Adam, and
    /// masks re-applied so pruned weights stay exactly 0.0.
    /// Replaces the weights with a PyTorch `state_dict` read from `path` (see
    /// [`crate::model::weights`]); masks and the step are untouched.
    pub fn load_weights(&mut self, path: &std::path::Path) -> Result<(), SessionError> {
        let params = read_state_dict(path, &self.plan.stack()?)?;
        if let Some(model) = self.model.as_mut() {
            model.write_params(&params)?;
        }
        Ok(())
    }
}
