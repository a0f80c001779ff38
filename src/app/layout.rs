//! Where each panel goes in the window, and which part of the state it is given: the menu
//! at the top, the status bar at the bottom, the plan on the left, the lesson (while one
//! is followed) on the right, and in the centre the tabs, the banner and the selected tab.
//! The plan is handed out to read: panels change it by pushing
//! [`AppCommand::EditPlan`].

use eframe::egui;
use egui::Ui;

use super::command::AppCommand;
use super::panels::{
    BannerPanel, ExportPanel, LessonPanel, MenuBar, PlanPanel, SensitivityPanel, StatusBar,
    SweepsPanel, TabBar, TrainingPanel,
};
use super::state::{AppState, Tab};

/// Draws every panel of one frame; what the user asked for goes to `out`. `cjk_font`: a
/// CJK font is loaded; `planned`: the edited plan's sparsity over steps.
pub(super) fn show_panels(
    ui: &mut Ui,
    state: &mut AppState,
    cjk_font: bool,
    planned: &[[f64; 2]],
    out: &mut Vec<AppCommand>,
) {
    egui::Panel::top("menu").show(ui, |ui| {
        MenuBar {
            plan: state.plan.edited(),
            lessons: &state.lessons,
            language: state.language,
            language_note: state.language_note.as_deref(),
            cjk_font,
        }
        .ui(ui, out)
    });
    egui::Panel::bottom("status").show(ui, |ui| {
        StatusBar {
            status: &state.status,
            until_stopped: state
                .plan
                .sent()
                .unwrap_or(state.plan.edited())
                .training
                .until_stopped,
        }
        .ui(ui)
    });
    egui::Panel::left("plan")
        .resizable(true)
        .default_size(450.0)
        .min_size(300.0)
        .show(ui, |ui| {
            PlanPanel {
                plan: state.plan.edited(),
                check: state.plan.check(),
                pace_drag: &mut state.pace_drag,
                status: &state.status,
                layers: &state.layers,
                notices: &state.notices,
            }
            .ui(ui, out)
        });
    if let Some(progress) = &state.lesson {
        let place = state
            .lessons
            .iter()
            .position(|l| l.id == progress.lesson.id)
            .unwrap_or(0);
        egui::Panel::right("lesson")
            .resizable(true)
            .default_size(360.0)
            .min_size(240.0)
            .show(ui, |ui| {
                LessonPanel {
                    progress,
                    language: state.language,
                    place: (place, state.lessons.len()),
                }
                .ui(ui, out)
            });
    }
    egui::CentralPanel::default().show(ui, |ui| central(ui, state, planned, out));
}

/// The centre: the tabs, the banner, and the selected tab.
fn central(ui: &mut Ui, state: &mut AppState, planned: &[[f64; 2]], out: &mut Vec<AppCommand>) {
    TabBar {
        tab: &mut state.tab,
    }
    .ui(ui);
    BannerPanel {
        banner: &mut state.banner,
    }
    .ui(ui, out);
    let have_model = !state.layers.is_empty();
    match state.tab {
        Tab::Training => TrainingPanel {
            layers: &mut state.layers,
            selected_layer: &mut state.selected_layer,
            highlight: &mut state.highlight,
            history: &state.history,
            overlays: &state.overlays,
            status: &state.status,
            planned,
        }
        .ui(ui),
        Tab::Sensitivity => SensitivityPanel {
            state: &mut state.analysis,
            pruning: &state.plan.edited().pruning,
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
