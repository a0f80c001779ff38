//! What the window shows, apart from how it is drawn: the plan being edited, the run's
//! status, its history and layers, the analyses, notices and the banner. Worker events
//! come in through one pure reducer, [`AppState::apply`], which says what should follow
//! (more snapshots) as [`AppCommand`]s instead of doing it.

use std::collections::VecDeque;
use std::time::Duration;

use super::analysis_view::AnalysisState;
use super::command::AppCommand;
use super::history::{Overlays, RunHistory};
use super::layers::{CutLine, LayerView};
use crate::infer::bench::InferBench;
use crate::plan::ExperimentPlan;
use crate::train::{BackendInfo, Event, ExportReport, Summary};

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

/// Everything the window shows.
pub struct AppState {
    pub tab: Tab,
    pub analysis: AnalysisState,
    pub export_report: Option<ExportReport>,
    pub infer_bench: Option<InferBench>,
    /// The plan being edited (persisted between launches).
    pub plan: ExperimentPlan,
    /// The plan the worker runs, if a run exists.
    pub sent_plan: Option<ExperimentPlan>,
    pub status: RunStatus,
    pub history: RunHistory,
    pub overlays: Overlays,
    pub layers: Vec<LayerView>,
    pub selected_layer: usize,
    /// A remote run ended with its server gone; a host copy from this step can continue
    /// on this machine.
    pub remote_lost: Option<u64>,
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
    /// An error shown in the banner until dismissed.
    pub banner: Option<String>,
    /// Set while the worker has not answered for a while.
    pub worker_silent: Option<Duration>,
    /// This desktop has no file dialog backend (file items ask for a path instead).
    pub no_dialogs: bool,
    /// The field where a plan line is pasted, while it is open.
    pub plan_string_prompt: Option<String>,
    /// The last plan line copied (also on the clipboard).
    pub copied_plan: Option<String>,
    /// A file item waiting for its path to be typed: what for, and the text so far.
    pub path_prompt: Option<(crate::app::files::FilePurpose, String)>,
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
            plan,
            sent_plan: None,
            status: RunStatus::default(),
            history: RunHistory::default(),
            overlays: Overlays::default(),
            layers: Vec::new(),
            selected_layer: 0,
            highlight: None,
            pace_drag: None,
            lesson: None,
            remote_lost: None,
            lessons: crate::lessons::all().unwrap_or_default(),
            language: crate::i18n::Language::En,
            language_note: None,
            banner,
            worker_silent: None,
            no_dialogs: false,
            path_prompt: None,
            plan_string_prompt: None,
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
    /// cannot run (in the banner).
    pub fn begin_run(&mut self) -> Option<ExperimentPlan> {
        if let Err(e) = self.plan.validate(crate::data::BUILTIN_TRAIN) {
            self.banner = Some(e.to_string());
            return None;
        }
        self.archive_run();
        self.runs_started += 1;
        let mut label = if self.plan.name.is_empty() {
            self.plan.model.name().to_string()
        } else {
            self.plan.name.clone()
        };
        if label.chars().count() > 28 {
            label = label.chars().take(27).collect::<String>() + "…";
        }
        self.history = RunHistory::new(format!("run {}: {label}", self.runs_started));
        self.banner = None;
        self.status = RunStatus {
            active: true,
            ..Default::default()
        };
        self.sent_plan = Some(self.plan.clone());
        Some(self.plan.clone())
    }

    /// Before a model is loaded from a file: the current run becomes an overlay.
    pub fn begin_load(&mut self) {
        self.archive_run();
        self.status = RunStatus {
            active: true,
            ..Default::default()
        };
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
        self.sent_plan = None;
    }

    /// The edited plan, when it differs from the running one and can be applied live.
    pub fn plan_to_push(&mut self) -> Option<ExperimentPlan> {
        let sent = self.sent_plan.as_ref()?;
        if !self.status.active || *sent == self.plan {
            return None;
        }
        if sent.reset_reason(&self.plan).is_some() {
            return None; // shown as a hint next to the controls
        }
        if self
            .plan
            .validate(self.status.train_examples.max(1))
            .is_err()
        {
            return None; // shown in the plan panel; the run keeps its last valid plan
        }
        self.sent_plan = Some(self.plan.clone());
        Some(self.plan.clone())
    }

