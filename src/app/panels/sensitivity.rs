//! The Sensitivity tab: which layers tolerate pruning. Each layer is pruned alone at each
//! level from the current weights; the plot shows the accuracy that is left, and the
//! table the largest level each layer tolerates, which can go into the plan.

use eframe::egui;
use egui::{Color32, DragValue, ProgressBar, TextEdit, Ui};
use egui_plot::{Corner, HLine, Legend, Line, Plot, Points};

use crate::app::command::AppCommand;
use crate::app::files::FilePurpose;
use crate::app::plan_edit::PlanEdit;
use crate::app::plot_style::{PALETTE, format_mark, readable_marks};
use crate::app::state::AnalysisState;
use crate::app::widgets::servers_field;
use crate::i18n::{t, tf};
use crate::prune::PruningPolicy;
use crate::train::SensitivityRequest;
use crate::train::analysis::{SensitivityResult, parse_levels};

/// The legend entry of levels a layer had already reached before the analysis.
const ALREADY_PRUNED: &str = "already pruned (no change)";

/// The Sensitivity tab.
pub struct SensitivityPanel<'a> {
    pub state: &'a mut AnalysisState,
    /// The plan's pruning: its granularity and criterion are analysed, and the tolerated
    /// levels can become its per-layer targets (as an edit of the plan).
    pub pruning: &'a PruningPolicy,
    /// A model is trained or loaded (analyses start from its weights).
    pub have_model: bool,
}

impl SensitivityPanel<'_> {
    pub fn ui(self, ui: &mut Ui, out: &mut Vec<AppCommand>) {
        let Self {
            state,
            pruning,
            have_model,
        } = self;
        ui.label(t("Prune one layer at a time at each level, from the current weights, and measure the test accuracy; the weights are restored exactly afterwards. Layers whose accuracy falls early are sensitive: prune them less."));
        ui.horizontal(|ui| {
            ui.label(t("levels"));
            ui.add(TextEdit::singleline(&mut state.levels_text).desired_width(320.0))
                .on_hover_text(t(
                    "Sparsity levels to try, comma separated, each in [0, 1).",
                ));
            ui.label(tf(
                "pattern {} · criterion {}",
                &[&pruning.granularity, &pruning.criterion],
            ))
            .on_hover_text(t(
                "The plan's granularity and criterion are used; change them in the left panel.",
            ));
        });
        servers_field(ui, &mut state.servers_text);
        run_row(ui, state, pruning, have_model, out);
        if let Some(e) = &state.input_error {
            ui.colored_label(Color32::from_rgb(230, 110, 100), e);
        }
        let Some(result) = state.sensitivity.clone() else {
            return;
        };
        ui.columns(2, |cols| {
            accuracy_plot(&mut cols[0], &result);
            tolerance_table(
                &mut cols[1],
                &mut state.tolerance_points,
                &result,
                pruning,
                out,
            );
        });
    }
}

/// Run (or cancel) the analysis, its progress, and the CSV export of its result.
fn run_row(
    ui: &mut Ui,
    state: &mut AnalysisState,
    pruning: &PruningPolicy,
    have_model: bool,
    out: &mut Vec<AppCommand>,
) {
    ui.horizontal(|ui| {
        let busy = state.busy();
        if ui
            .add_enabled(have_model && !busy, egui::Button::new(t("Run sensitivity")))
            .on_hover_text("Pauses training and analyses the model as it is now.")
            .on_disabled_hover_text(t(
                "Train or load a model first (and let any analysis finish).",
            ))
            .clicked()
        {
            match parse_levels(&state.levels_text) {
                Ok(levels) => {
                    state.input_error = None;
                    out.push(AppCommand::RunSensitivity(SensitivityRequest {
                        levels,
                        granularity: pruning.granularity,
                        criterion: pruning.criterion,
                        servers: crate::train::backend::parse_servers(&state.servers_text),
                    }));
                }
                Err(e) => state.input_error = Some(e),
            }
        }
        if state.sensitivity_progress.is_some() && ui.button(t("Cancel")).clicked() {
            out.push(AppCommand::CancelAnalysis);
        }
        if let Some((done, total)) = state.sensitivity_progress {
            ui.add(
                ProgressBar::new(done as f32 / total.max(1) as f32)
                    .text(format!("{done} / {total}"))
                    .desired_width(200.0),
            );
        }
        if state.sensitivity.is_some() && ui.button(t("Export CSV…")).clicked() {
            out.push(AppCommand::ChooseFile(FilePurpose::ExportSensitivity));
        }
    });
}

