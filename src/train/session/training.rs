//! The training part of a session: the model, Adam, the loss, the batches and the step
//! counter. A step here is forward, loss, backward and Adam; what the pruning does around
//! it (masks, saliencies, exchanges) the session asks of its pruning part.

use std::sync::Arc;
use std::time::Duration;

use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, LearningRate, ModuleOptimizer};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Tensor};

use super::SessionError;
use super::batches::Batches;
use crate::data::Dataset;
use crate::kernels::FusedAdam;
use crate::model::{DeviceMask, HostTensor, Network, ParamError, StackConfig};
use crate::plan::{ExperimentPlan, PlanFileError};
use crate::train::backend::BackendInfo;
use crate::train::checkpoint::CheckpointError;
use crate::train::heartbeat::Heartbeat;

/// A remote session reads its training loss every this many steps (the others report the
/// last one read).
const REMOTE_LOSS_EVERY: u64 = 8;

/// Test examples per evaluation batch: large, since evaluation keeps no autodiff graph.
const EVAL_BATCH: usize = 1000;

/// Accuracy and mean loss on test examples.
#[derive(Clone, Copy, Debug)]
pub struct TestScore {
    pub accuracy: f64,
    pub loss: f64,
}

/// What the backward pass of a step gives: the gradients Adam will apply, the loss, and
/// how many examples the batch held.
pub(super) struct StepGradients {
    pub grads: GradientsParams,
    pub loss: f64,
    pub samples: usize,
}

/// A model trained by Adam on one dataset, one batch at a time.
pub(super) struct Training {
    model: Network,
    optim: ModuleOptimizer,
    loss_fn: CrossEntropyLoss,
    batches: Batches,
    /// Steps trained so far (the next step's index).
    step: u64,
    /// Time spent in training steps alone, and the examples they trained on.
    train_time: Duration,
    trained_samples: u64,
    /// The last training loss read from the device (`NaN` before the first read).
    last_loss: f64,
    /// Renewed at every step and evaluation batch, when a worker watches this session.
    heartbeat: Option<Heartbeat>,
    /// False when a checkpoint's Adam state could not be restored (fresh moments instead).
    adam_restored: bool,
}

impl Training {
    /// The network of `stack` on `device` (an autodiff device, already seeded) with fresh
    /// Adam moments, and the first epoch's batches of `data`.
    pub(super) fn new(
        plan: &ExperimentPlan,
        stack: &StackConfig,
        data: Arc<Dataset>,
        device: &Device,
        remote: bool,
    ) -> Result<Self, SessionError> {
        let model = Network::new(stack, data.classes, device).map_err(PlanFileError::from)?;
        let batches = Batches::new(data, device, remote, plan);
        Ok(Self {
            model,
            optim: ModuleOptimizer::from(FusedAdam::default()),
            loss_fn: CrossEntropyLossConfig::new().init(device),
            batches,
            step: 0,
            train_time: Duration::ZERO,
            trained_samples: 0,
            last_loss: f64::NAN,
            heartbeat: None,
            adam_restored: true,
        })
    }

    pub(super) fn network(&self) -> &Network {
        &self.model
    }

    pub(super) fn data(&self) -> &Arc<Dataset> {
        self.batches.data()
    }

    /// The autodiff device the model trains on.
    pub(super) fn device(&self) -> &Device {
        self.batches.device()
    }

    pub(super) fn step(&self) -> u64 {
        self.step
    }

    pub(super) fn steps_per_epoch(&self) -> u64 {
        self.batches.steps_per_epoch()
    }

    /// The steps `plan` trains for.
    pub(super) fn total_steps(&self, plan: &ExperimentPlan) -> u64 {
        plan.training.epochs as u64 * self.steps_per_epoch()
    }

    pub(super) fn trained_samples(&self) -> u64 {
        self.trained_samples
    }

    pub(super) fn train_time(&self) -> Duration {
        self.train_time
    }

