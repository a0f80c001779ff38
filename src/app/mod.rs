//! The window: the plan on the left, masks and plots in the centre, status at the bottom.
//! Training runs in the [`Worker`]; this module only sends commands, drains events with a
//! time budget each frame, and draws.

pub mod analysis_view;
pub mod files;
pub mod history;
pub mod layers;
pub mod plan_editor;
pub mod views;

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use eframe::egui;
use egui::{Color32, Key, RichText, Ui};

use crate::plan::{ExperimentPlan, PRESETS};
use crate::prune::LayerSpec;
use crate::train::{BackendInfo, Command, Event, Summary, Worker};
use analysis_view::{AnalysisAction, AnalysisState};
use files::{FileAction, FilePicker, IoDone};
use history::{Overlays, RunHistory};
use layers::LayerView;

/// Longest time spent draining worker events in one frame.
const EVENT_BUDGET: Duration = Duration::from_millis(4);
/// Smallest interval between two snapshot requests not caused by a pruning step.
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(700);
/// Notices kept for the log.
const MAX_NOTICES: usize = 50;
/// Frame times kept for the statistics.
const MAX_FRAME_SAMPLES: usize = 100_000;

/// Start-up options from the command line.
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Load this preset instead of the last plan.
    pub preset: Option<String>,
    /// Load this plan file instead of the last plan.
    pub plan: Option<std::path::PathBuf>,
    /// Start training at once.
    pub autostart: bool,
    /// Record frame times and print p50/p95 when the window closes.
    pub frame_stats: bool,
    /// Close the window after this many seconds.
    pub exit_after: Option<f64>,
    pub renderer: Renderer,
}

/// How the window is drawn. OpenGL (glow) is the default: on a software rasterizer such as
/// llvmpipe it draws a frame about five times faster than wgpu.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Renderer {
    Wgpu,
    /// OpenGL through glow.
    #[default]
    Glow,
}

impl std::str::FromStr for Renderer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "wgpu" => Ok(Renderer::Wgpu),
            "glow" | "gl" | "opengl" => Ok(Renderer::Glow),
            other => Err(format!("unknown renderer {other:?}: expected wgpu or glow")),
        }
    }
}

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

/// The application state.
pub struct ExplorerApp {
    pub tab: Tab,
    pub analysis: AnalysisState,
    pub export_report: Option<crate::train::ExportReport>,
    pub infer_bench: Option<crate::infer::bench::InferBench>,
    /// The plan being edited (persisted between launches).
    pub plan: ExperimentPlan,
    /// The plan the worker runs, if a run exists.
    pub sent_plan: Option<ExperimentPlan>,
    worker: Worker,
    pub status: RunStatus,
    pub history: RunHistory,
    pub overlays: Overlays,
    pub layers: Vec<LayerView>,
    selected_layer: usize,
    /// Errors shown in the banner until dismissed.
    pub banner: Option<String>,
    pub notices: VecDeque<String>,
    picker: FilePicker,
    io_tx: Sender<IoDone>,
    io_rx: Receiver<IoDone>,
    last_snapshot_request: Option<Instant>,
    runs_started: usize,
    options: AppOptions,
    started_at: Instant,
    /// Time to build each frame's UI (ms), with `--frame-stats`.
    pub frame_times_ms: Vec<f32>,
    /// Time from one frame's start to the next (ms): building, painting and presenting,
    /// with repaints requested back to back, with `--frame-stats`.
    pub frame_intervals_ms: Vec<f32>,
    last_frame_start: Option<Instant>,
    /// The planned schedule cache: `(plan it was computed for, steps per epoch, curve)`.
    planned: Option<(ExperimentPlan, u64, Vec<[f64; 2]>)>,
}

impl ExplorerApp {
    /// The app with native file dialogs.
    pub fn new(cc: &eframe::CreationContext<'_>, options: AppOptions) -> Self {
        Self::with_picker(cc, options, files::native_picker())
    }

