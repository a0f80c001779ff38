//! The window: the plan on the left, masks and plots in the centre, status at the bottom.
//!
//! The parts, after egui's demo app and rerun's viewer:
//! - [`state::AppState`]: what is shown, with the pure reducer that takes worker events;
//! - [`panels`]: one struct per panel, drawing its part of the state and pushing
//!   [`AppCommand`]s; `layout.rs` places them and hands each its part. Panels only read
//!   the plan: an edit leaves them as an [`AppCommand::EditPlan`];
//! - [`ExplorerApp`]: owns the worker and the file I/O, and is the one place that acts on
//!   commands ([`ExplorerApp::execute`], in `execute.rs`). Training runs in the
//!   [`Worker`]; each frame drains its events within a time budget and checks that it is
//!   still alive and answering.

pub mod command;
mod execute;
pub mod files;
pub mod fonts;
pub mod history;
pub mod layers;
mod layout;
pub mod legend;
pub mod panels;
pub mod plan_edit;
mod planned;
pub mod plot_style;
pub mod plots;
pub mod state;
pub mod tables;
mod teaching;
pub mod tips;
pub mod widgets;

use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use eframe::egui;
use egui::{Key, Ui};

pub use command::AppCommand;
pub use plan_edit::PlanEdit;
pub use state::{AppState, PlanCheck, PlanState, RunStatus, Tab};

use crate::plan::ExperimentPlan;
use crate::train::{Command, Worker};
use files::{FilePicker, IoDone};

/// Longest time spent draining worker events in one frame.
const EVENT_BUDGET: Duration = Duration::from_millis(4);
/// Smallest interval between two snapshot requests not caused by a pruning step.
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(700);
/// Frame times kept for the statistics.
const MAX_FRAME_SAMPLES: usize = 100_000;
/// A worker that has not checked in for this long is reported as not answering (it checks
/// in several times a second when idle, and at every step and evaluation batch).
const SILENT_AFTER: Duration = Duration::from_secs(1);
/// How often the window looks at the worker, even when nothing else repaints it.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// Start-up options from the command line.
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Load this preset instead of the last plan.
    pub preset: Option<String>,
    /// Load this plan file instead of the last plan.
    pub plan: Option<std::path::PathBuf>,
    /// Open with this plan (from a plan string) instead of the last plan.
    pub plan_value: Option<ExperimentPlan>,
    /// Open on this lesson, with its preset.
    pub lesson: Option<crate::lessons::Lesson>,
    /// The language to open in (the remembered one when `None`).
    pub language: Option<crate::i18n::Language>,
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Renderer {
    Wgpu,
    /// OpenGL through glow.
    #[default]
    #[value(alias = "gl", alias = "opengl")]
    Glow,
}

/// The application: the state, the worker behind it, and file I/O on helper threads.
pub struct ExplorerApp {
    pub state: AppState,
    worker: Worker,
    ctx: egui::Context,
    /// `None` when this desktop has no dialog backend: file items ask for a path instead.
    picker: Option<FilePicker>,
    io_tx: Sender<IoDone>,
    io_rx: Receiver<IoDone>,
    last_snapshot_request: Option<Instant>,
    options: AppOptions,
    started_at: Instant,
    /// Time to build each frame's UI (ms), with `--frame-stats`.
    pub frame_times_ms: Vec<f32>,
    /// Time from one frame's start to the next (ms): building, painting and presenting,
    /// with repaints requested back to back, with `--frame-stats`.
    pub frame_intervals_ms: Vec<f32>,
    last_frame_start: Option<Instant>,
    /// The planned schedule cache: `(number of the plan's check it was computed for, steps
    /// per epoch, curve)`.
    planned: Option<(u64, u64, Vec<[f64; 2]>)>,
    /// A CJK font was added to egui's fonts.
    cjk_font: bool,
    /// Where to look for one ([`fonts::CJK_FONTS`]; tests look elsewhere).
    pub font_candidates: &'static [(&'static str, u32)],
}

fn spawn_worker(ctx: &egui::Context) -> Worker {
    let ctx = ctx.clone();
    Worker::spawn(Some(Box::new(move || ctx.request_repaint())))
}

impl ExplorerApp {
    /// The app with native file dialogs, or path fields where the desktop has no dialog
    /// backend.
    pub fn new(cc: &eframe::CreationContext<'_>, options: AppOptions) -> Self {
        match files::DialogSupport::detect().backend() {
            Some(_) => Self::with_picker(cc, options, files::native_picker()),
            None => Self::without_dialogs(cc, options),
        }
    }

    /// The app with a given file picker (tests pass one that answers without a dialog).
    pub fn with_picker(
        cc: &eframe::CreationContext<'_>,
        options: AppOptions,
        picker: FilePicker,
    ) -> Self {
        Self::with_files(cc, options, Some(picker))
    }

    /// The app on a desktop without file dialogs: the banner says what to install, and every
    /// file item asks for a path in a field.
    pub fn without_dialogs(cc: &eframe::CreationContext<'_>, options: AppOptions) -> Self {
        let mut app = Self::with_files(cc, options, None);
        app.state.banner.no_dialogs = true;
        app
    }

