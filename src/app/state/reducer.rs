//! The reducer: one worker event in, the state updated, follow-up commands out. Events
//! fall in four kinds, each taken by its own method: the run's course (start, pause,
//! finish, errors), its progress (steps, evaluations, cuts, snapshots), what it reports
//! (files written, exports, timings, notices) and the analyses.

use super::AppState;
use crate::app::command::AppCommand;
use crate::app::history::RunHistory;
use crate::app::layers::{CutLine, LayerView};
use crate::train::{Event, LayerSparsity, Summary};

/// Whether an event asks for fresh layer snapshots: `Some(force)` when it does (`force`:
/// now, else when the last request is old enough).
type Refresh = Option<bool>;

impl AppState {
    /// The reducer: one worker event in, the state updated, follow-up commands out.
    pub fn apply(&mut self, event: Event) -> Vec<AppCommand> {
        self.history.record(&event);
        if let Some(progress) = self.lesson.as_mut() {
            let plan = self.plan.sent().unwrap_or(self.plan.edited());
            progress.observe(&event, plan);
        }
        // every kind of event named here, so that a new one must be given its place
        let refresh = match event {
            Event::Started { .. }
            | Event::Paused { .. }
            | Event::Resumed { .. }
            | Event::Finished { .. }
            | Event::Error { .. }
            | Event::RemoteLost { .. } => self.apply_course(event),
            Event::Progress { .. }
            | Event::Evaluation { .. }
            | Event::Pruned { .. }
            | Event::PlanUpdated { .. }
            | Event::Snapshot(_) => self.apply_progress(event),
            Event::Notice { .. }
            | Event::CheckpointSaved { .. }
            | Event::MasksSaved { .. }
            | Event::CheckpointLoaded { .. }
            | Event::Exported(_)
            | Event::InferBenched(_) => self.apply_report(event),
            Event::SensitivityProgress { .. }
            | Event::SensitivityFinished { .. }
            | Event::SweepProgress { .. }
            | Event::SweepFinished { .. } => self.apply_analysis(event),
        };
        // a run that starts, reports its data or ends changes what the plan is checked against
        self.recheck_for_data();
        match refresh {
            Some(force) => vec![AppCommand::RefreshSnapshots { force }],
            None => Vec::new(),
        }
    }

    /// The run starts, pauses, resumes, ends, fails or loses its server.
    fn apply_course(&mut self, event: Event) -> Refresh {
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
                return Some(true);
            }
            Event::Paused { step } => {
                self.status.paused = true;
                self.status.step = step;
                return Some(true);
            }
            Event::Resumed { .. } => self.status.paused = false,
            Event::Finished { stopped, summary } => {
                self.finished(stopped, summary);
                return Some(true);
            }
            Event::Error {
                error, run_ended, ..
            } => {
                if run_ended {
                    self.status.active = false;
                    self.status.paused = false;
                }
                self.banner.error = Some(error.to_string());
            }
            Event::RemoteLost { step } => self.banner.remote_lost = Some(step),
            _ => {} // the other kinds are taken by the other methods (see `apply`)
        }
        None
    }

    fn finished(&mut self, stopped: bool, summary: Summary) {
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
    }

    /// A step, an evaluation, a cut, a plan change applied live, or a layer's snapshot.
    fn apply_progress(&mut self, event: Event) -> Refresh {
        match event {
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
                return Some(false);
            }
            Event::Pruned {
                step,
                target,
                sparsity,
                layers,
            } => {
                self.pruned(step, target, sparsity, layers);
                return Some(true);
            }
            Event::PlanUpdated { total_steps, .. } => self.status.total_steps = total_steps,
            Event::Snapshot(snap) => {
                if let Some(v) = self.layers.iter_mut().find(|v| v.info.name == snap.name) {
                    v.set_snapshot(snap);
                }
            }
            _ => {} // the other kinds are taken by the other methods (see `apply`)
        }
        None
    }

    fn pruned(&mut self, step: u64, target: f64, sparsity: f64, layers: Vec<LayerSparsity>) {
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
    }

    /// A notice, a file saved or loaded, an export, an inference timing.
    fn apply_report(&mut self, event: Event) -> Refresh {
        match event {
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
            Event::InferBenched(r) => self.infer_bench = Some(r),
            Event::Exported(report) => {
                let folder = report.stripped.parent().map(|p| p.display().to_string());
                self.notice(format!("exported to {}", folder.unwrap_or_default()));
                self.export_report = Some(report);
            }
            _ => {} // the other kinds are taken by the other methods (see `apply`)
        }
        None
    }

    /// A point or the end of a sensitivity analysis or a sweep.
    fn apply_analysis(&mut self, event: Event) -> Refresh {
        match event {
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
                self.analysis.finish_sensitivity(result);
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
            } => self.analysis.sweep_point(point, done, total, remaining_s),
            Event::SweepFinished { result, cancelled } => {
                self.analysis.finish_sweep(result);
                self.notice(format!(
                    "sweep {}",
                    if cancelled {
                        "cancelled; finished points kept"
                    } else {
                        "finished"
                    }
                ));
            }
            _ => {} // the other kinds are taken by the other methods (see `apply`)
        }
        None
    }
}