    /// The app with a given file picker (tests pass one that answers without a dialog).
    pub fn with_picker(
        cc: &eframe::CreationContext<'_>,
        options: AppOptions,
        picker: FilePicker,
    ) -> Self {
        let ctx = cc.egui_ctx.clone();
        let worker = Worker::spawn(Some(Box::new(move || ctx.request_repaint())));
        let stored: Option<ExperimentPlan> = cc
            .storage
            .and_then(|s| eframe::get_value::<String>(s, "plan"))
            .and_then(|text| ExperimentPlan::from_toml(&text, "saved plan").ok());
        let mut banner = None;
        let chosen = match (&options.preset, &options.plan) {
            (Some(name), _) => Some(ExperimentPlan::preset(name)),
            (None, Some(path)) => Some(ExperimentPlan::load(path)),
            (None, None) => None,
        };
        let plan = match chosen {
            Some(Ok(plan)) => plan,
            Some(Err(e)) => {
                banner = Some(e.to_string());
                default_plan()
            }
            None => stored.unwrap_or_else(default_plan),
        };
        let (io_tx, io_rx) = channel();
        let mut app = Self {
            tab: Tab::Training,
            analysis: AnalysisState::default(),
            export_report: None,
            infer_bench: None,
            plan,
            sent_plan: None,
            worker,
            status: RunStatus::default(),
            history: RunHistory::default(),
            overlays: Overlays::default(),
            layers: Vec::new(),
            selected_layer: 0,
            banner,
            notices: VecDeque::new(),
            picker,
            io_tx,
            io_rx,
            last_snapshot_request: None,
            runs_started: 0,
            started_at: Instant::now(),
            frame_times_ms: Vec::new(),
            frame_intervals_ms: Vec::new(),
            last_frame_start: None,
            planned: None,
            options,
        };
        if app.options.autostart {
            app.start();
        }
        app
    }

    fn notice(&mut self, message: String) {
        self.notices.push_back(message);
        while self.notices.len() > MAX_NOTICES {
            self.notices.pop_front();
        }
    }

