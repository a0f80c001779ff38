//! The Sweeps tab: what each granularity and criterion costs. Copies of the current
//! model are fine-tuned to each target, all from the same weights with the same budget,
//! and their accuracy is plotted against their sparsity; earlier sweeps stay, faded.

use std::collections::BTreeSet;

use eframe::egui;
use egui::{Color32, DragValue, ProgressBar, TextEdit, Ui};
use egui_plot::{Corner, HLine, Legend, Line, Plot, PlotUi, Points};

use crate::app::command::AppCommand;
use crate::app::files::FilePurpose;
use crate::app::plot_style::{PALETTE, format_mark, readable_marks};
use crate::app::state::{AnalysisState, NamedSweep};
use crate::app::widgets::servers_field;
use crate::i18n::t;
use crate::prune::{Criterion, Granularity};
use crate::train::SweepRequest;
use crate::train::analysis::parse_levels;

/// The Sweeps tab.
pub struct SweepsPanel<'a> {
    pub state: &'a mut AnalysisState,
    /// A model is trained or loaded (sweeps start from its weights).
    pub have_model: bool,
}

impl SweepsPanel<'_> {
    pub fn ui(self, ui: &mut Ui, out: &mut Vec<AppCommand>) {
        let Self { state, have_model } = self;
        ui.label(t("Fine-tune copies of the current model to each target with each granularity, all from the same weights with the same budget and schedule, and plot accuracy against sparsity."));
        inputs(ui, state);
        servers_field(ui, &mut state.servers_text);
        run_row(ui, state, have_model, out);
        if let Some(e) = &state.input_error {
            ui.colored_label(Color32::from_rgb(230, 110, 100), e);
        }
        ui.columns(2, |cols| {
            accuracy_plot(&mut cols[0], &state.sweeps);
            let ui = &mut cols[1];
            ui.strong(t("Sweeps of this session"));
            sweep_list(ui, &mut state.sweeps);
            if let Some(last) = state.sweeps.last() {
                points_table(ui, last);
            }
        });
    }
}

/// Targets, granularities, criteria and the budget of each point.
fn inputs(ui: &mut Ui, state: &mut AnalysisState) {
    ui.horizontal(|ui| {
        ui.label(t("targets"));
        ui.add(TextEdit::singleline(&mut state.targets_text).desired_width(220.0))
            .on_hover_text(t("Target sparsities, comma separated."));
        ui.label(t("granularities"));
        ui.add(TextEdit::singleline(&mut state.granularities_text).desired_width(240.0))
            .on_hover_text(t("Comma separated: unstructured, 2:4, block:4x4, channel ... N:M runs once (its sparsity is fixed)."));
        ui.label(t("criteria"));
        ui.add(TextEdit::singleline(&mut state.criteria_text).desired_width(140.0))
            .on_hover_text(t("Comma separated: magnitude, random, taylor, movement, snip, wanda, synflow. Every target and granularity runs once per criterion; empty: the plan's criterion."));
        ui.label(t("budget"));
        ui.add(
            DragValue::new(&mut state.fine_tune_epochs)
                .range(0.1..=100.0)
                .speed(0.1)
                .suffix(t(" epochs")),
        )
        .on_hover_text(t(
            "Training per point: pruning over the first half, fine-tuning over the second.",
        ));
    });
}

/// Run (or cancel) a sweep, its progress, and the exports of the sweeps so far.
fn run_row(ui: &mut Ui, state: &mut AnalysisState, have_model: bool, out: &mut Vec<AppCommand>) {
    ui.horizontal(|ui| {
        let busy = state.busy();
        if ui
            .add_enabled(have_model && !busy, egui::Button::new(t("Run sweep")))
            .on_disabled_hover_text(t(
                "Train or load a model first (and let any analysis finish).",
            ))
            .clicked()
        {
            match request(state) {
                Ok(request) => {
                    state.input_error = None;
                    out.push(AppCommand::RunSweep(request));
                }
                Err(e) => state.input_error = Some(e),
            }
        }
        if state.sweep_progress.is_some() && ui.button(t("Cancel")).clicked() {
            out.push(AppCommand::CancelAnalysis);
        }
        if let Some((done, total, remaining)) = state.sweep_progress {
            ui.add(
                ProgressBar::new(done as f32 / total.max(1) as f32)
                    .text(format!(
                        "{done} / {total}{}",
                        remaining
                            .map(|r| format!(", about {r:.0} s left"))
                            .unwrap_or_default()
                    ))
                    .desired_width(260.0),
            );
        }
        if !state.sweeps.is_empty() && ui.button(t("Export CSV…")).clicked() {
            out.push(AppCommand::ChooseFile(FilePurpose::ExportSweep));
        }
        if !state.sweeps.is_empty() && ui.button(t("Export JSON…")).clicked() {
            out.push(AppCommand::ChooseFile(FilePurpose::ExportSweepJson));
        }
    });
}

