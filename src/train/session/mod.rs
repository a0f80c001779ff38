//! A training session: model, optimizer, data, device and masks. One thing at a time:
//! a step (prune if due, forward, loss, backward, Adam, masks re-applied), an evaluation,
//! a snapshot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use thiserror::Error;

mod batches;
mod cadence;
mod dynamic;
mod evaluating;
mod files;
mod layer_state;
mod pruning;
mod saliency;
mod snapshots;

use cadence::CutFollow;
pub use evaluating::TestScore;
use layer_state::PrunableLayer;

use super::backend::BackendInfo;
use super::checkpoint::CheckpointError;
use super::heartbeat::Heartbeat;
pub use super::report::{EvalPhase, Evaluation, PruneReport, StepOutcome};
use super::report::{LayerInfo, LayerSummary, Summary, group_roles};
use crate::data::{Dataset, EpochOrder};
use crate::kernels::FusedAdam;
use crate::model::stack::unit_groups;
use crate::model::{HostTensor, Network, ParamError, StackConfig, WeightsError};
use crate::plan::{ExperimentPlan, PlanFileError};
use crate::prune::{LayerRule, StepSchedule, UnitGroup};

/// A remote session reads its training loss every this many steps (the others report the
/// last one read).
const REMOTE_LOSS_EVERY: u64 = 8;

/// Test examples per evaluation batch: large, since evaluation keeps no autodiff graph.
const EVAL_BATCH: usize = 1000;

/// Why a session cannot go on.
#[derive(Debug, Error)]
pub enum SessionError {
    #[error(transparent)]
    Plan(#[from] PlanFileError),
    #[error("loss became {value} at step {step}: training diverged (try a lower learning rate)")]
    NonFiniteLoss { step: u64, value: f64 },
    #[error("{0} cannot change during a run; reset to apply it")]
    NeedsReset(&'static str),
    #[error("no prunable layer named {0:?}")]
    UnknownLayer(String),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(
        "the network takes images of {network:?} but the data's are {data:?}: set input = {data:?} in the plan"
    )]
    DataShape {
        network: [usize; 3],
        data: [usize; 3],
    },
    #[error(
        "{path}: the ONNX model takes images of {network:?} (channels, height, width) but the data's are {data:?}: choose a dataset of its shape, or a model of the data's"
    )]
    OnnxInput {
        path: std::path::PathBuf,
        network: [usize; 3],
        data: [usize; 3],
    },
    #[error(transparent)]
    Params(#[from] ParamError),
    #[error("{0}")]
    Spread(String),
    #[error("the device stopped answering at step {step} ({device}): {reason}")]
    DeviceLost {
        step: u64,
        device: String,
        reason: String,
    },
}

/// One run of one plan on one device.
pub struct Session {
    plan: ExperimentPlan,
    backend: BackendInfo,
    device: Device,
    /// Always `Some` between calls; taken only while the optimizer consumes it.
    model: Option<Network>,
    optim: ModuleOptimizer,
    loss_fn: CrossEntropyLoss,
    data: Arc<Dataset>,
    /// The dataset on a remote device, uploaded once (see [`batches`]); `None` locally.
    on_device: Option<batches::DeviceData>,
    order: EpochOrder,
    epoch_order: Vec<usize>,
    /// Each prunable layer's rule, masks and criterion sums, in layer order.
    layers: Vec<PrunableLayer>,
    /// The network's unit groups (channels tied by its graph, attention heads), each
    /// pruned together.
    groups: Vec<UnitGroup>,
    schedule: StepSchedule,
    step: u64,
    steps_per_epoch: u64,
    dense_accuracy: Option<f64>,
    last_evaluation: Option<Evaluation>,
    /// False when a checkpoint's Adam state could not be restored (fresh moments instead).
    adam_restored: bool,
    started: Instant,
    train_time: Duration,
    trained_samples: u64,
    /// Time spent evaluating on the test split, and how long the last evaluation took.
    eval_time: Duration,
    last_eval_cost: Option<Duration>,
    /// `train_time` when the last evaluation ran.
    train_time_at_eval: Duration,
    /// The evaluations that follow the pruning (automatic cadence).
    cuts: CutFollow,
    /// Renewed at every step and evaluation batch, when a worker watches this session.
    heartbeat: Option<Heartbeat>,
    /// Every parameter at the plan's rewind moment (lottery tickets), once reached.
    rewind_to: Option<Vec<HostTensor>>,
    /// How many steps each layer's Taylor sum covers.
    taylor_steps: u64,
    /// The last training loss read from the device (`NaN` before the first read).
    last_loss: f64,
    /// The pruning settings changed after the schedule's last pruning step: the next step
    /// prunes to them (a live change in the schedule's hold phase).
    prune_pending: bool,
}