    /// Starts a run of the current plan; the previous run becomes an overlay.
    pub fn start(&mut self) {
        if let Err(e) = self.plan.validate(crate::data::BUILTIN_TRAIN) {
            self.banner = Some(e.to_string());
            return;
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
        let name = format!("run {}: {label}", self.runs_started);
        self.history = RunHistory::new(name);
        self.banner = None;
        self.status = RunStatus {
            active: true,
            ..Default::default()
        };
        self.sent_plan = Some(self.plan.clone());
        self.worker
            .send(Command::Start(Box::new(self.plan.clone())));
    }

    fn archive_run(&mut self) {
        let old = std::mem::take(&mut self.history);
        self.overlays.keep(old);
    }

    /// Stops the run and clears its views; earlier runs stay as overlays.
    pub fn reset(&mut self) {
        if self.status.active {
            self.worker.send(Command::Stop);
        }
        self.archive_run();
        self.status = RunStatus::default();
        self.layers.clear();
        self.sent_plan = None;
    }

    pub fn toggle_pause(&mut self) {
        if !self.status.active {
            return;
        }
        self.worker.send(if self.status.paused {
            Command::Resume
        } else {
            Command::Pause
        });
    }

    /// Sends the edited plan to the worker when it can be applied live.
    fn push_plan_changes(&mut self) {
        let Some(sent) = &self.sent_plan else { return };
        if !self.status.active || *sent == self.plan {
            return;
        }
        if sent.reset_reason(&self.plan).is_some() {
            return; // shown as a hint next to the controls
        }
        if self
            .plan
            .validate(self.status.train_examples.max(1))
            .is_err()
        {
            return; // shown in the plan panel; the run keeps its last valid plan
        }
        self.sent_plan = Some(self.plan.clone());
        self.worker
            .send(Command::UpdatePlan(Box::new(self.plan.clone())));
    }

    fn request_snapshots(&mut self, force: bool) {
        let due = self
            .last_snapshot_request
            .is_none_or(|t| t.elapsed() >= SNAPSHOT_INTERVAL);
        if force || due {
            self.worker.send(Command::Snapshot { layer: None });
            self.last_snapshot_request = Some(Instant::now());
        }
    }

    /// Takes worker events for at most [`EVENT_BUDGET`].
    pub fn drain_events(&mut self) {
        let t0 = Instant::now();
        while t0.elapsed() < EVENT_BUDGET {
            let Some(event) = self.worker.try_recv() else {
                break;
            };
            self.history.record(&event);
            self.handle(event);
        }
        while let Ok(done) = self.io_rx.try_recv() {
            self.handle_io(done);
        }
    }

    fn handle(&mut self, event: Event) {
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
                self.status.active = true;
                self.status.paused = false;
                self.status.backend = Some(backend);
                self.status.dataset = dataset;
                self.status.train_examples = train_examples;
                self.status.steps_per_epoch = steps_per_epoch;
                self.status.total_steps = total_steps;
                self.layers = layers.into_iter().map(LayerView::new).collect();
                self.selected_layer = self.selected_layer.min(self.layers.len().saturating_sub(1));
                self.request_snapshots(true);
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
                self.request_snapshots(false);
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
                    }
                }
                self.request_snapshots(true);
            }
            Event::PlanUpdated { total_steps, .. } => self.status.total_steps = total_steps,
            Event::Snapshot(snap) => {
                if let Some(v) = self.layers.iter_mut().find(|v| v.info.name == snap.name) {
                    v.set_snapshot(snap);
                }
            }
            Event::Paused { step } => {
                self.status.paused = true;
                self.status.step = step;
                self.request_snapshots(true);
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
                self.request_snapshots(true);
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
                self.notice(format!(
                    "exported to {}",
                    report
                        .stripped
                        .parent()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ));
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
    }

    fn analysis_action(&mut self, action: AnalysisAction) {
        match action {
            AnalysisAction::RunSensitivity(request) => {
                let infos: Vec<_> = self.layers.iter().map(|l| l.info.clone()).collect();
                self.analysis.begin_sensitivity(&infos, &request);
                self.worker.send(Command::Sensitivity(request));
            }
            AnalysisAction::RunSweep(request) => {
                let name = format!("sweep {}", self.analysis.sweeps.len() + 1);
                self.analysis.begin_sweep(name);
                self.worker.send(Command::Sweep(request));
            }
            AnalysisAction::Cancel => {
                self.worker.send(Command::Cancel);
            }
            AnalysisAction::ExportSensitivity => self.choose_file(FileAction::ExportSensitivity),
            AnalysisAction::ExportSweep => self.choose_file(FileAction::ExportSweep),
            AnalysisAction::ExportSweepJson => self.choose_file(FileAction::ExportSweepJson),
        }
    }

    fn handle_io(&mut self, done: IoDone) {
        match done {
            IoDone::Picked(action, path) => match action {
                FileAction::OpenPlan => files::load_plan(path, &self.io_tx),
                FileAction::SavePlan => files::save_plan(self.plan.clone(), path, &self.io_tx),
                FileAction::SaveMasks => {
                    self.worker.send(Command::SaveMasks { path });
                }
                FileAction::SaveCheckpoint => {
                    let history_json = serde_json::to_string(&self.history).unwrap_or_default();
                    self.worker
                        .send(Command::SaveCheckpoint { path, history_json });
                }
                FileAction::LoadCheckpoint => {
                    self.archive_run();
                    self.status = RunStatus {
                        active: true,
                        ..Default::default()
                    };
                    self.worker.send(Command::LoadCheckpoint { path });
                }
                FileAction::OpenDatasetFolder => {
                    self.plan.dataset = crate::data::DatasetSource::Folder(path)
                }
                FileAction::ExportModel => {
                    self.worker.send(Command::Export { dir: path });
                }
                FileAction::OpenSparseModel => {
                    self.archive_run();
                    self.status = RunStatus {
                        active: true,
                        ..Default::default()
                    };
                    self.worker.send(Command::LoadSparse { path });
                }
                FileAction::ExportSweepJson => {
                    let sweeps: Vec<serde_json::Value> = self
                        .analysis
                        .sweeps
                        .iter()
                        .map(|s| serde_json::json!({"name": s.name, "dense_accuracy": s.result.dense_accuracy, "points": s.result.points}))
                        .collect();
                    let text = serde_json::to_string_pretty(&sweeps).unwrap_or_default();
                    files::write_text(text, path, &self.io_tx);
                }
                FileAction::ExportSensitivity => {
                    if let Some(r) = &self.analysis.sensitivity {
                        files::write_text(r.to_csv(), path, &self.io_tx);
                    }
                }
                FileAction::ExportSweep => {
                    let mut csv = String::from("sweep,");
                    let mut header = true;
                    for s in &self.analysis.sweeps {
                        for line in s.result.to_csv().lines() {
                            if header {
                                csv.push_str(line);
                                csv.push('\n');
                                header = false;
                            } else if !line.starts_with("granularity,") {
                                csv.push_str(&format!("{},{line}\n", s.name.replace(',', ";")));
                            }
                        }
                    }
                    files::write_text(csv, path, &self.io_tx);
                }
            },
            IoDone::Written(path) => self.notice(format!("written to {}", path.display())),
            IoDone::PlanLoaded(path, plan) => {
                self.plan = *plan;
                self.notice(format!("plan loaded from {}", path.display()));
            }
            IoDone::PlanSaved(path) => self.notice(format!("plan saved to {}", path.display())),
            IoDone::Failed(message) => self.banner = Some(message),
        }
    }

    /// Asks for a file for `action` (through the picker, on a helper thread).
    pub fn choose_file(&self, action: FileAction) {
        files::pick(&self.picker, action, &self.io_tx);
    }

    fn planned_curve(&mut self) -> Vec<[f64; 2]> {
        let spe = if self.status.steps_per_epoch > 0 {
            self.status.steps_per_epoch
        } else {
            self.plan.steps_per_epoch(match self.plan.dataset {
                crate::data::DatasetSource::BuiltIn => crate::data::BUILTIN_TRAIN,
                _ => 60_000,
            })
        };
        if let Some((p, s, curve)) = &self.planned
            && *p == self.plan
            && *s == spe
        {
            return curve.clone();
        }
        let total = self.plan.training.epochs as u64 * spe;
        let curve: Vec<[f64; 2]> = match self.plan.pruning.schedule.resolve(spe) {
            Ok(s) => {
                let mut points = vec![[0.0, 0.0]];
                let mut current = 0.0;
                for (step, target) in s.mask_targets(total) {
                    points.push([step as f64, current]);
                    points.push([step as f64, target]);
                    current = target;
                }
                points
            }
            Err(_) => Vec::new(),
        };
        self.planned = Some((self.plan.clone(), spe, curve.clone()));
        curve
    }

    fn menu_bar(&mut self, ui: &mut Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                for (label, action, tip) in [
                    ("Open plan…", FileAction::OpenPlan, "Load an experiment plan (TOML), the same files as the command line's."),
                    ("Save plan…", FileAction::SavePlan, "Save the plan as TOML, to run it again here or with `sparsity-explorer run`."),
                    ("Save masks…", FileAction::SaveMasks, "The current masks as safetensors: one uint8 tensor per layer, PyTorch layout."),
                    ("Save checkpoint…", FileAction::SaveCheckpoint, "Weights, Adam state, masks, step, plan and plots, to resume later."),
                    ("Load checkpoint…", FileAction::LoadCheckpoint, "Resume a saved session where it stopped (it opens paused)."),
                    ("Open sparse model…", FileAction::OpenSparseModel, "Load an exported .spx model to inspect its masks, evaluate or analyse it."),
                    ("Open dataset folder…", FileAction::OpenDatasetFolder, "A folder with the four MNIST-format files, raw or gzip."),
                ] {
                    if ui.button(label).on_hover_text(tip).clicked() {
                        self.choose_file(action);
                        ui.close();
                    }
                }
            });
            ui.menu_button("Presets", |ui| {
                for (name, _) in PRESETS {
                    let plan = ExperimentPlan::preset(name);
                    let tip = plan.as_ref().map(|p| p.name.clone()).unwrap_or_default();
                    if ui.button(*name).on_hover_text(tip).clicked() {
                        if let Ok(p) = plan {
                            self.plan = p;
                        }
                        ui.close();
                    }
                }
            });
            ui.separator();
            ui.label(RichText::new(&self.plan.name).italics());
        });
    }

    fn controls(&mut self, ui: &mut Ui) {
        ui.horizontal_wrapped(|ui| {
            let active = self.status.active;
            if ui
                .add_enabled(!active, egui::Button::new("Start"))
                .on_hover_text("Train the plan from scratch in the background.")
                .clicked()
            {
                self.start();
            }
            let pause_label = if self.status.paused {
                "Resume"
            } else {
                "Pause"
            };
            if ui
                .add_enabled(active, egui::Button::new(pause_label))
                .on_hover_text("Pause or resume training (Space).")
                .clicked()
            {
                self.toggle_pause();
            }
            if ui
                .add_enabled(active && self.status.paused, egui::Button::new("Step"))
                .on_hover_text("Train exactly one batch while paused.")
                .clicked()
            {
                self.worker.send(Command::Step);
            }
            if ui
                .add_enabled(active, egui::Button::new("Stop"))
                .on_hover_text("End the run now and evaluate it.")
                .clicked()
            {
                self.worker.send(Command::Stop);
            }
            if ui
                .button("Reset")
                .on_hover_text("Clear the run; its curves stay as a faded overlay for comparison.")
                .clicked()
            {
                self.reset();
            }
        });
        if let Some(sent) = &self.sent_plan
            && self.status.active
            && let Some(what) = sent.reset_reason(&self.plan)
        {
            ui.colored_label(
                Color32::from_rgb(230, 170, 60),
                format!("Changing {what} needs a new run: press Reset, then Start."),
            );
        }
        if let Err(e) = self
            .plan
            .validate(self.status.train_examples.max(crate::data::BUILTIN_TRAIN))
        {
            ui.colored_label(Color32::from_rgb(230, 110, 100), e.to_string());
        }
    }

    fn plan_panel(&mut self, ui: &mut Ui) {
        egui::ScrollArea::vertical().show(ui, |ui| {
            self.controls(ui);
            ui.separator();
            egui::CollapsingHeader::new("Training")
                .default_open(true)
                .show(ui, |ui| {
                    let detected = self.status.backend.as_ref().map(|b| {
                        format!(
                            "running on {} ({}){}",
                            b.backend,
                            b.device,
                            b.note
                                .as_ref()
                                .map(|n| format!(": {n}"))
                                .unwrap_or_default()
                        )
                    });
                    if plan_editor::training_ui(ui, &mut self.plan, detected.as_deref())
                        == Some(plan_editor::PlanAction::OpenDatasetFolder)
                    {
                        self.choose_file(FileAction::OpenDatasetFolder);
                    }
                });
            egui::CollapsingHeader::new("Pruning")
                .default_open(true)
                .show(ui, |ui| {
                    let spe = self.status.steps_per_epoch.max(1);
                    plan_editor::pruning_ui(ui, &mut self.plan, spe);
                });
            egui::CollapsingHeader::new("Layers")
                .default_open(true)
                .show(ui, |ui| {
                    let specs: Vec<LayerSpec> = self.plan.model.layer_specs();
                    let sparsity: BTreeMap<String, f64> = self
                        .layers
                        .iter()
                        .map(|l| (l.info.name.clone(), l.sparsity))
                        .collect();
                    egui::ScrollArea::horizontal().show(ui, |ui| {
                        plan_editor::layers_ui(ui, &mut self.plan, &specs, &sparsity);
                    });
                });
            if !self.notices.is_empty() {
                egui::CollapsingHeader::new("Log")
                    .default_open(false)
                    .show(ui, |ui| {
                        for n in self.notices.iter().rev() {
                            ui.small(n);
                        }
                    });
            }
        });
    }

    fn status_bar(&self, ui: &mut Ui) {
        let s = &self.status;
        ui.horizontal(|ui| {
            match &s.backend {
                Some(b) => ui.label(format!("{} · {}", b.backend, b.device)),
                None => ui.label("not started"),
            };
            ui.separator();
            ui.label(format!(
                "epoch {:.2} · step {}/{}",
                s.epoch, s.step, s.total_steps
            ));
            ui.separator();
            ui.label(format!("{:.0} samples/s", s.samples_per_s));
            ui.separator();
            ui.label(format!("loss {:.4}", s.loss));
            if let Some(a) = s.accuracy {
                ui.label(format!("accuracy {a:.4}"));
            }
            ui.label(format!("sparsity {:.3}", s.sparsity));
            ui.separator();
            let remaining = if s.step > 0 && s.total_steps > s.step {
                s.elapsed_s / s.step as f64 * (s.total_steps - s.step) as f64
            } else {
                0.0
            };
            ui.label(format!(
                "elapsed {} · remaining {}",
                clock(s.elapsed_s),
                clock(remaining)
            ));
            if s.paused {
                ui.colored_label(Color32::from_rgb(230, 170, 60), "paused");
            } else if s.active {
                ui.spinner();
            }
        });
    }

    fn central(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            for (tab, name, tip) in [
                (Tab::Training, "Training", "Masks and plots of the run."),
                (
                    Tab::Sensitivity,
                    "Sensitivity",
                    "Which layers tolerate pruning: each layer pruned alone at each level.",
                ),
                (
                    Tab::Sweeps,
                    "Sweeps",
                    "Accuracy against sparsity for several targets and granularities.",
                ),
                (
                    Tab::Export,
                    "Export",
                    "Sparse and quantized model files, and what they weigh.",
                ),
            ] {
                ui.selectable_value(&mut self.tab, tab, name)
                    .on_hover_text(tip);
            }
        });
        if let Some(message) = self.banner.clone() {
            egui::Frame::new()
                .fill(Color32::from_rgb(110, 30, 30))
                .inner_margin(8.0)
                .corner_radius(4.0)
                .show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.label(
                            RichText::new(format!("Error: {message}"))
                                .color(Color32::WHITE)
                                .strong(),
                        );
                        if ui.button("Dismiss").clicked() {
                            self.banner = None;
                        }
                    });
                });
        }
        let have_model = !self.layers.is_empty();
        let action = match self.tab {
            Tab::Training => None,
            Tab::Sensitivity => {
                analysis_view::sensitivity_ui(ui, &mut self.analysis, &mut self.plan, have_model)
            }
            Tab::Sweeps => analysis_view::sweeps_ui(ui, &mut self.analysis, have_model),
            Tab::Export => {
                match views::export_ui(
                    ui,
                    self.export_report.as_ref(),
                    self.infer_bench.as_ref(),
                    have_model,
                ) {
                    Some(views::ExportAction::Export) => self.choose_file(FileAction::ExportModel),
                    Some(views::ExportAction::BenchInfer) => {
                        self.worker.send(Command::BenchInfer { seconds: 0.5 });
                    }
                    None => {}
                }
                None
            }
        };
        if let Some(a) = action {
            self.analysis_action(a);
        }
        if self.tab != Tab::Training {
            return;
        }
        let height = ui.available_height();
        let tile_height = views::tile_height(ui.available_width(), &self.layers, height * 0.4);
        let plot_height = ((height - tile_height - 150.0) / 2.0).clamp(90.0, 340.0);
        views::mask_tiles(ui, &mut self.layers, tile_height);
        ui.separator();
        let planned = self.planned_curve();
        let now = self.status.active.then_some(self.status.step);
        ui.columns(3, |cols| {
            views::loss_plot(&mut cols[0], &self.history, &self.overlays, plot_height);
            views::accuracy_plot(&mut cols[1], &self.history, &self.overlays, plot_height);
            views::accuracy_vs_sparsity_plot(
                &mut cols[2],
                &self.history,
                &self.overlays,
                plot_height,
            );
        });
        ui.columns(3, |cols| {
            views::schedule_plot(&mut cols[0], &planned, &self.history, now, plot_height);
            views::layer_sparsity_bars(&mut cols[1], &self.layers, plot_height);
            views::histogram_plot(
                &mut cols[2],
                &self.layers,
                &mut self.selected_layer,
                plot_height,
            );
        });
    }

    /// Median and 95th percentile of `samples`, in their unit.
    pub fn percentiles(samples: &[f32]) -> Option<(f32, f32)> {
        if samples.is_empty() {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(f32::total_cmp);
        let at = |q: f32| v[((v.len() - 1) as f32 * q).round() as usize];
        Some((at(0.5), at(0.95)))
    }
}

