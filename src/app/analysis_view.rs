//! The Sensitivity and Sweeps tabs: which layers tolerate pruning, and what each
//! granularity costs.

use eframe::egui;
use egui::{Color32, DragValue, ProgressBar, TextEdit, Ui};
use egui_plot::{Corner, HLine, Legend, Line, Plot, Points};

use super::command::AppCommand;
use super::files::FilePurpose;
use super::plots::{format_mark, readable_marks};
use crate::i18n::{t, tf};
use crate::plan::ExperimentPlan;
use crate::prune::{Criterion, Granularity};
use crate::train::analysis::{LayerSensitivity, SensitivityResult, SweepResult, parse_levels};
use crate::train::{LayerInfo, SensitivityRequest, SweepRequest};

const PALETTE: [Color32; 8] = [
    Color32::from_rgb(90, 170, 255),
    Color32::from_rgb(255, 170, 60),
    Color32::from_rgb(120, 210, 140),
    Color32::from_rgb(230, 110, 110),
    Color32::from_rgb(200, 140, 230),
    Color32::from_rgb(230, 210, 100),
    Color32::from_rgb(100, 210, 210),
    Color32::from_rgb(200, 200, 200),
];

/// A finished or running sweep, as the window keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedSweep {
    pub name: String,
    pub visible: bool,
    pub result: SweepResult,
}

/// State of both tabs.
#[derive(Clone, Debug)]
pub struct AnalysisState {
    pub levels_text: String,
    pub tolerance_points: f64,
    pub sensitivity: Option<SensitivityResult>,
    pub sensitivity_progress: Option<(usize, usize)>,
    pub targets_text: String,
    /// Remote servers to spread a sweep over, comma separated (empty: the plan's).
    pub servers_text: String,
    pub granularities_text: String,
    /// Criteria to compare, comma separated (empty: the plan's).
    pub criteria_text: String,
    pub fine_tune_epochs: f64,
    pub sweeps: Vec<NamedSweep>,
    pub sweep_progress: Option<(usize, usize, Option<f64>)>,
    /// Last input error of either tab.
    pub input_error: Option<String>,
}