impl Session {
    /// Builds the model on `device` (an autodiff device is derived from it) and checks the
    /// plan against the data.
    pub fn new(
        plan: ExperimentPlan,
        data: Arc<Dataset>,
        device: Device,
        backend: BackendInfo,
    ) -> Result<Self, SessionError> {
        let schedule = plan.validate(data.train.len())?;
        let rules = plan
            .pruning
            .rules(&plan.layer_specs()?)
            .map_err(PlanFileError::from)?;
        let stack = plan.stack()?;
        crate::keep_freed_memory();
        device.seed(plan.training.seed);
        let device = device.autodiff();
        if stack.input != data.shape {
            return Err(match &plan.onnx {
                Some(path) => SessionError::OnnxInput {
                    path: path.clone(),
                    network: stack.input,
                    data: data.shape,
                },
                None => SessionError::DataShape {
                    network: stack.input,
                    data: data.shape,
                },
            });
        }
        let model = Network::new(&stack, data.classes, &device).map_err(PlanFileError::from)?;
        let groups = unit_groups(model.graph());
        let order = EpochOrder::new(plan.training.seed, data.train.len(), plan.training.batch);
        let epoch_order = order.epoch(0);
        let on_device = backend
            .is_remote()
            .then(|| batches::DeviceData::upload(&data.train, &data.test, data.shape, &device));
        Ok(Self {
            steps_per_epoch: plan.steps_per_epoch(data.train.len()),
            optim: ModuleOptimizer::from(FusedAdam::default()),
            loss_fn: CrossEntropyLossConfig::new().init(&device),
            plan,
            backend,
            device,
            model: Some(model),
            data,
            on_device,
            order,
            epoch_order,
            layers: rules.into_iter().map(PrunableLayer::new).collect(),
            groups,
            schedule,
            step: 0,
            dense_accuracy: None,
            last_evaluation: None,
            adam_restored: true,
            started: Instant::now(),
            train_time: Duration::ZERO,
            trained_samples: 0,
            eval_time: Duration::ZERO,
            last_eval_cost: None,
            train_time_at_eval: Duration::ZERO,
            cuts: CutFollow::default(),
            heartbeat: None,
            rewind_to: None,
            taylor_steps: 0,
            prune_pending: false,
            last_loss: f64::NAN,
        })
    }

    /// The model being trained.
    pub fn network(&self) -> &Network {
        self.model
            .as_ref()
            .expect("the model is present between steps")
    }

    pub fn plan(&self) -> &ExperimentPlan {
        &self.plan
    }

    pub fn backend(&self) -> &BackendInfo {
        &self.backend
    }

    pub fn dataset(&self) -> &Dataset {
        &self.data
    }

    /// A shared handle to the data, for sessions built from this one.
    pub fn dataset_handle(&self) -> Arc<Dataset> {
        self.data.clone()
    }

    /// Steps trained so far (the next step's index).
    pub fn step(&self) -> u64 {
        self.step
    }

    pub fn steps_per_epoch(&self) -> u64 {
        self.steps_per_epoch
    }

    pub fn total_steps(&self) -> u64 {
        self.plan.training.epochs as u64 * self.steps_per_epoch
    }

    /// Whether the run is over: never for a plan that trains until stopped.
    pub fn is_done(&self) -> bool {
        !self.plan.training.until_stopped && self.step >= self.total_steps()
    }

    /// Fractional epochs trained.
    pub fn epoch(&self) -> f64 {
        self.step as f64 / self.steps_per_epoch as f64
    }

    /// The prunable layers' rules, in layer order.
    pub fn rules(&self) -> Vec<LayerRule> {
        self.layers.iter().map(|l| l.rule.clone()).collect()
    }

    /// The prunable layer `i`'s rule.
    pub fn rule(&self, i: usize) -> &LayerRule {
        &self.layers[i].rule
    }

    /// The host masks of the prunable layers (`None`: dense), in layer order.
    pub fn masks(&self) -> Vec<Option<Vec<u8>>> {
        self.layers.iter().map(|l| l.mask.clone()).collect()
    }

