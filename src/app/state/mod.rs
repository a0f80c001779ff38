//! What the window shows, apart from how it is drawn: the plan being edited, the run's
//! status, its history and layers, the analyses, notices and the banner. Worker events
//! come in through one pure reducer, [`AppState::apply`] (in `reducer.rs`), which says
//! what should follow (more snapshots) as [`AppCommand`](crate::app::AppCommand)s
//! instead of doing it. The plan changes only through [`AppState::edit_plan`] (in
//! `edits.rs`), which checks it once per edit; the analyses' part of the state is in
//! `analysis.rs`.

use std::collections::VecDeque;
use std::time::Duration;

mod analysis;
mod edits;
mod reducer;
#[cfg(test)]
mod tests;

pub use analysis::{AnalysisState, NamedSweep};
pub use edits::{PlanCheck, PlanState};

use crate::app::files::FilePurpose;
use crate::app::history::{Overlays, RunHistory};
use crate::app::layers::LayerView;
use crate::infer::bench::InferBench;
use crate::plan::ExperimentPlan;
use crate::train::{BackendInfo, ExportReport, Summary};

/// Notices kept for the log.
pub const MAX_NOTICES: usize = 50;

/// Where the run stands.
#[derive(Clone, Debug, Default)]
pub struct RunStatus {
    pub active: bool,
    pub paused: bool,
    pub backend: Option<BackendInfo>,
    pub dataset: String,
    pub train_examples: usize,
    pub steps_per_epoch: u64,
    pub total_steps: u64,
    pub step: u64,
    pub epoch: f64,
    pub loss: f64,
    pub accuracy: Option<f64>,
    pub sparsity: f64,
    pub samples_per_s: f64,
    pub elapsed_s: f64,
    pub summary: Option<Summary>,
    pub prune_events: usize,
    pub last_prune_target: Option<f64>,
}

/// The views of the centre.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Training,
    Sensitivity,
    Sweeps,
    Export,
}

/// What the banner above the tabs shows: each part while it applies.
#[derive(Clone, Debug, Default)]
pub struct Banner {
    /// An error, until dismissed.
    pub error: Option<String>,
    /// A remote run ended with its server gone; a host copy from this step can continue
    /// on this machine.
    pub remote_lost: Option<u64>,
    /// Set while the worker has not answered for a while.
    pub worker_silent: Option<Duration>,
    /// This desktop has no file dialog backend (file items ask for a path instead).
    pub no_dialogs: bool,
    /// The field where a plan line is pasted, while it is open.
    pub plan_string_prompt: Option<String>,
    /// A file item waiting for its path to be typed: what for, and the text so far.
    pub path_prompt: Option<(FilePurpose, String)>,
}

/// Everything the window shows.
pub struct AppState {
    pub tab: Tab,
    pub analysis: AnalysisState,
    pub export_report: Option<ExportReport>,
    pub infer_bench: Option<InferBench>,
    /// The plan being edited (persisted between launches), the plan the worker runs, and
    /// what checking the edited one found; changed by [`Self::edit_plan`].
    pub plan: PlanState,
    pub status: RunStatus,
    pub history: RunHistory,
    pub overlays: Overlays,
    pub layers: Vec<LayerView>,
    pub selected_layer: usize,
    /// The lesson being followed.
    pub lesson: Option<crate::lessons::Progress>,
    /// The lessons of the course, in order (empty if they could not be read).
    pub lessons: Vec<crate::lessons::Lesson>,
    pub language: crate::i18n::Language,
    /// Why Chinese cannot be shown (no CJK font), once it was asked for.
    pub language_note: Option<String>,
    /// The pace being dragged on the speed control, before it goes into the plan.
    pub pace_drag: Option<f64>,
    /// The evaluation under the pointer on the accuracy-against-sparsity plot.
    pub highlight: Option<crate::app::plots::Highlight>,
    /// What the banner above the tabs shows.
    pub banner: Banner,
    /// The last plan line copied (also on the clipboard).
    pub copied_plan: Option<String>,
    pub notices: VecDeque<String>,
    runs_started: usize,
}

impl AppState {
    pub fn new(plan: ExperimentPlan, banner: Option<String>) -> Self {
        Self {
            tab: Tab::Training,
            analysis: AnalysisState::default(),
            export_report: None,
            infer_bench: None,
            plan: PlanState::new(plan),
            status: RunStatus::default(),
            history: RunHistory::default(),
            overlays: Overlays::default(),
            layers: Vec::new(),
            selected_layer: 0,
            highlight: None,
            pace_drag: None,
            lesson: None,
            lessons: crate::lessons::all().unwrap_or_default(),
            language: crate::i18n::Language::En,
            language_note: None,
            banner: Banner {
                error: banner,
                ..Banner::default()
            },
            copied_plan: None,
            notices: VecDeque::new(),
            runs_started: 0,
        }
    }

    pub fn notice(&mut self, message: String) {
        self.notices.push_back(message);
        while self.notices.len() > MAX_NOTICES {
            self.notices.pop_front();
        }
    }

    /// Prepares a run of the edited plan and returns the plan to send, or says why it
    /// cannot run (in the banner, from the plan's last check).
    pub fn begin_run(&mut self) -> Option<ExperimentPlan> {
        if let Err(e) = self.plan.check.schedule() {
            self.banner.error = Some(e.to_string());
            return None;
        }
        let plan = self.plan.edited.clone();
        self.archive_run();
        self.runs_started += 1;
        let mut label = if plan.name.is_empty() {
            plan.model.name().to_string()
        } else {
            plan.name.clone()
        };
        if label.chars().count() > 28 {
            label = label.chars().take(27).collect::<String>() + "…";
        }
        self.history = RunHistory::new(format!("run {}: {label}", self.runs_started));
        self.banner.error = None;
        self.status = RunStatus {
            active: true,
            ..Default::default()
        };
        self.recheck_for_data();
        self.plan.set_sent(Some(plan.clone()));
        Some(plan)
    }

    /// Before a model is loaded from a file: the current run becomes an overlay.
    pub fn begin_load(&mut self) {
        self.archive_run();
        self.status = RunStatus {
            active: true,
            ..Default::default()
        };
        self.recheck_for_data();
    }

    fn archive_run(&mut self) {
        let old = std::mem::take(&mut self.history);
        self.overlays.keep(old);
    }

    /// Clears the run; earlier runs stay as overlays.
    pub fn reset(&mut self) {
        self.archive_run();
        self.status = RunStatus::default();
        self.layers.clear();
        self.plan.set_sent(None);
        self.recheck_for_data();
    }

    /// The worker thread is gone (`what` happened to it): the run with it, but not the
    /// plan, the plots or the layers' last pictures.
    pub fn worker_lost(&mut self, what: &str) {
        self.status.active = false;
        self.status.paused = false;
        self.plan.set_sent(None);
        self.recheck_for_data();
        self.banner.worker_silent = None;
        self.analysis.sensitivity_progress = None;
        self.analysis.sweep_progress = None;
        self.banner.error = Some(format!(
            "The training worker {what}. A new one has been started: the plan and the plots are \
             kept; press Start to train again."
        ));
    }
}
