//! A training session: one run of one plan on one device, in parts that each keep their
//! own state. [`training::Training`] has the model, Adam, the loss, the batches and the step
//! counter; [`pruning::Pruning`] the prunable layers' rules, masks and criterion sums, the
//! unit groups, the schedule and the cut; [`evaluating::Evaluations`] the evaluation
//! cadence and its results; `files.rs` takes a session to and from files (checkpoints,
//! sparse models, PyTorch weights). The session holds the parts and does one thing at a
//! time with them: a step (prune if due, forward, loss, backward, Adam, masks re-applied),
//! an evaluation, a snapshot.

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use thiserror::Error;

mod batches;
mod cadence;
mod evaluating;
mod files;
mod pruning;
mod training;

use evaluating::Evaluations;
use pruning::{Cut, Pruning};
pub use training::TestScore;
use training::{StepGradients, Training};

use super::backend::BackendInfo;
use super::checkpoint::CheckpointError;
use super::heartbeat::Heartbeat;
pub use super::report::{EvalPhase, Evaluation, PruneReport, StepOutcome};
use super::report::{LayerInfo, LayerSnapshot, Summary};
use crate::data::Dataset;
use crate::masks_file::NamedMask;
use crate::model::stack::unit_groups;
use crate::model::{Network, ParamError, StackConfig};
use crate::plan::{CheckedPlan, ExperimentPlan, PlanFileError, WeightsFileError};
use crate::prune::{LayerRule, UnitGroup};

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
    Weights(#[from] WeightsFileError),
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
    started: Instant,
    training: Training,
    pruning: Pruning,
    evaluations: Evaluations,
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
        let training = Training::new(&plan, &stack, data, &device, backend.is_remote())?;
        let groups = unit_groups(training.network().graph());
        Ok(Self {
            plan,
            backend,
            started: Instant::now(),
            training,
            pruning: Pruning::new(rules, groups, schedule),
            evaluations: Evaluations::default(),
        })
    }

    /// The model being trained.
    pub fn network(&self) -> &Network {
        self.training.network()
    }

    pub fn plan(&self) -> &ExperimentPlan {
        &self.plan
    }

    pub fn backend(&self) -> &BackendInfo {
        &self.backend
    }

    /// The training examples, which a plan's schedule is checked against.
    pub fn train_len(&self) -> usize {
        self.training.data().train.len()
    }

    pub fn dataset(&self) -> &Dataset {
        self.training.data()
    }

    /// A shared handle to the data, for sessions built from this one.
    pub fn dataset_handle(&self) -> Arc<Dataset> {
        self.training.data().clone()
    }

    /// Steps trained so far (the next step's index).
    pub fn step(&self) -> u64 {
        self.training.step()
    }

    pub fn steps_per_epoch(&self) -> u64 {
        self.training.steps_per_epoch()
    }

    pub fn total_steps(&self) -> u64 {
        self.training.total_steps(&self.plan)
    }

    /// Whether the run is over: never for a plan that trains until stopped.
    pub fn is_done(&self) -> bool {
        !self.plan.training.until_stopped && self.step() >= self.total_steps()
    }

    /// Fractional epochs trained.
    pub fn epoch(&self) -> f64 {
        self.step() as f64 / self.steps_per_epoch() as f64
    }

    /// The prunable layers' rules, in layer order.
    pub fn rules(&self) -> Vec<LayerRule> {
        self.pruning.rules()
    }

    /// The prunable layer `i`'s rule.
    pub fn rule(&self, i: usize) -> &LayerRule {
        self.pruning.rule(i)
    }

    /// The host masks of the prunable layers (`None`: dense), in layer order.
    pub fn masks(&self) -> Vec<Option<Vec<u8>>> {
        self.pruning.masks()
    }

    /// The planned mask sparsity at each pruning step over the whole run.
    pub fn planned_schedule(&self) -> Vec<(u64, f64)> {
        self.pruning.schedule().mask_targets(self.total_steps())
    }

    pub fn layer_infos(&self) -> Vec<LayerInfo> {
        self.pruning.layer_infos()
    }

    /// The network's unit groups: channel groups and attention heads.
    pub fn unit_groups(&self) -> &[UnitGroup] {
        self.pruning.unit_groups()
    }

    /// Training examples seen so far.
    pub fn trained_samples(&self) -> u64 {
        self.training.trained_samples()
    }

    /// Time spent in training steps alone (no evaluations).
    pub fn train_time(&self) -> std::time::Duration {
        self.training.train_time()
    }

    /// Training examples per second over the training steps alone.
    pub fn samples_per_s(&self) -> f64 {
        self.training.samples_per_s()
    }

    /// Fraction of pruned weights over all prunable layers, from the masks.
    pub fn mask_sparsity(&self) -> f64 {
        self.pruning.mask_sparsity()
    }

    /// Takes a new plan mid-run. Pruning settings, learning rate, evaluation interval and
    /// epochs may change; model, dataset, batch size, seed and backend need a reset.
    pub fn update_plan(&mut self, checked: CheckedPlan) -> Result<(), SessionError> {
        if let Some(what) = self.plan.reset_reason(checked.plan()) {
            return Err(SessionError::NeedsReset(what));
        }
        let (plan, schedule) = checked.for_examples(self.train_len())?;
        let rules = plan
            .pruning
            .rules(&plan.layer_specs()?)
            .map_err(PlanFileError::from)?;
        let policy_changed = plan.pruning != self.plan.pruning;
        self.pruning
            .update(rules, schedule, policy_changed, self.training.step());
        self.plan = plan;
        Ok(())
    }

    /// Lets a watcher see this session working: every step and evaluation batch beats.
    pub fn set_heartbeat(&mut self, heartbeat: Heartbeat) {
        self.training.set_heartbeat(heartbeat);
    }

    /// Trains one batch: recomputes masks first when the schedule says so (measuring the
    /// dense baseline right before the first time), then forward, loss, backward, Adam, and
    /// masks re-applied so pruned weights stay exactly 0.0.
    pub fn train_step(&mut self) -> Result<StepOutcome, SessionError> {
        self.training.beat();
        let step = self.training.step();
        let mut evaluated = Vec::new();
        let mut pruned = None;
        self.pruning.keep_rewind_point(&self.training, &self.plan);
        if self.evaluations.recovery_due(&self.plan, step, false) {
            evaluated.push(self.evaluations.evaluate_recovery(
                &self.training,
                &self.plan,
                self.pruning.schedule(),
                self.pruning.mask_sparsity(),
            ));
        }
        if let Some(value) = self.pruning.take_due(step) {
            let sparsity = self.pruning.mask_sparsity();
            evaluated.extend(self.evaluations.baseline(&self.training, sparsity));
            pruned = Some(self.cut(step, &mut evaluated, Cut::Prune(value))?);
        }

        let t0 = Instant::now();
        let StepGradients {
            grads,
            loss,
            samples,
        } = self.training.gradients(&self.plan, &self.backend)?;
        self.pruning
            .accumulate_saliency(self.training.network(), &grads);
        let exchange = self
            .pruning
            .exchange_due(step, self.training.network(), &grads);
        self.training
            .optimize(self.plan.training.lr, grads, self.pruning.device_masks());
        if let Some(due) = exchange {
            pruned = Some(self.cut(step, &mut evaluated, Cut::Exchange(due))?);
        }
        self.training.finish_step(t0.elapsed(), samples);
        Ok(StepOutcome {
            step,
            loss,
            pruned,
            evaluations: evaluated,
        })
    }

    /// Cuts at `step` (see [`Pruning::cut`]), the evaluations around it pushed to
    /// `evaluated`.
    fn cut(
        &mut self,
        step: u64,
        evaluated: &mut Vec<Evaluation>,
        cut: Cut,
    ) -> Result<PruneReport, SessionError> {
        self.pruning.cut(
            &mut self.training,
            &mut self.evaluations,
            &self.plan,
            step,
            evaluated,
            cut,
        )
    }

    /// Recomputes every mask at schedule value `value` from the current weights, uploads
    /// them and applies them.
    pub fn prune(&mut self, value: f64) -> Result<PruneReport, SessionError> {
        self.pruning.prune(&mut self.training, &self.plan, value)
    }

    /// Accuracy and mean loss on the whole test split, in evaluation mode (no dropout,
    /// batch norm on running statistics), recorded as an evaluation of `phase`.
    pub fn evaluate(&mut self, phase: EvalPhase) -> Evaluation {
        let sparsity = self.pruning.mask_sparsity();
        self.evaluations.evaluate(&self.training, sparsity, phase)
    }

    /// Whether to evaluate after the step just trained: every `eval_every` steps when the
    /// plan sets it, otherwise by time, so that evaluating takes a small share of the run
    /// whatever the dataset and model (and not when the next step measures a recovery).
    pub fn evaluation_due(&self) -> bool {
        self.evaluations.due(&self.training, &self.plan)
    }

    /// Seconds spent evaluating on the test split so far.
    pub fn eval_seconds(&self) -> f64 {
        self.evaluations.eval_seconds()
    }

    /// Accuracy and mean loss of `model` (any copy of this session's network) on the whole
    /// test split, in evaluation mode.
    pub fn evaluate_network(&self, model: &Network) -> TestScore {
        self.training.score(model, None)
    }

    /// A fresh network of `stack` on this session's device, for this session's data: what
    /// a smaller export of its network is evaluated as.
    pub fn network_for(&self, stack: &StackConfig) -> Result<Network, SessionError> {
        let classes = self.training.data().classes;
        Ok(Network::new(stack, classes, self.training.device()).map_err(PlanFileError::from)?)
    }

    /// The device masks are uploaded to (without autodiff).
    pub fn mask_device(&self) -> Device {
        self.training.device().clone().inner()
    }

    /// Whether the optimizer state of a restored checkpoint came back (always true for a
    /// session trained from scratch).
    pub fn adam_restored(&self) -> bool {
        self.training.adam_restored()
    }

    /// The most recent evaluation, if any.
    pub fn last_evaluation(&self) -> Option<Evaluation> {
        self.evaluations.last()
    }

    /// Seconds since the session was built.
    pub fn summary_elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn dense_accuracy(&self) -> Option<f64> {
        self.evaluations.dense_accuracy()
    }

    /// Host copy of one layer's weights and mask.
    pub fn snapshot(&self, name: &str) -> Result<LayerSnapshot, SessionError> {
        let i = self
            .pruning
            .position(name)
            .ok_or_else(|| SessionError::UnknownLayer(name.to_string()))?;
        let weights = self.network().read_weights();
        Ok(self.pruning.snapshot_at(i, &weights, self.step()))
    }

    /// Host copies of every prunable layer.
    pub fn snapshots(&self) -> Vec<LayerSnapshot> {
        let weights = self.network().read_weights();
        self.pruning.snapshots(&weights, self.step())
    }

    /// Every prunable layer's mask, named and shaped as the masks file stores them.
    pub fn named_masks(&self) -> Vec<NamedMask> {
        self.snapshots()
            .into_iter()
            .map(|snap| NamedMask {
                dims: snap.shape.dims(),
                name: snap.name,
                mask: snap.mask,
            })
            .collect()
    }

    /// The run's result. Evaluates if the last evaluation is not of the current weights.
    pub fn summary(&mut self) -> Summary {
        let last = match self.evaluations.last() {
            Some(e) if e.step == self.step() && e.subset.is_none() => e,
            _ => self.evaluate(EvalPhase::Final),
        };
        let weights = self.network().read_weights();
        let final_target = self.plan.pruning.schedule.final_target();
        let (layers, sparsity) = self.pruning.summarize(&weights, final_target);
        Summary {
            model: self.plan.model.to_string(),
            dataset: self.dataset().name.clone(),
            dense_accuracy: self.dense_accuracy().unwrap_or(last.accuracy),
            final_accuracy: last.accuracy,
            sparsity,
            layers,
            steps: self.step(),
            wall_s: self.started.elapsed().as_secs_f64(),
            train_samples_per_s: self.samples_per_s(),
            eval_s: self.eval_seconds(),
            backend: self.backend.backend.clone(),
            device: self.backend.device.clone(),
        }
    }
}