    /// The planned mask sparsity at each pruning step over the whole run.
    pub fn planned_schedule(&self) -> Vec<(u64, f64)> {
        self.schedule.mask_targets(self.total_steps())
    }

    pub fn layer_infos(&self) -> Vec<LayerInfo> {
        let roles = group_roles(&self.groups, self.layers.len());
        self.layers
            .iter()
            .zip(roles)
            .map(|(PrunableLayer { rule: r, .. }, groups)| LayerInfo {
                name: r.name.clone(),
                shape: r.shape,
                params: r.shape.numel(),
                granularity: granularity_name(r),
                dense_reason: r.dense_reason.clone(),
                groups,
            })
            .collect()
    }

    /// The network's unit groups: channel groups and attention heads.
    pub fn unit_groups(&self) -> &[UnitGroup] {
        &self.groups
    }

    /// Training examples seen so far.
    pub fn trained_samples(&self) -> u64 {
        self.trained_samples
    }

    /// Time spent in training steps alone (no evaluations).
    pub fn train_time(&self) -> Duration {
        self.train_time
    }

    /// Training examples per second over the training steps alone.
    pub fn samples_per_s(&self) -> f64 {
        let t = self.train_time.as_secs_f64();
        if t > 0.0 {
            self.trained_samples as f64 / t
        } else {
            0.0
        }
    }

    /// Fraction of pruned weights over all prunable layers, from the masks.
    pub fn mask_sparsity(&self) -> f64 {
        let (mut zeros, mut total) = (0usize, 0usize);
        for layer in &self.layers {
            total += layer.rule.shape.numel();
            if let Some(m) = &layer.mask {
                zeros += m.iter().filter(|&&k| k == 0).count();
            }
        }
        if total == 0 {
            0.0
        } else {
            zeros as f64 / total as f64
        }
    }

    /// Takes a new plan mid-run. Pruning settings, learning rate, evaluation interval and
    /// epochs may change; model, dataset, batch size, seed and backend need a reset.
    pub fn update_plan(&mut self, plan: ExperimentPlan) -> Result<(), SessionError> {
        if let Some(what) = self.plan.reset_reason(&plan) {
            return Err(SessionError::NeedsReset(what));
        }
        let schedule = plan.validate(self.data.train.len())?;
        let rules = plan
            .pruning
            .rules(&plan.layer_specs()?)
            .map_err(PlanFileError::from)?;
        for (layer, rule) in self.layers.iter_mut().zip(rules) {
            // a layer that is now dense loses its mask at once
            if rule.granularity.is_none() {
                layer.mask = None;
                layer.device_mask = None;
            }
            layer.rule = rule;
        }
        self.prune_pending |= plan.pruning != self.plan.pruning
            && schedule
                .last_prune_step()
                .is_some_and(|last| self.step > last);
        self.plan = plan;
        self.schedule = schedule;
        Ok(())
    }

    /// The training examples of the step about to be trained (`epoch_order` is always the
    /// order of the current step's epoch).
    fn current_batch(&self) -> Vec<usize> {
        let batch_in_epoch = (self.step % self.steps_per_epoch) as usize;
        self.order.batch(&self.epoch_order, batch_in_epoch).to_vec()
    }

    /// Lets a watcher see this session working: every step and evaluation batch beats.
    pub fn set_heartbeat(&mut self, heartbeat: Heartbeat) {
        self.heartbeat = Some(heartbeat);
    }