/// The sweep the fields ask for, or what is wrong with them.
fn request(state: &AnalysisState) -> Result<SweepRequest, String> {
    let targets = parse_levels(&state.targets_text)?;
    let granularities = state
        .granularities_text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<Granularity>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let criteria = state
        .criteria_text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<Criterion>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let servers = crate::train::backend::parse_servers(&state.servers_text);
    Ok(SweepRequest {
        targets,
        granularities,
        criteria,
        fine_tune_epochs: state.fine_tune_epochs,
        servers,
    })
}

/// Accuracy against sparsity: a line per granularity and criterion of each shown sweep,
/// earlier sweeps faded, the last one's starting accuracy a horizontal line.
fn accuracy_plot(ui: &mut Ui, sweeps: &[NamedSweep]) {
    Plot::new("sweeps")
        .x_grid_spacer(readable_marks)
        .y_grid_spacer(readable_marks)
        .x_axis_formatter(format_mark)
        .y_axis_formatter(format_mark)
        .height(ui.available_height().max(200.0))
        .x_axis_label(t("sparsity"))
        .y_axis_label(t("test accuracy"))
        .include_x(0.0)
        .include_x(1.0)
        .legend(Legend::default().position(Corner::LeftBottom))
        .show(ui, |plot| {
            let mut colour = 0;
            let n = sweeps.len();
            for (si, sweep) in sweeps.iter().enumerate().filter(|(_, s)| s.visible) {
                let fade = if si + 1 == n { 1.0 } else { 0.45 };
                sweep_lines(plot, sweep, fade, &mut colour);
                if si + 1 == n && sweep.result.dense_accuracy > 0.0 {
                    plot.hline(
                        HLine::new(t("starting model"), sweep.result.dense_accuracy)
                            .color(Color32::GRAY),
                    );
                }
            }
        });
}

/// One sweep's lines, one per granularity and criterion, each in the next colour of the
/// palette (`colour` counts them across sweeps).
fn sweep_lines(plot: &mut PlotUi<'_>, sweep: &NamedSweep, fade: f32, colour: &mut usize) {
    let mut names: Vec<(&str, &str)> = sweep
        .result
        .points
        .iter()
        .map(|p| (p.granularity.as_str(), p.criterion.as_str()))
        .collect();
    names.sort();
    names.dedup();
    let criteria = names.iter().map(|n| n.1).collect::<BTreeSet<_>>().len();
    for (g, criterion) in names {
        let mut points: Vec<[f64; 2]> = sweep
            .result
            .points
            .iter()
            .filter(|p| p.granularity == g && p.criterion == criterion)
            .map(|p| [p.sparsity, p.accuracy])
            .collect();
        points.sort_by(|a, b| a[0].total_cmp(&b[0]));
        let c = PALETTE[*colour % PALETTE.len()].gamma_multiply(fade);
        *colour += 1;
        let label = if criteria > 1 {
            format!("{}: {g}, {criterion}", sweep.name)
        } else {
            format!("{}: {g}", sweep.name)
        };
        plot.line(
            Line::new(label.clone(), points.clone())
                .color(c)
                .allow_band(false),
        );
        plot.points(Points::new(label, points).color(c).radius(3.0));
    }
}

/// Each sweep of the session: shown or hidden, its name (editable), its points.
fn sweep_list(ui: &mut Ui, sweeps: &mut [NamedSweep]) {
    for sweep in sweeps.iter_mut() {
        ui.horizontal(|ui| {
            ui.checkbox(&mut sweep.visible, "")
                .on_hover_text("Show or hide this sweep.");
            ui.add(TextEdit::singleline(&mut sweep.name).desired_width(160.0))
                .on_hover_text("Name this sweep.");
            ui.label(format!("{} points", sweep.result.points.len()));
        });
    }
}

/// The last sweep's points, with the server of each when the sweep was spread.
fn points_table(ui: &mut Ui, last: &NamedSweep) {
    let spread = last.result.points.iter().any(|p| p.server.is_some());
    egui::Grid::new("sweep-table").striped(true).show(ui, |ui| {
        for h in ["granularity", "criterion", "target", "sparsity", "accuracy"] {
            ui.strong(t(h));
        }
        if spread {
            ui.strong(t("server"));
        }
        ui.end_row();
        for p in &last.result.points {
            ui.label(&p.granularity);
            ui.label(&p.criterion);
            ui.label(format!("{:.2}", p.target));
            ui.label(format!("{:.3}", p.sparsity));
            ui.label(format!("{:.4}", p.accuracy));
            if spread {
                ui.label(p.server.as_deref().unwrap_or("-"));
            }
            ui.end_row();
        }
    });
}