impl Default for AnalysisState {
    fn default() -> Self {
        let s = SweepRequest::default();
        Self {
            levels_text: join(&crate::train::analysis::DEFAULT_LEVELS),
            tolerance_points: 1.0,
            sensitivity: None,
            sensitivity_progress: None,
            targets_text: join(&s.targets),
            granularities_text: s
                .granularities
                .iter()
                .map(|g| g.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            criteria_text: String::new(),
            servers_text: String::new(),
            fine_tune_epochs: s.fine_tune_epochs,
            sweeps: Vec::new(),
            sweep_progress: None,
            input_error: None,
        }
    }
}

fn join(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl AnalysisState {
    pub fn busy(&self) -> bool {
        self.sensitivity_progress.is_some() || self.sweep_progress.is_some()
    }

    /// Starts an empty matrix for a new analysis; `layers` with their current sparsity.
    pub fn begin_sensitivity(&mut self, layers: &[(LayerInfo, f64)], request: &SensitivityRequest) {
        self.sensitivity = Some(SensitivityResult {
            dense_accuracy: f64::NAN,
            levels: request.levels.clone(),
            granularity: request.granularity.to_string(),
            layers: layers
                .iter()
                .map(|(l, sparsity)| LayerSensitivity {
                    name: l.name.clone(),
                    accuracy: vec![None; request.levels.len()],
                    note: None,
                    sparsity: *sparsity,
                })
                .collect(),
        });
        self.sensitivity_progress = Some((0, layers.len() * request.levels.len()));
    }

    /// Records one measured point.
    pub fn sensitivity_point(
        &mut self,
        dense: f64,
        layer: &str,
        level: f64,
        accuracy: Option<f64>,
        done: usize,
        total: usize,
    ) {
        if let Some(r) = self.sensitivity.as_mut() {
            r.dense_accuracy = dense;
            if let (Some(l), Some(li)) = (
                r.layers.iter_mut().find(|l| l.name == layer),
                r.levels.iter().position(|v| *v == level),
            ) {
                l.accuracy[li] = accuracy;
            }
        }
        self.sensitivity_progress = Some((done, total));
    }

    pub fn begin_sweep(&mut self, name: String) {
        self.sweeps.push(NamedSweep {
            name,
            visible: true,
            result: SweepResult::default(),
        });
        self.sweep_progress = Some((0, 0, None));
    }
}

/// The legend entry of levels a layer had already reached before the analysis.
pub const ALREADY_PRUNED: &str = "already pruned (no change)";

/// The Sensitivity tab.
pub struct SensitivityPanel<'a> {
    pub state: &'a mut AnalysisState,
    pub plan: &'a mut ExperimentPlan,
    /// A model is trained or loaded (analyses start from its weights).
    pub have_model: bool,
}

impl SensitivityPanel<'_> {
    pub fn ui(self, ui: &mut Ui, out: &mut Vec<AppCommand>) {
        let Self {
            state,
            plan,
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
                &[&plan.pruning.granularity, &plan.pruning.criterion],
            ))
            .on_hover_text(t(
                "The plan's granularity and criterion are used; change them in the left panel.",
            ));
        });
        servers_field(ui, &mut state.servers_text);
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
                            granularity: plan.pruning.granularity,
                            criterion: plan.pruning.criterion,
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
        if let Some(e) = &state.input_error {
            ui.colored_label(Color32::from_rgb(230, 110, 100), e);
        }
        let Some(result) = state.sensitivity.clone() else {
            return;
        };
        ui.columns(2, |cols| {
        Plot::new("sensitivity")
            .x_grid_spacer(readable_marks)
            .y_grid_spacer(readable_marks)
            .x_axis_formatter(format_mark)
            .y_axis_formatter(format_mark)
            .height(cols[0].available_height().max(200.0))
            .x_axis_label(t("sparsity of the one pruned layer"))
            .y_axis_label(t("test accuracy"))
            .include_x(0.0)
            .include_x(1.0)
            .legend(Legend::default().position(Corner::LeftBottom))
            .show(&mut cols[0], |plot| {
                for (i, layer) in result.layers.iter().enumerate() {
                    let points: Vec<[f64; 2]> = result
                        .levels
                        .iter()
                        .zip(&layer.accuracy)
                        .filter_map(|(l, a)| a.map(|a| [*l, a]))
                        .collect();
                    let colour = PALETTE[i % PALETTE.len()];
                    plot.line(Line::new(layer.name.clone(), points.clone()).color(colour).allow_band(false));
                    let (done, fresh): (Vec<[f64; 2]>, Vec<[f64; 2]>) =
                        points.into_iter().partition(|p| layer.already_pruned(p[0]));
                    plot.points(Points::new(layer.name.clone(), fresh).color(colour).radius(2.5));
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
        let ui = &mut cols[1];
        ui.horizontal(|ui| {
            ui.label(t("tolerance"));
            ui.add(DragValue::new(&mut state.tolerance_points).range(0.0..=50.0).speed(0.1).suffix(t(" points")))
                .on_hover_text("How much accuracy (in percentage points) a layer may lose.");
        });
        let tolerated = result.tolerated(state.tolerance_points / 100.0);
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
                    (Some(l), None) => ui.label(format!("{:.0}%{}", 100.0 * l, already.unwrap_or_default())),
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
            for (name, level) in &tolerated {
                if let Some(level) = level {
                    let o = plan.pruning.layers.entry(name.clone()).or_default();
                    o.target = Some(*level);
                }
            }
        }
    });
    }
}