    pub fn train_step(&mut self) -> Result<StepOutcome, SessionError> {
        if let Some(h) = &self.heartbeat {
            h.beat();
        }
        let step = self.step;
        let mut evaluations = Vec::new();
        let mut pruned = None;
        if let Some(at) = self.plan.pruning.rewind
            && at.resolve(self.steps_per_epoch) == step
        {
            self.rewind_to = Some(self.network().read_params());
        }
        if self.follows_cuts() && self.cuts.recovery_due(step, false) {
            evaluations.push(self.evaluate_recovery());
        }
        if self.schedule.should_prune(step) || self.prune_pending {
            self.prune_pending = false;
            if self.dense_accuracy.is_none() {
                let e = self.evaluate(EvalPhase::Baseline);
                self.dense_accuracy = Some(e.accuracy);
                evaluations.push(e);
            }
            let value = self.schedule.value(step);
            pruned = Some(self.cut(step, &mut evaluations, |s| s.prune(value))?);
        }

        let t0 = Instant::now();
        let indices = self.current_batch();
        let (images, labels) = self.train_batch(&indices);
        let logits = self.network().forward(images); // [batch, classes]
        let loss = self.loss_fn.forward(logits, labels); // [1]
        // on a remote device every read waits for the network: its loss is read every
        // REMOTE_LOSS_EVERY steps, so the operations of the steps between stream on
        let read_loss = !self.backend.is_remote()
            || self.last_loss.is_nan()
            || step.is_multiple_of(REMOTE_LOSS_EVERY)
            || step + 1 >= self.total_steps();
        let loss_value = if read_loss {
            let value = try_scalar(&loss).map_err(|reason| SessionError::DeviceLost {
                step,
                device: self.backend.device.clone(),
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
        let grads = GradientsParams::from_grads(loss.backward(), self.network());
        self.accumulate_saliency(&grads);
        let exchange = self.exchange_due(step, &grads);
        let model = self
            .model
            .take()
            .expect("the model is present between steps");
        let mut model = self.optim.step(self.plan.training.lr, model, grads);
        model.apply_masks(self.layers.iter().map(|l| l.device_mask.as_ref()));
        self.model = Some(model);
        if let Some(due) = exchange {
            pruned = Some(self.cut(step, &mut evaluations, |s| s.exchange(due))?);
        }
        self.train_time += t0.elapsed();
        self.trained_samples += indices.len() as u64;
        self.step += 1;
        if self.step.is_multiple_of(self.steps_per_epoch) {
            self.epoch_order = self.order.epoch(self.step / self.steps_per_epoch);
        }
        Ok(StepOutcome {
            step,
            loss: loss_value,
            pruned,
            evaluations,
        })
    }

    /// A fresh network of `stack` on this session's device, for this session's data: what
    /// a smaller export of its network is evaluated as.
    pub fn network_for(&self, stack: &StackConfig) -> Result<Network, SessionError> {
        Ok(Network::new(stack, self.data.classes, &self.device).map_err(PlanFileError::from)?)
    }

    /// The device masks are uploaded to (without autodiff).
    pub fn mask_device(&self) -> Device {
        self.device.clone().inner()
    }

    /// Whether the optimizer state of a restored checkpoint came back (always true for a
    /// session trained from scratch).
    pub fn adam_restored(&self) -> bool {
        self.adam_restored
    }

    /// The most recent evaluation, if any.
    pub fn last_evaluation(&self) -> Option<Evaluation> {
        self.last_evaluation
    }

    /// Seconds since the session was built.
    pub fn summary_elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn dense_accuracy(&self) -> Option<f64> {
        self.dense_accuracy
    }

    /// The run's result. Evaluates if the last evaluation is not of the current weights.
    pub fn summary(&mut self) -> Summary {
        let last = match self.last_evaluation {
            Some(e) if e.step == self.step && e.subset.is_none() => e,
            _ => self.evaluate(EvalPhase::Final),
        };
        let weights = self.network().read_weights();
        let final_target = self.schedule_final();
        let (mut zeros, mut total) = (0usize, 0usize);
        let layers = self
            .layers
            .iter()
            .map(|l| &l.rule)
            .zip(&weights)
            .map(|(r, w)| {
                let z = w.iter().filter(|&&v| v == 0.0).count();
                zeros += z;
                total += w.len();
                LayerSummary {
                    name: r.name.clone(),
                    shape: r.shape.dims(),
                    granularity: granularity_name(r),
                    criterion: r.criterion.to_string(),
                    target: r.target(final_target, final_target),
                    sparsity: z as f64 / w.len().max(1) as f64,
                }
            })
            .collect();
        Summary {
            model: self.plan.model.to_string(),
            dataset: self.data.name.clone(),
            dense_accuracy: self.dense_accuracy.unwrap_or(last.accuracy),
            final_accuracy: last.accuracy,
            sparsity: zeros as f64 / total.max(1) as f64,
            layers,
            steps: self.step,
            wall_s: self.started.elapsed().as_secs_f64(),
            train_samples_per_s: self.samples_per_s(),
            eval_s: self.eval_seconds(),
            backend: self.backend.backend.clone(),
            device: self.backend.device.clone(),
        }
    }
}

fn granularity_name(rule: &LayerRule) -> String {
    rule.granularity
        .map(|g| g.to_string())
        .unwrap_or_else(|| "dense".into())
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