/// Accuracy against the one pruned layer's sparsity, a line per layer; levels the layer
/// had already reached are marked apart, the unpruned accuracy is a horizontal line.
fn accuracy_plot(ui: &mut Ui, result: &SensitivityResult) {
    Plot::new("sensitivity")
        .x_grid_spacer(readable_marks)
        .y_grid_spacer(readable_marks)
        .x_axis_formatter(format_mark)
        .y_axis_formatter(format_mark)
        .height(ui.available_height().max(200.0))
        .x_axis_label(t("sparsity of the one pruned layer"))
        .y_axis_label(t("test accuracy"))
        .include_x(0.0)
        .include_x(1.0)
        .legend(Legend::default().position(Corner::LeftBottom))
        .show(ui, |plot| {
            for (i, layer) in result.layers.iter().enumerate() {
                let points: Vec<[f64; 2]> = result
                    .levels
                    .iter()
                    .zip(&layer.accuracy)
                    .filter_map(|(l, a)| a.map(|a| [*l, a]))
                    .collect();
                let colour = PALETTE[i % PALETTE.len()];
                plot.line(
                    Line::new(layer.name.clone(), points.clone())
                        .color(colour)
                        .allow_band(false),
                );
                let (done, fresh): (Vec<[f64; 2]>, Vec<[f64; 2]>) =
                    points.into_iter().partition(|p| layer.already_pruned(p[0]));
                plot.points(
                    Points::new(layer.name.clone(), fresh)
                        .color(colour)
                        .radius(2.5),
                );
                if !done.is_empty() {
                    plot.points(
                        Points::new(t(ALREADY_PRUNED), done)
                            .color(Color32::GRAY)
                            .filled(false)
                            .radius(4.0),
                    );
                }
            }
            if result.dense_accuracy.is_finite() {
                plot.hline(HLine::new(t("unpruned"), result.dense_accuracy).color(Color32::GRAY));
            }
        });
}

/// The tolerance, the largest level within it for each layer, and the button that writes
/// those levels into the plan's per-layer targets.
fn tolerance_table(
    ui: &mut Ui,
    tolerance_points: &mut f64,
    result: &SensitivityResult,
    pruning: &PruningPolicy,
    out: &mut Vec<AppCommand>,
) {
    ui.horizontal(|ui| {
        ui.label(t("tolerance"));
        ui.add(
            DragValue::new(tolerance_points)
                .range(0.0..=50.0)
                .speed(0.1)
                .suffix(t(" points")),
        )
        .on_hover_text("How much accuracy (in percentage points) a layer may lose.");
    });
    let tolerated = result.tolerated(*tolerance_points / 100.0);
    egui::Grid::new("tolerated").striped(true).show(ui, |ui| {
        ui.strong(t("layer"));
        ui.strong(t("largest level within tolerance"));
        ui.end_row();
        for (layer, (name, level)) in result.layers.iter().zip(&tolerated) {
            ui.label(name);
            let already = (layer.sparsity > 0.0).then(|| {
                tf(
                    " (already pruned to {}%: levels up to it change nothing)",
                    &[&format!("{:.0}", 100.0 * layer.sparsity)],
                )
            });
            match (level, &layer.note) {
                (_, Some(note)) => ui.label(note),
                (Some(l), None) => {
                    ui.label(format!("{:.0}%{}", 100.0 * l, already.unwrap_or_default()))
                }
                (None, None) => ui.label(format!("none{}", already.unwrap_or_default())),
            };
            ui.end_row();
        }
    });
    if ui
        .button(t("Use as per-layer targets"))
        .on_hover_text("Write these levels into the plan's per-layer overrides (own target); layers with none are left as they are.")
        .clicked()
    {
        let mut pruning = pruning.clone();
        for (name, level) in &tolerated {
            if let Some(level) = level {
                let o = pruning.layers.entry(name.clone()).or_default();
                o.target = Some(*level);
            }
        }
        out.push(AppCommand::EditPlan(PlanEdit::Pruning(Box::new(pruning))));
    }
}