/// The *servers* field both tabs share: remote servers to spread an analysis over.
fn servers_field(ui: &mut Ui, text: &mut String) {
    ui.horizontal(|ui| {
        let name = ui.label(t("servers"));
        ui.add(
            TextEdit::singleline(text)
                .hint_text("ws://a:3000, ws://b:3000")
                .desired_width(420.0),
        )
        .labelled_by(name.id)
        .on_hover_text(t("Remote servers (sparsity-explorer serve) to run the points on, one per server at a time, comma separated; a point whose server goes away runs on another. Empty: the plan's servers, or this machine."));
    });
}

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
        ui.add(DragValue::new(&mut state.fine_tune_epochs).range(0.1..=100.0).speed(0.1).suffix(t(" epochs")))
            .on_hover_text(t("Training per point: pruning over the first half, fine-tuning over the second."));
    });
        servers_field(ui, &mut state.servers_text);
        ui.horizontal(|ui| {
            let busy = state.busy();
            if ui
                .add_enabled(have_model && !busy, egui::Button::new(t("Run sweep")))
                .on_disabled_hover_text(t(
                    "Train or load a model first (and let any analysis finish).",
                ))
                .clicked()
            {
                let parsed = parse_levels(&state.targets_text).and_then(|targets| {
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
                });
                match parsed {
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
        if let Some(e) = &state.input_error {
            ui.colored_label(Color32::from_rgb(230, 110, 100), e);
        }
        ui.columns(2, |cols| {
            let sweeps = &state.sweeps;
            Plot::new("sweeps")
                .x_grid_spacer(readable_marks)
                .y_grid_spacer(readable_marks)
                .x_axis_formatter(format_mark)
                .y_axis_formatter(format_mark)
                .height(cols[0].available_height().max(200.0))
                .x_axis_label(t("sparsity"))
                .y_axis_label(t("test accuracy"))
                .include_x(0.0)
                .include_x(1.0)
                .legend(Legend::default().position(Corner::LeftBottom))
                .show(&mut cols[0], |plot| {
                    let mut colour = 0;
                    let n = sweeps.len();
                    for (si, sweep) in sweeps.iter().enumerate().filter(|(_, s)| s.visible) {
                        let fade = if si + 1 == n { 1.0 } else { 0.45 };
                        // one line per granularity and criterion
                        let mut names: Vec<(&str, &str)> = sweep
                            .result
                            .points
                            .iter()
                            .map(|p| (p.granularity.as_str(), p.criterion.as_str()))
                            .collect();
                        names.sort();
                        names.dedup();
                        let criteria = names
                            .iter()
                            .map(|n| n.1)
                            .collect::<std::collections::BTreeSet<_>>()
                            .len();
                        for (g, criterion) in names {
                            let mut points: Vec<[f64; 2]> = sweep
                                .result
                                .points
                                .iter()
                                .filter(|p| p.granularity == g && p.criterion == criterion)
                                .map(|p| [p.sparsity, p.accuracy])
                                .collect();
                            points.sort_by(|a, b| a[0].total_cmp(&b[0]));
                            let c = PALETTE[colour % PALETTE.len()].gamma_multiply(fade);
                            colour += 1;
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
                        if si + 1 == n && sweep.result.dense_accuracy > 0.0 {
                            plot.hline(
                                HLine::new(t("starting model"), sweep.result.dense_accuracy)
                                    .color(Color32::GRAY),
                            );
                        }
                    }
                });
            let ui = &mut cols[1];
            ui.strong(t("Sweeps of this session"));
            for sweep in state.sweeps.iter_mut() {
                ui.horizontal(|ui| {
                    ui.checkbox(&mut sweep.visible, "")
                        .on_hover_text("Show or hide this sweep.");
                    ui.add(TextEdit::singleline(&mut sweep.name).desired_width(160.0))
                        .on_hover_text("Name this sweep.");
                    ui.label(format!("{} points", sweep.result.points.len()));
                });
            }
            if let Some(last) = state.sweeps.last() {
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
        });
    }
}
