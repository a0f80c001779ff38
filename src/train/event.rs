//! The two message types between the worker and whoever drives it (window or CLI).

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use super::analysis::{SensitivityRequest, SensitivityResult, SweepRequest, SweepResult};
use super::backend::BackendInfo;
use super::error::WorkerError;
use super::exporting::ExportReport;
use super::report::{EvalPhase, Evaluation, LayerInfo, LayerSnapshot, LayerSparsity, Summary};
#[cfg(any(test, feature = "test-support"))]
use super::session::Session;
use super::sweep_point::SweepPoint;
use crate::infer::bench::InferBench;
use crate::plan::{CheckedPlan, ExperimentPlan};

/// Code for [`Command::WithSession`]; it gets `None` when there is no session.
#[cfg(any(test, feature = "test-support"))]
pub type SessionFn = dyn FnOnce(Option<&mut Session>) + Send;

/// A boxed [`SessionFn`] for [`Command::WithSession`].
#[cfg(any(test, feature = "test-support"))]
pub struct SessionTask(pub Box<SessionFn>);

#[cfg(any(test, feature = "test-support"))]
impl std::fmt::Debug for SessionTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionTask(..)")
    }
}

/// What the worker is asked to do. Everything is taken before the next training step.
#[derive(Debug)]
pub enum Command {
    /// Build a session from the plan (loading data, choosing the device) and train.
    Start(Box<ExperimentPlan>),
    /// Build a session from the plan (its starting weights included) and wait, paused at
    /// step 0: to analyse or export weights as they are.
    Prepare(Box<ExperimentPlan>),
    Pause,
    Resume,
    /// Train exactly one batch, then stay paused.
    Step,
    /// End the run now; the session stays for snapshots.
    Stop,
    /// Continue the run that a lost remote server ended, on this machine's CPU (flex), from
    /// the host copy taken last ([`Event::RemoteLost`] says its step).
    ContinueLocally,
    /// Train at most this many steps per second (`None`: as fast as it goes), so that a
    /// class can watch the masks change. A run starts at its plan's `pace`, and a plan
    /// update that changes the pace sets it again.
    SetSpeed {
        steps_per_s: Option<f64>,
    },
    /// Replace the pruning plan (and learning rate, evaluation interval, epochs) live: a
    /// plan already checked, which the session does not check again when it was checked
    /// against its own data's size.
    UpdatePlan(Box<CheckedPlan>),
    /// Send a [`LayerSnapshot`] of one layer (by name) or of every prunable layer.
    Snapshot {
        layer: Option<String>,
    },
    /// Export the model: stripped safetensors and sparse files (f32, int8) into a folder,
    /// reloaded and evaluated.
    Export {
        dir: PathBuf,
    },
    /// Time dense against sparse CPU inference of the current model (models of dense
    /// layers only), `seconds` per measurement.
    BenchInfer {
        seconds: f64,
    },
    /// Replace the session with a model read from a sparse file; it starts paused.
    LoadSparse {
        path: PathBuf,
    },
    /// Write the current masks as safetensors (see [`crate::masks_file`]).
    SaveMasks {
        path: PathBuf,
    },
    /// Save the session (weights, Adam state, masks, step, plan) with the front end's
    /// history (JSON) to one file.
    SaveCheckpoint {
        path: PathBuf,
        history_json: String,
    },
    /// Replace the session with one restored from a checkpoint; it starts paused.
    LoadCheckpoint {
        path: PathBuf,
    },
    /// Prune each layer alone at each level from the current weights and evaluate
    /// (pauses training; the weights are left exactly as they were).
    Sensitivity(SensitivityRequest),
    /// Fine-tune copies of the current model to several targets and granularities.
    Sweep(SweepRequest),
    /// Stop a sensitivity analysis or sweep, keeping what is finished.
    Cancel,
    /// Runs code on the worker thread with the current session, under the same guard as
    /// every command: how tests reach inside the worker (a crash on its thread, a task that
    /// keeps it silent). Built for tests only (the `test-support` feature).
    #[cfg(any(test, feature = "test-support"))]
    WithSession(SessionTask),
    /// Leave the worker thread.
    Shutdown,
}