    /// Training examples per second over the training steps alone.
    pub(super) fn samples_per_s(&self) -> f64 {
        let t = self.train_time.as_secs_f64();
        if t > 0.0 {
            self.trained_samples as f64 / t
        } else {
            0.0
        }
    }

    pub(super) fn adam_restored(&self) -> bool {
        self.adam_restored
    }

    pub(super) fn set_heartbeat(&mut self, heartbeat: Heartbeat) {
        self.heartbeat = Some(heartbeat);
    }

    /// Tells a watcher this session is working.
    pub(super) fn beat(&self) {
        if let Some(h) = &self.heartbeat {
            h.beat();
        }
    }

    /// Forward, loss and backward on the current step's batch. On a remote device the loss
    /// is read every [`REMOTE_LOSS_EVERY`] steps, so that the operations of the steps
    /// between stream on; a loss that is not finite stops the run.
    pub(super) fn gradients(
        &mut self,
        plan: &ExperimentPlan,
        backend: &BackendInfo,
    ) -> Result<StepGradients, SessionError> {
        let step = self.step;
        let indices = self.batches.indices(step);
        let (images, labels) = self.batches.train(&indices);
        let logits = self.model.forward(images); // [batch, classes]
        let loss = self.loss_fn.forward(logits, labels); // [1]
        let read_loss = !backend.is_remote()
            || self.last_loss.is_nan()
            || step.is_multiple_of(REMOTE_LOSS_EVERY)
            || step + 1 >= self.total_steps(plan);
        let loss_value = if read_loss {
            let value = try_scalar(&loss).map_err(|reason| SessionError::DeviceLost {
                step,
                device: backend.device.clone(),
                reason,
            })?;
            self.last_loss = value;
            value
        } else {
            self.last_loss
        };
        if !loss_value.is_finite() {
            return Err(SessionError::NonFiniteLoss {
                step,
                value: loss_value,
            });
        }
        Ok(StepGradients {
            grads: GradientsParams::from_grads(loss.backward(), &self.model),
            loss: loss_value,
            samples: indices.len(),
        })
    }

    /// The gradients of the loss on the current step's batch, without training on it.
    pub(super) fn batch_gradients(&self) -> GradientsParams {
        let (images, labels) = self.batches.train(&self.batches.indices(self.step));
        let loss = self.loss_fn.forward(self.model.forward(images), labels);
        GradientsParams::from_grads(loss.backward(), &self.model)
    }

    /// The current step's images on the device without autodiff (a calibration batch).
    pub(super) fn batch_images(&self) -> Tensor<4> {
        self.batches
            .train_untracked(&self.batches.indices(self.step))
            .0
    }