    fn with_files(
        cc: &eframe::CreationContext<'_>,
        options: AppOptions,
        picker: Option<FilePicker>,
    ) -> Self {
        let stored: Option<ExperimentPlan> = cc
            .storage
            .and_then(|s| eframe::get_value::<String>(s, "plan"))
            .and_then(|text| ExperimentPlan::from_toml(&text, "saved plan").ok());
        let chosen = match (&options.plan_value, &options.preset, &options.plan) {
            (Some(plan), _, _) => Some(Ok(plan.clone())),
            (None, Some(name), _) => Some(ExperimentPlan::preset(name)),
            (None, None, Some(path)) => Some(ExperimentPlan::load(path)),
            (None, None, None) => None,
        };
        let (plan, banner) = match chosen {
            Some(Ok(plan)) => (plan, None),
            Some(Err(e)) => (default_plan(), Some(e.to_string())),
            None => (stored.unwrap_or_else(default_plan), None),
        };
        if let Some(zoom) = cc
            .storage
            .and_then(|s| eframe::get_value::<f32>(s, "zoom"))
            .filter(|z| z.is_finite() && (0.2..=5.0).contains(z))
        {
            cc.egui_ctx.set_zoom_factor(zoom);
        }
        let (io_tx, io_rx) = channel();
        let mut app = Self {
            state: AppState::new(plan, banner),
            worker: spawn_worker(&cc.egui_ctx),
            ctx: cc.egui_ctx.clone(),
            picker,
            io_tx,
            io_rx,
            last_snapshot_request: None,
            started_at: Instant::now(),
            frame_times_ms: Vec::new(),
            frame_intervals_ms: Vec::new(),
            last_frame_start: None,
            planned: None,
            cjk_font: false,
            font_candidates: fonts::CJK_FONTS,
            options,
        };
        let language = app.options.language.unwrap_or_else(|| {
            cc.storage
                .and_then(|s| eframe::get_value::<crate::i18n::Language>(s, "language"))
                .unwrap_or_default()
        });
        app.set_language(language);
        if let Some(lesson) = app.options.lesson.clone()
            && let Some(place) = app.state.lessons.iter().position(|l| l.id == lesson.id)
        {
            app.open_lesson(place);
        }
        if app.options.autostart {
            app.execute(AppCommand::Start);
        }
        app
    }

    /// The worker behind the window.
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Sends to the worker; a worker that is gone is noticed by [`Self::watch_worker`].
    fn send(&self, command: Command) {
        self.worker.send(command);
    }

    /// Takes worker events for at most [`EVENT_BUDGET`], then finished file I/O.
    pub fn drain_events(&mut self) {
        let t0 = Instant::now();
        while t0.elapsed() < EVENT_BUDGET {
            let Some(event) = self.worker.try_recv() else {
                break;
            };
            for follow_up in self.state.apply(event) {
                self.execute(follow_up);
            }
        }
        while let Ok(done) = self.io_rx.try_recv() {
            self.io_done(done);
        }
    }

    /// Notices a worker that died (a new one is started, keeping the plan and the plots)
    /// or that has not answered for [`SILENT_AFTER`] (said in the banner).
    pub fn watch_worker(&mut self) {
        if !self.worker.is_alive() {
            // whatever it sent before it went still counts
            self.drain_events();
            let gone = std::mem::replace(&mut self.worker, spawn_worker(&self.ctx));
            drop(gone);
            self.state.worker_lost("stopped unexpectedly");
            return;
        }
        let silent = self.worker.silent_for();
        self.state.banner.worker_silent = (silent >= SILENT_AFTER).then_some(silent);
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
    ExperimentPlan::preset("live-demo").expect("the live-demo preset is valid")
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
        self.watch_worker();
        let status = &self.state.status;
        ctx.request_repaint_after(if status.active && !status.paused {
            Duration::from_millis(100)
        } else {
            WATCH_INTERVAL
        });
        if let Some(limit) = self.options.exit_after
            && self.started_at.elapsed().as_secs_f64() >= limit
        {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        let t0 = Instant::now();
        crate::i18n::set_thread_language(self.state.language);
        let mut commands = Vec::new();
        if ui.input(|i| i.key_pressed(Key::Space)) && !ui.ctx().egui_wants_keyboard_input() {
            commands.push(AppCommand::TogglePause);
        }
        let planned = self.planned_curve();
        layout::show_panels(ui, &mut self.state, self.cjk_font, &planned, &mut commands);
        for command in commands {
            self.execute(command);
        }
        if self.options.frame_stats && self.frame_times_ms.len() < MAX_FRAME_SAMPLES {
            self.frame_times_ms
                .push(t0.elapsed().as_secs_f32() * 1000.0);
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, "plan", &self.state.plan.edited().to_toml());
        // presenter zoom (Ctrl + and Ctrl -), back at the next start
        eframe::set_value(storage, "zoom", &self.ctx.zoom_factor());
        eframe::set_value(storage, "language", &self.state.language);
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
                self.state.status.step
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