fn default_plan() -> ExperimentPlan {
    ExperimentPlan::preset("quick-demo").expect("the quick-demo preset is valid")
}

fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

impl eframe::App for ExplorerApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        if self.options.frame_stats {
            let now = Instant::now();
            if let Some(last) = self.last_frame_start
                && self.frame_intervals_ms.len() < MAX_FRAME_SAMPLES
            {
                self.frame_intervals_ms
                    .push(now.duration_since(last).as_secs_f32() * 1000.0);
            }
            self.last_frame_start = Some(now);
            ctx.request_repaint(); // back to back, so the interval is the whole frame
        }
        self.drain_events();
        if self.status.active && !self.status.paused {
            ctx.request_repaint_after(Duration::from_millis(100));
        }
        if let Some(limit) = self.options.exit_after
            && self.started_at.elapsed().as_secs_f64() >= limit
        {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        let t0 = Instant::now();
        if ui.input(|i| i.key_pressed(Key::Space)) && !ui.ctx().egui_wants_keyboard_input() {
            self.toggle_pause();
        }
        egui::Panel::top("menu").show(ui, |ui| self.menu_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        egui::Panel::left("plan")
            .resizable(true)
            .default_size(450.0)
            .min_size(300.0)
            .show(ui, |ui| self.plan_panel(ui));
        egui::CentralPanel::default().show(ui, |ui| self.central(ui));
        self.push_plan_changes();
        if self.options.frame_stats && self.frame_times_ms.len() < MAX_FRAME_SAMPLES {
            self.frame_times_ms
                .push(t0.elapsed().as_secs_f32() * 1000.0);
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, "plan", &self.plan.to_toml());
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        if !self.options.frame_stats {
            return;
        }
        if let (Some((b50, b95)), Some((f50, f95))) = (
            Self::percentiles(&self.frame_times_ms),
            Self::percentiles(&self.frame_intervals_ms),
        ) {
            println!(
                "{{\"event\":\"frame-stats\",\"frames\":{},\"frame_p50_ms\":{f50:.2},\"frame_p95_ms\":{f95:.2},\"ui_build_p50_ms\":{b50:.2},\"ui_build_p95_ms\":{b95:.2},\"steps_trained\":{}}}",
                self.frame_intervals_ms.len(),
                self.status.step
            );
        }
    }
}

/// Opens the window. When OpenGL cannot start, tries wgpu before giving up.
pub fn run_window(options: AppOptions) -> anyhow::Result<()> {
    let open = |renderer: Renderer, options: AppOptions| {
        let native = eframe::NativeOptions {
            viewport: egui::ViewportBuilder::default()
                .with_inner_size([1500.0, 940.0])
                .with_min_inner_size([900.0, 600.0])
                .with_title("sparsity-explorer"),
            renderer: match renderer {
                Renderer::Wgpu => eframe::Renderer::Wgpu,
                Renderer::Glow => eframe::Renderer::Glow,
            },
            ..Default::default()
        };
        eframe::run_native(
            "sparsity-explorer",
            native,
            Box::new(move |cc| Ok(Box::new(ExplorerApp::new(cc, options)))),
        )
    };
    match open(options.renderer, options.clone()) {
        Ok(()) => Ok(()),
        Err(e) if options.renderer == Renderer::Glow => {
            eprintln!("OpenGL could not start ({e}); trying wgpu");
            open(Renderer::Wgpu, options)
                .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
        }
        Err(e) => Err(anyhow::anyhow!("cannot open the window: {e}")),
    }
}