/// What the worker reports.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Started {
        backend: BackendInfo,
        dataset: String,
        train_examples: usize,
        test_examples: usize,
        layers: Vec<LayerInfo>,
        steps_per_epoch: u64,
        total_steps: u64,
        /// The planned mask sparsity: `(step, target)` at every pruning step.
        schedule: Vec<(u64, f64)>,
    },
    Progress {
        step: u64,
        total_steps: u64,
        epoch: f64,
        loss: f64,
        samples_per_s: f64,
        sparsity: f64,
        elapsed_s: f64,
    },
    Evaluation {
        step: u64,
        epoch: f64,
        accuracy: f64,
        loss: f64,
        sparsity: f64,
        /// This is the dense baseline, taken right before the first pruning step.
        baseline: bool,
        /// The moment it measures: `baseline`, `after_cut`, `recovered`, `scheduled` or
        /// `final`.
        phase: EvalPhase,
        /// Test examples of the fixed subset it used (`null`: the whole test split).
        subset: Option<usize>,
    },
    Pruned {
        step: u64,
        /// The schedule's sparsity at this step.
        target: f64,
        /// Achieved fraction of zeros over all prunable layers.
        sparsity: f64,
        layers: Vec<LayerSparsity>,
    },
    PlanUpdated {
        schedule: Vec<(u64, f64)>,
        total_steps: u64,
    },
    Snapshot(LayerSnapshot),
    Paused {
        step: u64,
    },
    Resumed {
        step: u64,
    },
    /// Something the user should know that does not stop the run.
    Notice {
        message: String,
    },
    CheckpointSaved {
        path: PathBuf,
    },
    MasksSaved {
        path: PathBuf,
    },
    Exported(ExportReport),
    InferBenched(InferBench),
    /// A checkpoint was restored; a `Started` event for it came just before.
    CheckpointLoaded {
        path: PathBuf,
        step: u64,
        history_json: String,
    },
    SensitivityProgress {
        /// Accuracy of the weights as they are, the reference line.
        dense_accuracy: f64,
        layer: String,
        level: f64,
        accuracy: Option<f64>,
        done: usize,
        total: usize,
    },
    SensitivityFinished {
        result: SensitivityResult,
        cancelled: bool,
    },
    SweepProgress {
        point: SweepPoint,
        done: usize,
        total: usize,
        remaining_s: Option<f64>,
    },
    SweepFinished {
        result: SweepResult,
        cancelled: bool,
    },
    /// A run on a remote server ended with the server gone; a host copy of the weights,
    /// masks and Adam state from `step` is kept, and [`Command::ContinueLocally`] goes on
    /// from there.
    RemoteLost {
        step: u64,
    },
    Finished {
        /// The run was stopped before its last step.
        stopped: bool,
        summary: Summary,
    },
    /// Something failed. The worker itself goes on (a panic included); `run_ended` says
    /// whether the run went with it (a NaN loss, a crash while training, a model that could
    /// not be built) or is still there (a save that failed, an analysis that stopped).
    Error {
        #[serde(rename = "message", serialize_with = "as_text")]
        error: Arc<WorkerError>,
        step: Option<u64>,
        run_ended: bool,
    },
}

fn as_text<S: serde::Serializer>(error: &Arc<WorkerError>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(error)
}

impl Event {
    /// The event that reports evaluation `e` of a run of `steps_per_epoch` steps an epoch.
    pub fn evaluation(e: &Evaluation, steps_per_epoch: u64) -> Event {
        Event::Evaluation {
            step: e.step,
            epoch: e.step as f64 / steps_per_epoch.max(1) as f64,
            accuracy: e.accuracy,
            loss: e.loss,
            sparsity: e.sparsity,
            baseline: e.phase == EvalPhase::Baseline,
            phase: e.phase,
            subset: e.subset,
        }
    }
}
