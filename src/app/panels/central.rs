//! The centre: tabs, the banner, and the selected tab (masks and plots while training, or
//! an analysis, or the export view).

use eframe::egui;
use egui::{Color32, RichText, Ui};

use crate::app::analysis_view::{SensitivityPanel, SweepsPanel};
use crate::app::command::AppCommand;
use crate::app::files;
use crate::app::plots;
use crate::app::state::{AppState, Tab};
use crate::app::views::{self, ExportPanel};
use crate::i18n::{t, tf};

pub struct CentralPanel<'a> {
    pub state: &'a mut AppState,
    /// The edited plan's sparsity over steps, for the schedule plot.
    pub planned: &'a [[f64; 2]],
}

impl CentralPanel<'_> {
    pub fn ui(self, ui: &mut Ui, out: &mut Vec<AppCommand>) {
        let state = self.state;
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
                ui.selectable_value(&mut state.tab, tab, t(name))
                    .on_hover_text(t(tip));
            }
        });
        banner(ui, state, out);
        let have_model = !state.layers.is_empty();
        match state.tab {
            Tab::Training => training(ui, state, self.planned),
            Tab::Sensitivity => SensitivityPanel {
                state: &mut state.analysis,
                plan: &mut state.plan,
                have_model,
            }
            .ui(ui, out),
            Tab::Sweeps => SweepsPanel {
                state: &mut state.analysis,
                have_model,
            }
            .ui(ui, out),
            Tab::Export => ExportPanel {
                report: state.export_report.as_ref(),
                bench: state.infer_bench.as_ref(),
                have_model,
            }
            .ui(ui, out),
        }
    }
}

/// The error banner, and the warning about a worker that has not answered.
fn banner(ui: &mut Ui, state: &mut AppState, out: &mut Vec<AppCommand>) {
    let frame = |colour| {
        egui::Frame::new()
            .fill(colour)
            .inner_margin(8.0)
            .corner_radius(4.0)
    };
    if let Some(message) = &state.banner {
        frame(Color32::from_rgb(110, 30, 30)).show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(
                    RichText::new(tf("Error: {}", &[message]))
                        .color(Color32::WHITE)
                        .strong(),
                );
                if ui.button(t("Dismiss")).clicked() {
                    out.push(AppCommand::DismissBanner);
                }
            });
        });
    }
    if let Some(step) = state.remote_lost {
        frame(Color32::from_rgb(40, 60, 100)).show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(
                    RichText::new(tf(
                        "The remote server is gone. Its weights, masks and Adam state from step {} are kept here.",
                        &[&step],
                    ))
                    .color(Color32::WHITE),
                );
                if ui
                    .button(t("Continue locally"))
                    .on_hover_text(t("Go on training this run on this machine's CPU (flex), from the kept step."))
                    .clicked()
                {
                    out.push(AppCommand::ContinueLocally);
                }
            });
        });
    }
    if state.no_dialogs {
        frame(Color32::from_rgb(40, 60, 100)).show(ui, |ui| {
            ui.label(RichText::new(t(files::NO_DIALOGS)).color(Color32::WHITE));
        });
    }
    let mut cancel = false;
    if let Some(text) = state.plan_string_prompt.as_mut() {
        frame(Color32::from_rgb(40, 60, 100)).show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(RichText::new(t("Plan line:")).color(Color32::WHITE));
                ui.add(
                    egui::TextEdit::singleline(text)
                        .hint_text("spx1.…")
                        .desired_width(520.0),
                );
                if ui.button(t("Open plan")).clicked() {
                    out.push(AppCommand::OpenPlanString(text.clone()));
                }
                if ui.button(t("Cancel")).clicked() {
                    cancel = true;
                }
            });
        });
    }
    if cancel {
        state.plan_string_prompt = None;
    }
    if let Some((purpose, text)) = state.path_prompt.as_mut() {
        frame(Color32::from_rgb(40, 60, 100)).show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(
                    RichText::new(tf("Path ({}):", &[&t(purpose.describe())]))
                        .color(Color32::WHITE),
                );
                let field = ui.add(egui::TextEdit::singleline(text).desired_width(420.0));
                let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if (ui.button(t("OK")).clicked() || entered) && !text.trim().is_empty() {
                    out.push(AppCommand::FileChosen(*purpose, text.trim().into()));
                    out.push(AppCommand::CancelPathPrompt);
                }
                if ui.button(t("Cancel")).clicked() {
                    out.push(AppCommand::CancelPathPrompt);
                }
            });
        });
    }
    if let Some(silent) = state.worker_silent {
        frame(Color32::from_rgb(110, 80, 20)).show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(
                    RichText::new(tf(
                        "The training worker has not answered for {} s: it may be busy (compiling GPU shaders, loading a large dataset) or stuck.",
                        &[&format!("{:.0}", silent.as_secs_f64())],
                    ))
                    .color(Color32::WHITE)
                    .strong(),
                );
                if ui
                    .button(t("Start a new worker"))
                    .on_hover_text("Leave this worker and start a new one; the plan and the plots stay, the run does not.")
                    .clicked()
                {
                    out.push(AppCommand::ReplaceWorker);
                }
            });
        });
    }
}

/// Mask tiles, then two rows of plots.
fn training(ui: &mut Ui, state: &mut AppState, planned: &[[f64; 2]]) {
    let height = ui.available_height();
    let tile_height = views::tile_height(ui.available_width(), &state.layers, height * 0.4);
    // each plot has a title and a legend row above it
    let plot_height = ((height - tile_height - 190.0) / 2.0).clamp(90.0, 340.0);
    views::mask_tiles(ui, &mut state.layers, tile_height);
    ui.separator();
    let now = state.status.active.then_some(state.status.step);
    let (history, overlays) = (&state.history, &state.overlays);
    // marked on the plots over steps in the frame after the pointer finds it
    let highlight = state.highlight;
    let spe = state.status.steps_per_epoch;
    let pointed = ui.columns(3, |cols| {
        plots::loss_plot(&mut cols[0], history, overlays, plot_height, highlight);
        plots::accuracy_plot(&mut cols[1], history, overlays, plot_height, highlight);
        plots::accuracy_vs_sparsity_plot(&mut cols[2], history, overlays, plot_height, spe)
    });
    ui.columns(3, |cols| {
        plots::schedule_plot(&mut cols[0], planned, history, now, plot_height, highlight);
        plots::layer_sparsity_bars(&mut cols[1], &state.layers, plot_height);
        plots::histogram_plot(
            &mut cols[2],
            &state.layers,
            &mut state.selected_layer,
            plot_height,
        );
    });
    state.highlight = pointed;
}