    /// Adam's step at learning rate `lr`, then `masks` applied so pruned weights stay 0.0.
    pub(super) fn optimize<'a>(
        &mut self,
        lr: LearningRate,
        grads: GradientsParams,
        masks: impl IntoIterator<Item = Option<&'a DeviceMask>>,
    ) {
        // the optimizer takes the model and gives it back; an empty network holds its place
        let model = std::mem::replace(&mut self.model, Network::empty());
        self.model = self.optim.step(lr, model, grads);
        self.model.apply_masks(masks);
    }

    /// Counts a step trained in `elapsed` on `samples` examples, and moves on to the next
    /// epoch's order when the step ends one.
    pub(super) fn finish_step(&mut self, elapsed: Duration, samples: usize) {
        self.train_time += elapsed;
        self.trained_samples += samples as u64;
        self.step += 1;
        if self.step.is_multiple_of(self.steps_per_epoch()) {
            self.batches.start_epoch_of(self.step);
        }
    }

    /// Applies device masks (`None`: dense) to the weights.
    pub(super) fn apply_masks<'a>(
        &mut self,
        masks: impl IntoIterator<Item = Option<&'a DeviceMask>>,
    ) {
        self.model.apply_masks(masks);
    }

    /// Replaces the parameters with `params` (by name).
    pub(super) fn write_params(&mut self, params: &[HostTensor]) -> Result<(), ParamError> {
        self.model.write_params(params)
    }

    /// A lottery ticket's rewind: the parameters back to `params`, with fresh Adam moments.
    pub(super) fn rewind(&mut self, params: &[HostTensor]) -> Result<(), ParamError> {
        self.model.write_params(params)?;
        self.optim = ModuleOptimizer::from(FusedAdam::default());
        Ok(())
    }

    /// Accuracy and mean loss of `model` (this network or a copy of it) on the test examples
    /// `subset` (`None`: all), in evaluation mode.
    pub(super) fn score(&self, model: &Network, subset: Option<&[usize]>) -> TestScore {
        let model = model.valid();
        let all: Vec<usize>;
        let indices = match subset {
            Some(s) => s,
            None => {
                all = (0..self.data().test.len()).collect();
                &all
            }
        };
        let (mut correct, mut loss_sum) = (0usize, 0.0f64);
        for chunk in indices.chunks(EVAL_BATCH) {
            self.beat();
            let (images, labels) = self.batches.test(chunk);
            let logits = model.forward(images); // [n, classes]
            let loss = self.loss_fn.forward(logits.clone(), labels.clone());
            loss_sum += scalar(&loss) * chunk.len() as f64;
            let predicted = logits.argmax(1).squeeze_dim::<1>(1); // [n]
            let hits = predicted.equal(labels).int().sum(); // [1]
            correct += hits.into_data().iter::<i64>().next().unwrap_or(0) as usize;
        }
        let n = indices.len().max(1) as f64;
        TestScore {
            accuracy: correct as f64 / n,
            loss: loss_sum / n,
        }
    }

    /// The model and Adam's state as bytes, for a checkpoint.
    pub(super) fn encode(&self) -> Result<(Vec<u8>, Vec<u8>), CheckpointError> {
        let encode = |what: &'static str, e: &dyn std::fmt::Display| CheckpointError::Encode {
            what,
            reason: e.to_string(),
        };
        let model = self
            .model
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| encode("model", &e))?;
        let optimizer = self
            .optim
            .into_bytes()
            .map_err(|e| encode("optimizer", &e))?;
        Ok((model.to_vec(), optimizer.to_vec()))
    }

    /// This training with a checkpoint's model and Adam state (`Err`: why they do not fit).
    pub(super) fn restored(mut self, model: Vec<u8>, optimizer: Vec<u8>) -> Result<Self, String> {
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(model))
            .map_err(|e| format!("model: {e}"))?;
        self.model = self
            .model
            .try_load_record(record)
            .map_err(|e| format!("model does not match the plan: {e}"))?;
        // burn materializes optimizer state on the process's default device before moving it
        // at the next step (the binary pins that default to flex with BURN_DEVICE); where no
        // default device can start, training resumes with fresh Adam moments instead.
        let optim = self.optim.clone();
        let bytes = Bytes::from_bytes_vec(optimizer);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| optim.from_bytes(bytes))) {
            Ok(Ok(restored)) => self.optim = restored,
            Ok(Err(e)) => return Err(format!("optimizer: {e}")),
            Err(_) => self.adam_restored = false,
        }
        Ok(self)
    }

    /// Goes on from `step` (a restored checkpoint's), in its epoch's order.
    pub(super) fn resume_at(&mut self, step: u64) {
        self.step = step;
        self.batches.start_epoch_of(step);
    }
}

/// The value of a one-element tensor, `NaN` when the device cannot give it.
fn scalar(t: &Tensor<1>) -> f64 {
    try_scalar(t).unwrap_or(f64::NAN)
}

/// The value of a one-element tensor, or why the device could not give it (a remote
/// server that went away).
fn try_scalar(t: &Tensor<1>) -> Result<f64, String> {
    t.clone()
        .try_into_data()
        .map_err(|e| e.to_string())
        .map(|d| d.iter::<f64>().next().unwrap_or(f64::NAN))
}