    /// The worker thread is gone (`what` happened to it): the run with it, but not the
    /// plan, the plots or the layers' last pictures.
    pub fn worker_lost(&mut self, what: &str) {
        self.status.active = false;
        self.status.paused = false;
        self.sent_plan = None;
        self.worker_silent = None;
        self.analysis.sensitivity_progress = None;
        self.analysis.sweep_progress = None;
        self.banner = Some(format!(
            "The training worker {what}. A new one has been started: the plan and the plots are \
             kept; press Start to train again."
        ));
    }

    /// The reducer: one worker event in, the state updated, follow-up commands out.
    pub fn apply(&mut self, event: Event) -> Vec<AppCommand> {
        self.history.record(&event);
        if let Some(progress) = self.lesson.as_mut() {
            let plan = self.sent_plan.as_ref().unwrap_or(&self.plan);
            progress.observe(&event, plan);
        }
        let snapshots = |force| vec![AppCommand::RefreshSnapshots { force }];
        match event {
            Event::Started {
                backend,
                dataset,
                train_examples,
                layers,
                steps_per_epoch,
                total_steps,
                ..
            } => {
                let s = &mut self.status;
                (s.active, s.paused, s.backend) = (true, false, Some(backend));
                (s.dataset, s.train_examples) = (dataset, train_examples);
                (s.steps_per_epoch, s.total_steps) = (steps_per_epoch, total_steps);
                self.layers = layers.into_iter().map(LayerView::new).collect();
                self.selected_layer = self.selected_layer.min(self.layers.len().saturating_sub(1));
                return snapshots(true);
            }
            Event::Progress {
                step,
                total_steps,
                epoch,
                loss,
                samples_per_s,
                sparsity,
                elapsed_s,
            } => {
                let s = &mut self.status;
                (s.step, s.total_steps, s.epoch, s.loss) = (step, total_steps, epoch, loss);
                (s.samples_per_s, s.sparsity, s.elapsed_s) = (samples_per_s, sparsity, elapsed_s);
            }
            Event::Evaluation { accuracy, .. } => {
                self.status.accuracy = Some(accuracy);
                return snapshots(false);
            }
            Event::Pruned {
                step,
                target,
                sparsity,
                layers,
            } => {
                self.status.sparsity = sparsity;
                self.status.step = self.status.step.max(step);
                self.status.prune_events += 1;
                self.status.last_prune_target = Some(target);
                for l in layers {
                    if let Some(v) = self.layers.iter_mut().find(|v| v.info.name == l.name) {
                        v.target = l.target;
                        v.sparsity = l.sparsity;
                        v.info.granularity = l.granularity;
                        v.last_cut = l.threshold.map(|threshold| CutLine { step, threshold });
                    }
                }
                return snapshots(true);
            }
            Event::PlanUpdated { total_steps, .. } => self.status.total_steps = total_steps,
            Event::Snapshot(snap) => {
                if let Some(v) = self.layers.iter_mut().find(|v| v.info.name == snap.name) {
                    v.set_snapshot(snap);
                }
            }
            Event::RemoteLost { step } => self.remote_lost = Some(step),
            Event::Paused { step } => {
                self.status.paused = true;
                self.status.step = step;
                return snapshots(true);
            }
            Event::Resumed { .. } => self.status.paused = false,
            Event::Notice { message } => self.notice(message),
            Event::CheckpointSaved { path } => {
                self.notice(format!("checkpoint saved to {}", path.display()))
            }
            Event::MasksSaved { path } => self.notice(format!("masks saved to {}", path.display())),
            Event::CheckpointLoaded {
                path,
                step,
                history_json,
            } => {
                if let Ok(h) = serde_json::from_str::<RunHistory>(&history_json) {
                    self.history = h;
                }
                self.status.step = step;
                self.notice(format!(
                    "checkpoint {} loaded at step {step}",
                    path.display()
                ));
            }
            Event::Finished { stopped, summary } => {
                self.status.active = false;
                self.status.paused = false;
                self.status.accuracy = Some(summary.final_accuracy);
                self.status.step = summary.steps;
                self.notice(format!(
                    "{}: dense {:.4}, pruned {:.4} at sparsity {:.3}",
                    if stopped { "stopped" } else { "finished" },
                    summary.dense_accuracy,
                    summary.final_accuracy,
                    summary.sparsity
                ));
                self.status.summary = Some(summary);
                return snapshots(true);
            }
            Event::Error {
                error, run_ended, ..
            } => {
                if run_ended {
                    self.status.active = false;
                    self.status.paused = false;
                }
                self.banner = Some(error.to_string());
            }
            Event::InferBenched(r) => self.infer_bench = Some(r),
            Event::Exported(report) => {
                let folder = report.stripped.parent().map(|p| p.display().to_string());
                self.notice(format!("exported to {}", folder.unwrap_or_default()));
                self.export_report = Some(report);
            }
            Event::SensitivityProgress {
                dense_accuracy,
                layer,
                level,
                accuracy,
                done,
                total,
            } => self.analysis.sensitivity_point(
                dense_accuracy,
                &layer,
                level,
                accuracy,
                done,
                total,
            ),
            Event::SensitivityFinished { result, cancelled } => {
                self.analysis.sensitivity_progress = None;
                self.analysis.sensitivity = Some(result);
                self.notice(format!(
                    "sensitivity analysis {}",
                    if cancelled {
                        "cancelled; partial results kept"
                    } else {
                        "finished"
                    }
                ));
            }
            Event::SweepProgress {
                point,
                done,
                total,
                remaining_s,
            } => {
                if let Some(s) = self.analysis.sweeps.last_mut() {
                    s.result.points.push(point);
                }
                self.analysis.sweep_progress = Some((done, total, remaining_s));
            }
            Event::SweepFinished { result, cancelled } => {
                self.analysis.sweep_progress = None;
                if let Some(s) = self.analysis.sweeps.last_mut() {
                    s.result = result;
                }
                self.notice(format!(
                    "sweep {}",
                    if cancelled {
                        "cancelled; finished points kept"
                    } else {
                        "finished"
                    }
                ));
            }
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::prune::LayerShape;
    use crate::train::{EvalPhase, LayerInfo, LayerSparsity, WorkerError};

    fn state() -> AppState {
        AppState::new(ExperimentPlan::preset("quick-demo").unwrap(), None)
    }

    fn started() -> Event {
        let layer = |name: &str, out, inp| LayerInfo {
            name: name.into(),
            shape: LayerShape::linear(out, inp),
            params: out * inp,
            granularity: "unstructured".into(),
            dense_reason: None,
        };
        Event::Started {
            backend: BackendInfo {
                backend: "flex".into(),
                device: "CPU (flex)".into(),
                note: None,
            },
            dataset: "MNIST".into(),
            train_examples: 8_000,
            test_examples: 2_000,
            layers: vec![layer("fc1", 300, 784), layer("fc2", 10, 300)],
            steps_per_epoch: 63,
            total_steps: 252,
            schedule: vec![],
        }
    }

    fn error(run_ended: bool) -> Event {
        Event::Error {
            error: Arc::new(WorkerError::Panic {
                during: "saving masks".into(),
                message: "boom".into(),
            }),
            step: Some(5),
            run_ended,
        }
    }

    #[test]
    fn a_start_sets_the_run_up_and_asks_for_snapshots() {
        let mut s = state();
        let plan = s.begin_run().expect("the preset is valid");
        assert_eq!(plan, s.plan);
        assert!(s.status.active && s.history.name.starts_with("run 1: "));
        let follow = s.apply(started());
        assert_eq!(follow, vec![AppCommand::RefreshSnapshots { force: true }]);
        assert_eq!(s.layers.len(), 2);
        assert_eq!(s.status.steps_per_epoch, 63);
        assert_eq!(s.status.backend.as_ref().unwrap().backend, "flex");
    }

    #[test]
    fn progress_pruning_and_the_finish_update_status_layers_and_history() {
        let mut s = state();
        s.begin_run();
        s.apply(started());
        let follow = s.apply(Event::Progress {
            step: 12,
            total_steps: 252,
            epoch: 0.2,
            loss: 0.5,
            samples_per_s: 1000.0,
            sparsity: 0.0,
            elapsed_s: 1.0,
        });
        assert!(follow.is_empty());
        assert_eq!((s.status.step, s.status.loss), (12, 0.5));
        assert_eq!(s.history.loss.points(), &[[12.0, 0.5]]);
        let follow = s.apply(Event::Pruned {
            step: 20,
            target: 0.5,
            sparsity: 0.49,
            layers: vec![LayerSparsity {
                name: "fc2".into(),
                granularity: "2:4".into(),
                criterion: "magnitude".into(),
                target: 0.5,
                sparsity: 0.5,
                grown: 0,
                threshold: None,
            }],
        });
        assert_eq!(follow, vec![AppCommand::RefreshSnapshots { force: true }]);
        assert_eq!(s.status.prune_events, 1);
        assert_eq!(s.layers[1].sparsity, 0.5);
        assert_eq!(s.layers[1].info.granularity, "2:4");
        assert_eq!(s.layers[0].sparsity, 0.0);
        assert_eq!(
            s.layers[1].last_cut, None,
            "2:4 has no single |w| threshold"
        );
        let evaluation = s.apply(Event::Evaluation {
            step: 21,
            epoch: 0.3,
            accuracy: 0.9,
            loss: 0.3,
            sparsity: 0.49,
            baseline: false,
            phase: EvalPhase::AfterCut,
            subset: Some(400),
        });
        assert_eq!(
            evaluation,
            vec![AppCommand::RefreshSnapshots { force: false }]
        );
        assert_eq!(s.status.accuracy, Some(0.9));
        assert_eq!(s.history.after_cut.points(), &[[0.49, 0.9]]);
        assert!(s.history.recovered.is_empty());
        // a magnitude cut's threshold stays with the layer until the next cut
        s.apply(Event::Pruned {
            step: 40,
            target: 0.6,
            sparsity: 0.6,
            layers: vec![LayerSparsity {
                name: "fc1".into(),
                granularity: "unstructured".into(),
                criterion: "magnitude".into(),
                target: 0.6,
                sparsity: 0.6,
                grown: 0,
                threshold: Some(0.0123),
            }],
        });
        assert_eq!(
            s.layers[0].last_cut,
            Some(CutLine {
                step: 40,
                threshold: 0.0123
            })
        );
    }

    #[test]
    fn only_errors_that_end_the_run_end_it() {
        let mut s = state();
        s.begin_run();
        s.apply(started());
        s.apply(error(false));
        assert!(s.status.active, "a failed save leaves the run");
        assert!(s.banner.as_deref().unwrap().contains("boom"));
        s.apply(error(true));
        assert!(!s.status.active);
    }

    #[test]
    fn a_second_run_keeps_the_first_as_an_overlay_and_a_lost_worker_keeps_the_plots() {
        let mut s = state();
        s.begin_run();
        s.apply(started());
        s.apply(Event::Progress {
            step: 1,
            total_steps: 252,
            epoch: 0.0,
            loss: 2.3,
            samples_per_s: 1.0,
            sparsity: 0.0,
            elapsed_s: 0.1,
        });
        s.begin_run();
        assert_eq!(s.overlays.runs.len(), 1);
        assert!(s.history.name.starts_with("run 2: "));
        s.apply(Event::Progress {
            step: 3,
            total_steps: 252,
            epoch: 0.0,
            loss: 2.0,
            samples_per_s: 1.0,
            sparsity: 0.0,
            elapsed_s: 0.1,
        });
        let plan = s.plan.clone();
        s.worker_lost("stopped unexpectedly");
        assert!(!s.status.active && s.sent_plan.is_none());
        assert_eq!(s.history.loss.points(), &[[3.0, 2.0]]);
        assert_eq!(s.plan, plan);
        assert!(
            s.banner
                .as_deref()
                .unwrap()
                .contains("stopped unexpectedly")
        );
    }

    #[test]
    fn plan_changes_are_pushed_once_and_only_when_they_can_apply_live() {
        let mut s = state();
        assert_eq!(s.plan_to_push(), None, "no run");
        s.begin_run();
        s.apply(started());
        assert_eq!(s.plan_to_push(), None, "unchanged");
        s.plan.pruning.schedule.set_final_target(0.7);
        let pushed = s.plan_to_push().expect("a target change applies live");
        assert_eq!(pushed.pruning.schedule.final_target(), 0.7);
        assert_eq!(s.plan_to_push(), None, "already sent");
        s.plan.training.batch *= 2;
        assert_eq!(s.plan_to_push(), None, "a batch change needs a new run");
    }

    #[test]
    fn an_invalid_plan_does_not_start_and_says_why() {
        let mut s = state();
        s.plan.pruning.schedule.set_final_target(1.5);
        assert_eq!(s.begin_run(), None);
        assert!(!s.status.active);
        assert!(s.banner.is_some());
    }

    #[test]
    fn notices_are_bounded() {
        let mut s = state();
        for i in 0..MAX_NOTICES + 10 {
            s.notice(format!("n{i}"));
        }
        assert_eq!(s.notices.len(), MAX_NOTICES);
        assert_eq!(s.notices.back().unwrap(), &format!("n{}", MAX_NOTICES + 9));
    }
}
